/**
 * Reads (`GET`): KV v1/v2 through the mount preflight, any other engine at the path as written,
 * raw endpoints whose body is not JSON (`pki/ca/pem`) as text, and leased secrets through the
 * lease table — kept in the state directory, so a restart renews a lease instead of minting new
 * credentials.
 */
import { createHash } from "node:crypto";
import type { FetchContext, Secret, SecretRef } from "../../src/api/index.js";
import { FatalError, SecretNotFoundError, TransientError, contentVersion, safeError } from "../../src/api/index.js";
import { pastMaxTtl, statusError, type VaultResponse } from "./client.js";
import { parseKeptLease } from "./leases.js";
import { normalizePath, parseVersion, planRead, type ReadPlan } from "./mounts.js";
import type { VaultSession } from "./session.js";

/** A lease as a response states it. */
export interface LeaseInfo {
  readonly leaseId: string;
  readonly durationS: number;
  readonly renewable: boolean;
}

/** A short fingerprint of a token, kept with a lease (never the token). */
export function tokenFingerprint(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 16);
}

/** The lease a response carries, if any. */
export function leaseOf(res: VaultResponse): LeaseInfo | undefined {
  const body = res.body;
  const leaseId = typeof body?.lease_id === "string" ? body.lease_id : "";
  const durationS = typeof body?.lease_duration === "number" ? body.lease_duration : 0;
  return leaseId !== "" && durationS > 0 ? { leaseId, durationS, renewable: body?.renewable === true } : undefined;
}

function toSecret(plan: ReadPlan, res: VaultResponse, refText: string): Secret {
  if (res.body === undefined && res.text !== undefined) {
    // A raw endpoint (`pki/ca/pem`) answers PEM text. A KV mount never does, and an HTML page is
    // a proxy or a captive portal, not Vault: neither is taken as a value (never quoted either).
    if (plan.mount.type === "kv" || /^\s*text\/html\b/i.test(res.contentType ?? "")) {
      throw new TransientError(`${refText}: the response from ${plan.label} is not JSON (status ${res.status}${res.contentType ? `, ${res.contentType.split(";")[0]}` : ""})`);
    }
    return { value: res.text, version: contentVersion(res.text) };
  }
  const body = res.body;
  let data: unknown;
  let version: string;
  if (plan.kvVersion === 2) {
    const d = (body?.data ?? null) as { data?: unknown; metadata?: { version?: unknown; created_time?: unknown } } | null;
    if (!d || d.data === null || d.data === undefined) throw new SecretNotFoundError(`${refText}: ${plan.label} has no data (deleted or destroyed)`);
    data = d.data;
    const v = d.metadata?.version;
    // The version number restarts at 1 when a secret's metadata is deleted and it is written
    // again; the creation time tells those apart.
    version = typeof v === "number" ? `kv2:${v}:${String(d.metadata?.created_time ?? "")}` : contentVersion(JSON.stringify(data));
  } else {
    data = body?.data;
    if (data === null || data === undefined) throw new SecretNotFoundError(`${refText}: ${plan.label} has no data`);
    version = contentVersion(JSON.stringify(data));
  }
  const value = typeof data === "string" ? data : JSON.stringify(data);
  return { value, version, ...(typeof data === "object" ? { data } : {}) };
}

/**
 * Fetches a leased (or possibly leased) secret: the held credentials while the lease is good, a
 * renewal at about 2/3 of it, and `mint` (a read or a write) for new ones. The first time a key
 * is asked for, a lease kept in the state directory is restored when it is still valid and was
 * made under the current token.
 */
export class LeasedFetcher {
  readonly #s: VaultSession;
  /** Keys whose kept lease was looked at already (a dropped lease is never restored twice). */
  readonly #restoreTried = new Set<string>();
  /** Keys that have a lease entry in the state directory (written or found). */
  readonly #kept = new Set<string>();

  constructor(session: VaultSession) {
    this.#s = session;
  }

  /** Forgets which keys were restored (the lease table was cleared). */
  reset(): void {
    this.#restoreTried.clear();
    this.#kept.clear();
  }

  /**
   * @param mint - gets new credentials; `keepsState` when it kept its result in the state
   *   directory itself (an issued certificate), which must then not be deleted
   * @param kept - reads the kept entry, when the caller has read it already
   */
  async fetch(
    key: string,
    refText: string,
    ctx: FetchContext,
    mint: () => Promise<{ secret: Secret; lease?: LeaseInfo; gen: number; token: string; keepsState?: boolean }>,
    kept: () => Promise<unknown> = async () => ctx.state?.get(key),
  ): Promise<Secret> {
    const s = this.#s;
    const current = await s.tokens.getToken();
    // `emissary refresh --reissue`: new credentials, not the held lease (which Vault revokes when it ends).
    if (ctx.reissue) {
      s.leases.delete(key);
      this.#restoreTried.add(key);
    }
    let plan = s.leases.plan(key, current.gen);
    if (plan.action === "read" && !this.#restoreTried.has(key) && ctx.state?.enabled) {
      this.#restoreTried.add(key);
      const lease = parseKeptLease(await kept());
      if (lease) this.#kept.add(key);
      if (lease && lease.token === tokenFingerprint(current.token) && s.leases.restore(key, lease, current.gen, ctx.issue !== false)) {
        s.logger.info({ ref: refText, renewable: lease.renewable }, lease.renewable ? "vault: using the lease kept in the state directory; renewing it" : "vault: using the lease kept in the state directory");
        plan = s.leases.plan(key, current.gen);
      } else if (lease) {
        s.logger.info({ ref: refText }, "vault: the kept lease has expired or was made under another token; getting new credentials");
      }
    }
    if (plan.action === "cached") return plan.secret;
    if (plan.action === "renew") {
      const renewed = await this.#renew(key, plan.leaseId, plan.incrementS, ctx);
      if (renewed) return renewed;
    }
    const r = await mint();
    s.leases.delete(key);
    if (!r.lease) {
      // No lease any more: its entry goes (a certificate's entry was just written by `mint`).
      if (this.#kept.delete(key) && ctx.state?.enabled && !r.keepsState && ctx.issue !== false) await ctx.state.delete(key);
      return r.secret;
    }
    const secret = s.leases.record(key, r.secret, r.lease, r.gen);
    await this.#keep(key, ctx, r.token);
    return secret;
  }

  async #keep(key: string, ctx: FetchContext, token: string): Promise<void> {
    // Called even when the state directory is off: it says so once.
    if (!ctx.state || ctx.issue === false) return;
    const kept = this.#s.leases.export(key, tokenFingerprint(token));
    if (!kept) return;
    this.#kept.add(key);
    await ctx.state.set(key, kept);
    // A kept lease is only usable after a restart under the token it was made under.
    await this.#s.tokens.keep();
  }

  async #renew(key: string, leaseId: string, incrementS: number, ctx: FetchContext): Promise<Secret | undefined> {
    const s = this.#s;
    let res: VaultResponse;
    let token: string;
    try {
      ({ res, token } = await s.authed({ method: "POST", path: "sys/leases/renew", body: { lease_id: leaseId, increment: incrementS }, signal: ctx.signal }));
    } catch (err) {
      s.logger.warn({ err: safeError(err) }, "vault: lease renewal failed; will retry");
      const p = s.leases.renewFailed(key, false);
      return p.action === "cached" ? p.secret : undefined;
    }
    const duration = typeof res.body?.lease_duration === "number" ? res.body.lease_duration : undefined;
    if (res.status === 200 && duration !== undefined) {
      const p = s.leases.renewed(key, duration, res.body?.renewable === true);
      s.logger.debug({ leaseSeconds: duration, replacing: p.action !== "cached" }, p.action === "cached" ? "vault: lease renewed" : "vault: lease is near its max TTL; reading new credentials");
      if (p.action === "cached") await this.#keep(key, ctx, token);
      return p.action === "cached" ? p.secret : undefined;
    }
    // 400 (lease not found / not renewable), 403, 404: the lease is gone; read new credentials.
    // A 500 "past the max TTL, cannot renew" (the lease's last second) is as final.
    const permanent = res.status === 400 || res.status === 403 || res.status === 404 || pastMaxTtl(res);
    s.logger.warn({ status: res.status, permanent }, permanent ? "vault: lease cannot be renewed; reading new credentials" : "vault: lease renewal failed; will retry");
    const p = s.leases.renewFailed(key, permanent);
    return p.action === "cached" ? p.secret : undefined;
  }
}

/** Reads `ref` (a reference without params). */
export async function readSecret(s: VaultSession, leased: LeasedFetcher, ref: SecretRef, key: string, ctx: FetchContext): Promise<Secret> {
  const refText = `vault:${ref.id}`;
  return leased.fetch(key, refText, ctx, async () => {
    const path = normalizePath(ref.id);
    const version = parseVersion(ref.id, ref.options.version);
    const mount = await s.mountOf(path, refText, ctx.signal, ctx.fresh === true);
    const plan = planRead(path, mount, version, refText);
    const { res, gen, token } = await s.authed({ method: "GET", path: plan.apiPath, query: plan.query, signal: ctx.signal });
    if (res.status === 200) {
      const lease = leaseOf(res);
      const secret = toSecret(plan, res, refText);
      s.warnings.report({ key, refText, path: plan.label, body: res.body });
      return { secret, ...(lease ? { lease } : {}), gen, token };
    }
    if (res.status === 204) throw new SecretNotFoundError(`${refText}: ${plan.label} has no data`);
    if (res.status === 404) {
      const meta = (res.body?.data as { metadata?: { deletion_time?: unknown; destroyed?: unknown; version?: unknown } } | undefined)?.metadata;
      if (meta && (meta.destroyed === true || (typeof meta.deletion_time === "string" && meta.deletion_time !== ""))) {
        throw new SecretNotFoundError(`${refText}: version ${String(meta.version ?? "?")} of ${plan.label} is ${meta.destroyed === true ? "destroyed" : "deleted"}`);
      }
      throw new SecretNotFoundError(`${refText}: nothing at ${plan.label}${version !== undefined ? ` version ${version}` : ""}`);
    }
    if (res.status === 403) {
      s.mounts.forget(path);
      throw Object.assign(new FatalError(`${refText}: permission denied reading ${plan.label}`), { status: 403, path: plan.label });
    }
    throw statusError(res, `vault GET ${plan.label}`, s.tokens.redact);
  });
}
