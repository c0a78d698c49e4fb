/**
 * Leases of the fake Vault: database-style dynamic credentials (`GET <mount>/creds/<role>` →
 * `data {username, password}` with `lease_id`, `lease_duration`, `renewable`) and the
 * `sys/leases` endpoints (api-docs/system/leases):
 *
 * - `PUT sys/leases/renew {lease_id, increment}` (or `sys/leases/renew/<lease_id>`) →
 *   `{lease_id, renewable, lease_duration}`; the TTL is capped by the lease's max TTL (with
 *   Vault's "TTL of … exceeded the effective max_ttl …" warning). Unknown or expired lease →
 *   400 "lease not found"; not renewable → 400 "lease is not renewable"; past the max TTL →
 *   400 "failed to renew entry: resp: (*logical.Response)(nil) err: past the max TTL, cannot
 *   renew" (the database engine's renew handler fails and sys/leases wraps it as a user error).
 * - `PUT sys/leases/lookup {lease_id}` → `data {id, issue_time, expire_time, last_renewal, path,
 *   renewable, ttl}`; unknown → 400 "invalid lease".
 * - `PUT sys/leases/revoke {lease_id}` → 204.
 *
 * Per role, counters tell a renewal from a fresh credential: {@link FakeVaultLeases.leaseCounts}.
 */
import { randomBytes } from "node:crypto";
import { FakeVaultState, type FakeMount, type FakeToken } from "./vault-state.js";
import { errorReply, parseDuration, renewalTtl, type Reply } from "./vault-util.js";

/** A database role handing out credentials with a lease. */
export interface FakeDbRole {
  /** Lease TTL in seconds. */
  readonly ttl: number;
  /** Max TTL in seconds, counted from the credential's creation. */
  readonly maxTtl: number;
  readonly renewable: boolean;
  readonly password?: () => string;
}

/** A lease the fake handed out. */
export interface FakeLease {
  readonly id: string;
  readonly tokenId: string;
  /** `database/creds/app` */
  readonly path: string;
  readonly issuedAt: number;
  expiresAt: number;
  readonly maxExpiresAt: number;
  readonly maxTtl: number;
  readonly renewable: boolean;
  readonly ttl: number;
  /** The credentials' user name. */
  readonly username: string;
  lastRenewal?: number;
  renewals: number;
}

/** How often a role's credentials were created and renewed. */
export interface LeaseCounts {
  /** New credentials read (`GET …/creds/<role>`). */
  minted: number;
  /** Successful `sys/leases/renew` calls. */
  renewed: number;
}

/** Tokens, KV and leases. */
export class FakeVaultLeases extends FakeVaultState {
  readonly dbRoles = new Map<string, FakeDbRole>();
  readonly leases = new Map<string, FakeLease>();
  readonly #counts = new Map<string, LeaseCounts>();

  /** Adds a database role under a `database` mount. */
  dbRole(mount: string, role: string, r: FakeDbRole): void {
    this.dbRoles.set(`${mount.replace(/\/+$/, "")}/creds/${role}`, r);
  }

  /** Counters for `database/creds/app` (or `database`, `app`). */
  leaseCounts(path: string, role?: string): LeaseCounts {
    const key = role === undefined ? path : `${path.replace(/\/+$/, "")}/creds/${role}`;
    return { ...(this.#counts.get(key) ?? { minted: 0, renewed: 0 }) };
  }

  /** Milliseconds left on the lease of the credentials with this user name (≤ 0: expired or revoked). */
  leaseLeft(username: string): number {
    const l = [...this.leases.values()].find((x) => x.username === username);
    if (!l || !this.validToken(l.tokenId)) return 0;
    return l.expiresAt - this.now();
  }

  /** Revokes the lease of the credentials with this user name. */
  revokeLease(username: string): void {
    for (const [k, l] of this.leases) if (l.username === username) this.leases.delete(k);
  }

  /** Number of live (unexpired, unrevoked) leases. */
  liveLeases(): number {
    const now = this.now();
    return [...this.leases.values()].filter((l) => l.expiresAt > now && this.validToken(l.tokenId)).length;
  }

  /** Revokes a token and, as Vault does, the leases made with it. */
  override revokeToken(id: string): void {
    super.revokeToken(id);
    for (const [k, l] of this.leases) if (l.tokenId === id) this.leases.delete(k);
  }

  #count(path: string): LeaseCounts {
    let c = this.#counts.get(path);
    if (!c) this.#counts.set(path, (c = { minted: 0, renewed: 0 }));
    return c;
  }

  protected override readEngine(t: FakeToken, m: FakeMount, full: string, rest: string): Reply {
    if (m.type !== "database") return super.readEngine(t, m, full, rest);
    const role = this.dbRoles.get(full);
    if (!role || !rest.startsWith("creds/")) return errorReply(400, "unknown role");
    const id = `${full}/${randomBytes(9).toString("base64url")}`;
    const now = this.now();
    const data = { username: `v-token-${rest.slice(6)}-${randomBytes(5).toString("hex")}`, password: role.password?.() ?? randomBytes(12).toString("base64url") };
    this.leases.set(id, {
      id,
      tokenId: t.id,
      path: full,
      issuedAt: now,
      expiresAt: now + role.ttl * 1000,
      maxExpiresAt: now + role.maxTtl * 1000,
      maxTtl: role.maxTtl,
      renewable: role.renewable,
      ttl: role.ttl,
      username: data.username,
      renewals: 0,
    });
    this.#count(full).minted++;
    return { status: 200, body: this.envelope({ lease_id: id, renewable: role.renewable, lease_duration: role.ttl, data }) };
  }

  #live(leaseId: unknown): FakeLease | undefined {
    const l = typeof leaseId === "string" ? this.leases.get(leaseId) : undefined;
    if (!l || l.expiresAt <= this.now() || !this.validToken(l.tokenId)) return undefined;
    return l;
  }

  /** `sys/leases/renew` (body `lease_id`, or the id in the URL). */
  renewLease(_t: FakeToken, body: Record<string, unknown>, urlLeaseId?: string): Reply {
    const leaseId = body.lease_id ?? urlLeaseId;
    if (leaseId === undefined || leaseId === "") return errorReply(400, "lease_id must be specified");
    const l = this.#live(leaseId);
    if (!l) return errorReply(400, "lease not found");
    if (!l.renewable) return errorReply(400, "lease is not renewable");
    const now = this.now();
    const r = renewalTtl({ increment: parseDuration(body.increment), ttl: l.ttl, maxTtl: l.maxTtl, issuedAtMs: l.issuedAt, nowMs: now });
    if (r.past) return errorReply(400, "failed to renew entry: resp: (*logical.Response)(nil) err: past the max TTL, cannot renew");
    l.expiresAt = now + r.ttl * 1000;
    l.lastRenewal = now;
    l.renewals++;
    this.#count(l.path).renewed++;
    return { status: 200, body: this.envelope({ lease_id: l.id, renewable: true, lease_duration: r.ttl, ...(r.warning ? { warnings: [r.warning] } : {}) }) };
  }

  /** `sys/leases/lookup`. */
  lookupLease(body: Record<string, unknown>): Reply {
    if (typeof body.lease_id !== "string" || body.lease_id === "") return errorReply(400, "lease_id must be specified");
    const l = this.#live(body.lease_id);
    if (!l) return errorReply(400, "invalid lease");
    const now = this.now();
    return {
      status: 200,
      body: this.envelope({
        data: {
          expire_time: new Date(l.expiresAt).toISOString(),
          id: l.id,
          issue_time: new Date(l.issuedAt).toISOString(),
          last_renewal: l.lastRenewal === undefined ? null : new Date(l.lastRenewal).toISOString(),
          path: l.path,
          renewable: l.renewable,
          ttl: Math.max(0, Math.floor((l.expiresAt - now) / 1000)),
        },
      }),
    };
  }

  /** `sys/leases/revoke`: 204 whether or not the lease existed. */
  revokeLeaseById(body: Record<string, unknown>, urlLeaseId?: string): Reply {
    const leaseId = body.lease_id ?? urlLeaseId;
    if (typeof leaseId !== "string" || leaseId === "") return errorReply(400, "lease_id must be specified");
    this.leases.delete(leaseId);
    return { status: 204 };
  }
}
