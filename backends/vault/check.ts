/**
 * `emissary check --connect` for the vault backend: log in with the configured auth method, find
 * the mount of each path (the preflight), and ask `sys/capabilities-self` whether the token may
 * `read` the API path (`update` for a write: a reference with `params`). Nothing is read unless
 * asked (`--read`), and never from an engine whose reads issue something (database, AWS, PKI…).
 * For KV version 2 the secret's metadata, which holds no value, tells whether it is set, when the
 * token may read it.
 * @module
 */
import type { CheckContext, CheckResult, SecretRef } from "../../src/api/index.js";
import { classifyError } from "../../src/api/index.js";
import type { TokenManager } from "./auth.js";
import { encodePath, statusError, type VaultRequest, type VaultResponse } from "./client.js";
import { normalizePath, parseVersion, pathInMount, planRead, type MountInfo, type ReadPlan } from "./mounts.js";

/** What the check needs of the backend. */
export interface VaultCheckDeps {
  readonly address: string;
  readonly method: string;
  readonly tokens: TokenManager;
  /** Sends a request with the token (one retry with a new token on 403). */
  authed(req: Omit<VaultRequest, "token">): Promise<{ res: VaultResponse; gen: number }>;
  /** The mount covering a path (cached preflight). */
  mountOf(path: string, refText: string, signal: AbortSignal): Promise<MountInfo>;
}

/** True for a reference that writes (long form `params`, Vault PKI issuance and other writes). */
export function isWrite(ref: SecretRef): boolean {
  const params = (ref as { params?: unknown }).params;
  return params !== undefined && params !== null;
}

/** A failure turned into a check result: network trouble is `unreachable`, a refusal `denied`. */
function failed(err: unknown, fallback: "denied" | "invalid"): CheckResult {
  const message = err instanceof Error ? err.message : String(err);
  const cls = classifyError(err);
  if (cls === "transient" || /\bTLS\b/.test(message)) return { status: "unreachable", reason: message };
  if (cls === "not_found") return { status: "not_set", reason: message };
  return { status: fallback, reason: message };
}

function capabilitiesOf(body: VaultResponse["body"], path: string): string[] | undefined {
  const pick = (o: unknown): unknown => (o && typeof o === "object" ? (o as Record<string, unknown>)[path] : undefined);
  const caps = pick(body?.data) ?? pick(body);
  return Array.isArray(caps) && caps.every((c) => typeof c === "string") ? (caps as string[]) : undefined;
}

/** The KV v2 metadata path of a read plan (`secret/data/app` → `secret/metadata/app`). */
function metadataPath(plan: ReadPlan): string | undefined {
  const rest = pathInMount(plan.label, plan.mount.path);
  if (rest === undefined || !rest.startsWith("data/")) return undefined;
  return plan.label.slice(0, plan.label.length - rest.length) + "metadata/" + rest.slice(5);
}

/** Whether a KV v2 secret (or its pinned version) holds a value, from its metadata. */
async function kvSet(d: VaultCheckDeps, meta: string, version: number | undefined, signal: AbortSignal): Promise<CheckResult | string> {
  const { res } = await d.authed({ method: "GET", path: encodePath(meta), signal });
  if (res.status === 404) return { status: "not_set", reason: `nothing is written at ${meta.replace("/metadata/", "/data/")} (its KV metadata does not exist)` };
  if (res.status !== 200) return `its metadata could not be read (${res.status})`;
  const data = (res.body?.data ?? {}) as { current_version?: unknown; versions?: Record<string, { deletion_time?: unknown; destroyed?: unknown }> };
  const n = version ?? (typeof data.current_version === "number" ? data.current_version : undefined);
  const v = n !== undefined ? data.versions?.[String(n)] : undefined;
  if (!v) return { status: "not_set", reason: `version ${n ?? "?"} does not exist` };
  if (v.destroyed === true || (typeof v.deletion_time === "string" && v.deletion_time !== "")) {
    return { status: "not_set", reason: `version ${n} is ${v.destroyed === true ? "destroyed" : "deleted"}` };
  }
  return `version ${n} is set`;
}

/** Checks one reference. Never reads a value unless `ctx.read` and the engine is KV. */
export async function checkVault(d: VaultCheckDeps, ref: SecretRef, ctx: CheckContext): Promise<CheckResult> {
  const refText = `vault:${ref.id}`;
  let path: string;
  let version: number | undefined;
  try {
    path = normalizePath(ref.id);
    version = parseVersion(ref.id, ref.options.version);
  } catch (err) {
    return { status: "invalid", reason: (err as Error).message };
  }
  try {
    await d.tokens.getToken();
  } catch (err) {
    const r = failed(err, "denied");
    return { ...r, reason: `cannot log in to ${d.address} with auth method ${d.method}: ${r.reason}` };
  }
  const write = isWrite(ref);
  let plan: ReadPlan | undefined;
  if (!write) {
    try {
      plan = planRead(path, await d.mountOf(path, refText, ctx.signal), version, refText);
    } catch (err) {
      if ((err as { status?: unknown }).status !== 403) return failed(err, "invalid");
      // The preflight says 403 for a token Vault refuses and for a path no policy covers: tell them apart.
      const probe = await d.authed({ method: "POST", path: "sys/capabilities-self", body: { paths: [path] }, signal: ctx.signal }).catch(() => undefined);
      if (probe?.res.status === 403) return { status: "denied", reason: `Vault at ${d.address} refuses the token (invalid, expired or revoked, or without the default policy)` };
      return failed(err, "denied");
    }
  }
  const apiPath = plan?.label ?? path;
  const meta = plan && plan.kvVersion === 2 ? metadataPath(plan) : undefined;
  const paths = meta ? [apiPath, meta] : [apiPath];
  let res: VaultResponse;
  try {
    ({ res } = await d.authed({ method: "POST", path: "sys/capabilities-self", body: { paths }, signal: ctx.signal }));
  } catch (err) {
    return failed(err, "denied");
  }
  if (res.status === 403) return { status: "denied", reason: "sys/capabilities-self was refused: the token's policies must allow update on it (the default policy does)" };
  if (res.status !== 200) return failed(statusError(res, "vault POST sys/capabilities-self", d.tokens.redact), "invalid");
  const caps = capabilitiesOf(res.body, apiPath) ?? [];
  const need = write ? ["update", "create"] : ["read"];
  const shown = caps.length ? caps.join(", ") : "none";
  if (!caps.includes("root") && !need.some((c) => caps.includes(c))) {
    return { status: "denied", reason: `the token may not ${write ? "update" : "read"} ${apiPath} (its capabilities there: ${shown})` };
  }
  if (write) return { status: "ok", reason: `update allowed on ${apiPath} (capabilities: ${shown}); nothing was written` };
  const allowed = `read allowed on ${apiPath} (capabilities: ${shown})`;
  try {
    const metaCaps = meta ? (capabilitiesOf(res.body, meta) ?? []) : [];
    if (meta && (metaCaps.includes("root") || metaCaps.includes("read"))) {
      const set = await kvSet(d, meta, version, ctx.signal);
      return typeof set === "string" ? { status: "ok", reason: `${allowed}; ${set}` } : set;
    }
    const kv = plan!.mount.type === "kv" || plan!.mount.type === "unknown";
    if (ctx.read && kv) {
      const r = await d.authed({ method: "GET", path: plan!.apiPath, query: plan!.query, signal: ctx.signal });
      if (r.res.status === 200 && r.res.body?.data !== null && r.res.body?.data !== undefined) return { status: "ok", reason: `${allowed}; read (value discarded)` };
      if (r.res.status === 404 || r.res.status === 200 || r.res.status === 204) return { status: "not_set", reason: `${allowed}, but nothing is written at ${apiPath}` };
      return failed(statusError(r.res, `vault GET ${apiPath}`, d.tokens.redact), "denied");
    }
    const why = kv ? "only a read shows whether it holds a value (--read reads it, discarding the value)" : `not read: a read of a ${plan!.mount.type} mount issues new credentials`;
    return { status: "ok", reason: `${allowed}; ${why}` };
  } catch (err) {
    return failed(err, "denied");
  }
}
