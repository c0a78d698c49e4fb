/**
 * Leased secrets (database credentials, cloud credentials, anything read with a `lease_id`).
 *
 * Reading such a path again mints new credentials, so a fetch while the lease is good returns the
 * credentials already held. The lease is renewed in the fetch the core makes at about 2/3 of it:
 * the `ttlMs` returned for a renewable lease is chosen so that the core's next fetch (at ~90% of
 * `ttlMs`, with jitter) lands there. Renewing inside the fetch keeps the core's idea of the
 * lease's end exact, needs no timer of its own, and stops by itself when no template uses the
 * secret any more. When a renewal comes back shorter than asked (the max TTL is near), new
 * credentials are read at once. A lease that is not renewable is returned with its true
 * remaining time (`lease_duration`), and the core's fetch at ~90% of it reads new credentials,
 * which are then rendered.
 *
 * With a state directory, each lease is kept there ({@link KeptLease}); after a restart a kept
 * lease that is still valid, made under the same token, is restored and renewed at once (which
 * also proves Vault still has it) instead of minting new credentials.
 */
import type { Secret } from "../../src/api/index.js";

/** A lease as kept in the state directory. */
export interface KeptLease {
  readonly kind: "lease";
  readonly leaseId: string;
  readonly value: string;
  readonly version?: string;
  /** The value is JSON text whose parsed form templates use (`data`). */
  readonly structured: boolean;
  readonly initialMs: number;
  readonly durationMs: number;
  readonly expiresAt: number;
  readonly renewable: boolean;
  /** Fingerprint of the token the lease was made under: Vault revokes a token's leases with it. */
  readonly token: string;
}

/** Reads a kept lease back; undefined for anything that is not one. */
export function parseKeptLease(v: unknown): KeptLease | undefined {
  const k = v as Partial<KeptLease> | null;
  if (k === null || typeof k !== "object" || k.kind !== "lease") return undefined;
  const nums = [k.initialMs, k.durationMs, k.expiresAt];
  if (typeof k.leaseId !== "string" || k.leaseId === "" || typeof k.value !== "string" || typeof k.token !== "string") return undefined;
  if (!nums.every((n) => typeof n === "number" && Number.isFinite(n) && n > 0) || typeof k.renewable !== "boolean" || typeof k.structured !== "boolean") return undefined;
  if (k.version !== undefined && typeof k.version !== "string") return undefined;
  return k as KeptLease;
}

/** What the backend should do for a reference with (or without) a lease. */
export type LeasePlan =
  | { readonly action: "cached"; readonly secret: Secret }
  | { readonly action: "renew"; readonly leaseId: string; readonly incrementS: number }
  | { readonly action: "read" };

interface Entry {
  readonly leaseId: string;
  readonly secret: Secret;
  /** Token generation the lease was created under: a new login orphans old leases. */
  readonly tokenGen: number;
  readonly initialMs: number;
  durationMs: number;
  expiresAt: number;
  renewAt: number;
  renewable: boolean;
  failures: number;
}

/** Fraction of a lease after which it is renewed. */
export const RENEW_FRACTION = 2 / 3;
/** The core's refresh fraction of `ttlMs` (see the scheduler). */
const CORE_FRACTION = 0.9;
/** A lease with less than this fraction of its period left is replaced by a fresh read. */
const REPLACE_FRACTION = 0.25;
/** Shortest `ttlMs` handed to the core, so a short lease cannot make it spin. */
const MIN_TTL_MS = 1000;

/** The lease table of one backend. */
export class LeaseTable {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Number of leases held (for tests and debugging). */
  get size(): number {
    return this.#entries.size;
  }

  /** What to do for `key`, given the current token generation. */
  plan(key: string, tokenGen: number): LeasePlan {
    const e = this.#entries.get(key);
    if (!e) return { action: "read" };
    const now = this.#now();
    const remaining = e.expiresAt - now;
    if (remaining <= 0 || e.tokenGen !== tokenGen) {
      // Expired, or created under a token that has been replaced (Vault revokes a token's leases with it).
      this.#entries.delete(key);
      return { action: "read" };
    }
    if (!e.renewable) {
      if (remaining < REPLACE_FRACTION * e.durationMs) {
        this.#entries.delete(key);
        return { action: "read" };
      }
      return { action: "cached", secret: this.#withTtl(e, now) };
    }
    // A little early is fine: the core's jitter may bring it back just before renewAt.
    if (now >= e.renewAt - 0.05 * e.durationMs) {
      if (remaining < 0.1 * e.durationMs) {
        // Renewal kept failing: get new credentials while the old ones still work.
        this.#entries.delete(key);
        return { action: "read" };
      }
      return { action: "renew", leaseId: e.leaseId, incrementS: Math.max(1, Math.round(e.initialMs / 1000)) };
    }
    return { action: "cached", secret: this.#withTtl(e, now) };
  }

  /**
   * Remembers a freshly read leased secret.
   * @returns the secret with the `ttlMs` to hand to the core
   */
  record(key: string, secret: Secret, lease: { leaseId: string; durationS: number; renewable: boolean }, tokenGen: number): Secret {
    const now = this.#now();
    const durationMs = lease.durationS * 1000;
    const e: Entry = {
      leaseId: lease.leaseId,
      secret: { value: secret.value, ...(secret.version !== undefined ? { version: secret.version } : {}), ...(secret.data !== undefined ? { data: secret.data } : {}) },
      tokenGen,
      initialMs: durationMs,
      durationMs,
      expiresAt: now + durationMs,
      renewAt: now + RENEW_FRACTION * durationMs,
      renewable: lease.renewable,
      failures: 0,
    };
    this.#entries.set(key, e);
    return this.#withTtl(e, now);
  }

  /**
   * Applies a successful renewal. A renewal that came back shorter than asked has hit the lease's
   * max TTL: the lease cannot last much longer, so new credentials are read now, while the old
   * ones still have about a third of a lease period left for the switch-over. (Waiting for the
   * last few seconds of a short final period would leave too little time to render and reload.)
   * @returns the plan after the renewal: `cached`, or `read` for new credentials
   */
  renewed(key: string, durationS: number, renewable: boolean): LeasePlan {
    const e = this.#entries.get(key);
    if (!e) return { action: "read" };
    const now = this.#now();
    const durationMs = durationS * 1000;
    const capped = durationMs < e.initialMs - Math.max(1000, 0.05 * e.initialMs);
    if (durationMs <= 0 || capped) {
      this.#entries.delete(key);
      return { action: "read" };
    }
    e.durationMs = durationMs;
    e.expiresAt = now + durationMs;
    e.renewAt = now + RENEW_FRACTION * durationMs;
    e.failures = 0;
    e.renewable = renewable;
    return { action: "cached", secret: this.#withTtl(e, now) };
  }

  /**
   * A renewal failed. `permanent` (the lease is gone or cannot be renewed) drops it, so the
   * credentials are read again; otherwise the renewal is retried later while the lease lasts.
   */
  renewFailed(key: string, permanent: boolean): LeasePlan {
    const e = this.#entries.get(key);
    if (!e) return { action: "read" };
    const now = this.#now();
    const remaining = e.expiresAt - now;
    if (permanent || remaining < 0.1 * e.durationMs) {
      this.#entries.delete(key);
      return { action: "read" };
    }
    e.failures++;
    e.renewAt = now + Math.max(MIN_TTL_MS, remaining * 0.25);
    return { action: "cached", secret: this.#withTtl(e, now) };
  }

  /** The lease of `key` as the state directory keeps it, made under the token with fingerprint `token`. */
  export(key: string, token: string): KeptLease | undefined {
    const e = this.#entries.get(key);
    // A lease's value is Vault's JSON text; only text is kept in the state directory.
    if (!e || typeof e.secret.value !== "string") return undefined;
    return {
      kind: "lease",
      leaseId: e.leaseId,
      value: e.secret.value,
      ...(e.secret.version !== undefined ? { version: e.secret.version } : {}),
      structured: e.secret.data !== undefined,
      initialMs: e.initialMs,
      durationMs: e.durationMs,
      expiresAt: e.expiresAt,
      renewable: e.renewable,
      token,
    };
  }

  /**
   * Takes back a kept lease (after a restart). With `renewNow`, a renewable one is due for
   * renewal at once: the renewal proves Vault still holds it before its credentials are used.
   * @returns false when it has expired or is about to
   */
  restore(key: string, kept: KeptLease, tokenGen: number, renewNow = true): boolean {
    const now = this.#now();
    const remaining = kept.expiresAt - now;
    if (remaining < 0.1 * kept.durationMs || remaining < MIN_TTL_MS) return false;
    let data: unknown;
    if (kept.structured) {
      try {
        data = JSON.parse(kept.value);
      } catch {
        return false;
      }
    }
    this.#entries.set(key, {
      leaseId: kept.leaseId,
      secret: { value: kept.value, ...(kept.version !== undefined ? { version: kept.version } : {}), ...(data !== undefined ? { data } : {}) },
      tokenGen,
      initialMs: kept.initialMs,
      durationMs: kept.durationMs,
      expiresAt: kept.expiresAt,
      renewAt: kept.renewable && renewNow ? now : kept.renewable ? Math.min(kept.expiresAt, now + RENEW_FRACTION * remaining) : kept.expiresAt,
      renewable: kept.renewable,
      failures: 0,
    });
    return true;
  }

  /** Forgets one lease (its reference failed in a way that makes the held value doubtful). */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Forgets every lease. */
  clear(): void {
    this.#entries.clear();
  }

  #withTtl(e: Entry, now: number): Secret {
    const remaining = e.expiresAt - now;
    let ttlMs: number;
    if (e.renewable) {
      // Bring the core back at renewAt: it fetches at ~CORE_FRACTION of ttlMs.
      ttlMs = Math.min(remaining, Math.max(MIN_TTL_MS, (e.renewAt - now) / CORE_FRACTION));
    } else {
      ttlMs = remaining;
    }
    return { ...e.secret, ttlMs: Math.max(1, Math.round(ttlMs)) };
  }
}
