/**
 * `sys/` endpoints of the fake Vault beyond leases:
 *
 * - response wrapping (api-docs/system/wrapping-*, concepts/response-wrapping): any 200 JSON
 *   answer to a request with `X-Vault-Wrap-TTL` is stored and replaced by `{…, wrap_info: {token,
 *   accessor, ttl, creation_time, creation_path, wrapped_accessor}}`. `POST sys/wrapping/unwrap`
 *   (the wrapping token as X-Vault-Token, or `{token}` in the body with another valid token)
 *   returns the stored answer once; again, or after the TTL → 400 "wrapping token is not valid
 *   or does not exist" (consts.ErrInvalidWrappingToken, returned before routing: no multierror).
 *   `POST sys/wrapping/lookup {token}` → `data {creation_path, creation_time, creation_ttl}`.
 *   `POST sys/wrapping/wrap` wraps its body (400 "endpoint requires response wrapping to be
 *   used" without the header).
 * - `POST sys/capabilities-self {paths: [...]}` (api-docs/system/capabilities-self) → for each
 *   path its capabilities, and `capabilities` as well when exactly one path was asked; Vault
 *   injects `data` into the top level for this route, so both places hold them.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { capabilitiesOn, type PolicyRules } from "./vault-policy.js";
import { commaList, errorReply, parseDuration, type Reply } from "./vault-util.js";

interface Wrapped {
  readonly accessor: string;
  readonly body: Record<string, unknown>;
  readonly creationTime: number;
  readonly creationPath: string;
  readonly ttl: number;
  readonly expiresAt: number;
}

/** Vault's answer for a wrapping token that is unknown, used or expired. */
export const INVALID_WRAPPING_TOKEN: Reply = errorReply(400, "wrapping token is not valid or does not exist");

/** The response-wrapping store (Vault's cubbyhole of single-use wrapping tokens). */
export class WrapStore {
  readonly #wrapped = new Map<string, Wrapped>();
  /** Successful unwraps so far. */
  unwraps = 0;

  /** Wraps `body`; returns Vault's wrapping response (the envelope with `wrap_info`). */
  wrap(body: Record<string, unknown>, ttl: number, creationPath: string, now: number): Record<string, unknown> {
    const token = "hvs." + randomBytes(18).toString("base64url");
    const accessor = randomBytes(12).toString("base64url");
    this.#wrapped.set(token, { accessor, body, creationTime: now, creationPath, ttl, expiresAt: now + ttl * 1000 });
    const auth = body.auth as { accessor?: string } | null | undefined;
    return {
      request_id: randomUUID(),
      lease_id: "",
      renewable: false,
      lease_duration: 0,
      data: null,
      wrap_info: { token, accessor, ttl, creation_time: new Date(now).toISOString(), creation_path: creationPath, wrapped_accessor: auth?.accessor ?? "" },
      warnings: null,
      auth: null,
    };
  }

  /** Whether `token` is a live wrapping token. */
  isLive(token: string | undefined, now: number): boolean {
    const w = token ? this.#wrapped.get(token) : undefined;
    return w !== undefined && now < w.expiresAt;
  }

  /** `sys/wrapping/unwrap`; `token` is the body's `token` or, without one, the client token. */
  unwrap(token: string | undefined, now: number): Reply {
    if (!token || !this.isLive(token, now)) return INVALID_WRAPPING_TOKEN;
    const w = this.#wrapped.get(token)!;
    this.#wrapped.delete(token);
    this.unwraps++;
    return { status: 200, body: { ...w.body, request_id: randomUUID(), wrap_info: null } };
  }

  /** `sys/wrapping/lookup`. */
  lookup(token: string | undefined, now: number): Reply {
    if (!token || !this.isLive(token, now)) return INVALID_WRAPPING_TOKEN;
    const w = this.#wrapped.get(token)!;
    return {
      status: 200,
      body: { request_id: randomUUID(), lease_id: "", renewable: false, lease_duration: 0, data: { creation_path: w.creationPath, creation_time: new Date(w.creationTime).toISOString(), creation_ttl: w.ttl }, wrap_info: null, warnings: null, auth: null },
    };
  }
}

/** The `X-Vault-Wrap-TTL` header as seconds (undefined: not asked or not a duration). */
export function wrapTtl(header: string | string[] | undefined): number | undefined {
  if (typeof header !== "string") return undefined;
  const n = parseDuration(header);
  return n !== undefined && n > 0 ? n : undefined;
}

/** `sys/capabilities-self` for a token's policies. */
export function capabilitiesSelf(policies: readonly string[], named: ReadonlyMap<string, PolicyRules>, body: Record<string, unknown>, ns: string): Reply {
  let paths = commaList(body.paths);
  if (paths.length === 0) paths = commaList(body.path);
  if (paths.length === 0) return errorReply(400, "paths must be supplied");
  const data: Record<string, string[]> = {};
  for (const p of paths) data[p] = capabilitiesOn(policies, named, (ns ? `${ns}/` : "") + p.replace(/^\/+/, ""));
  if (paths.length === 1) data.capabilities = data[paths[0]!]!;
  return { status: 200, body: { ...data, request_id: randomUUID(), lease_id: "", renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null } };
}
