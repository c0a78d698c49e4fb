/**
 * The token of a login method (AppRole, AWS, JWT, cert) kept in the state directory, so a restart
 * goes on with the same token instead of logging in again: Vault revokes a token's leases when the
 * token ends, so the leases kept beside it stay usable only under it (Vault Agent's persistent
 * cache keeps its auto-auth token for the same reason). The token is used again only for the same
 * method, mount and role, and only after `auth/token/lookup-self` says it is alive.
 */
import { createHash } from "node:crypto";
import type { StateAccess } from "../../src/api/index.js";
import type { VaultClient } from "./client.js";
import type { LoginAuth } from "./login.js";
import { num, type State } from "./token-state.js";

interface KeptToken {
  readonly token: string;
  /** What the token was obtained for (method, mount, role), hashed. */
  readonly identity: string;
  readonly ttlMs?: number;
  readonly initialTtlMs?: number;
  readonly renewable: boolean;
  readonly obtainedAt: number;
}

/** What a kept token is still good for. */
export interface RestoredToken {
  readonly token: string;
  readonly ttlMs?: number;
  readonly initialTtlMs?: number;
  readonly renewable: boolean;
}

function entry(auth: LoginAuth): string {
  return `login-token/${auth.method}/${auth.mount}`;
}

function identity(auth: LoginAuth): string {
  const who =
    auth.method === "approle" ? (auth.roleId ?? `file:${auth.roleIdFile}`) : auth.method === "jwt" ? auth.role : auth.method === "aws" ? (auth.role ?? "") : (auth.name ?? "");
  return createHash("sha256").update(JSON.stringify([auth.method, auth.mount, who])).digest("hex").slice(0, 32);
}

/** Keeps the current token (after a login or a renewal). Never throws. */
export async function keepToken(state: StateAccess | undefined, auth: LoginAuth, s: State): Promise<void> {
  if (!state) return;
  const kept: KeptToken = {
    token: s.token,
    identity: identity(auth),
    ...(s.ttlMs !== undefined ? { ttlMs: s.ttlMs } : {}),
    ...(s.initialTtlMs !== undefined ? { initialTtlMs: s.initialTtlMs } : {}),
    renewable: s.renewable,
    obtainedAt: s.obtainedAt,
  };
  await state.set(entry(auth), kept);
}

/**
 * The kept token, when it was obtained for this method, mount and role, has time left, and Vault
 * says it is alive; undefined otherwise (the entry is then deleted).
 */
export async function restoreToken(state: StateAccess | undefined, auth: LoginAuth, client: VaultClient, now: number): Promise<RestoredToken | undefined> {
  if (!state?.enabled) return undefined;
  const k = (await state.get(entry(auth))) as Partial<KeptToken> | undefined;
  if (!k || typeof k.token !== "string" || k.token === "" || k.identity !== identity(auth) || typeof k.obtainedAt !== "number") return undefined;
  if (k.ttlMs && now >= k.obtainedAt + k.ttlMs - 10_000) {
    await state.delete(entry(auth));
    return undefined;
  }
  let res;
  try {
    res = await client.request({ method: "GET", path: "auth/token/lookup-self", token: k.token });
  } catch {
    return undefined;
  }
  if (res.status !== 200) {
    if (res.status === 403) await state.delete(entry(auth));
    return undefined;
  }
  const d = (res.body?.data ?? {}) as { ttl?: unknown; creation_ttl?: unknown; renewable?: unknown };
  const ttl = num(d.ttl);
  const created = num(d.creation_ttl);
  return {
    token: k.token,
    ...(ttl !== undefined ? { ttlMs: ttl * 1000 } : {}),
    ...(created ? { initialTtlMs: created * 1000 } : k.initialTtlMs !== undefined ? { initialTtlMs: k.initialTtlMs } : {}),
    renewable: d.renewable === true,
  };
}
