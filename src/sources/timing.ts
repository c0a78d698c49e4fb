/**
 * When a reference is fetched next, and why: the arithmetic of the scheduler's loop (retry,
 * refresh, backoff, lease), kept apart from its bookkeeping.
 * @module
 */
import type { Secret } from "../api/backend.js";
import type { ErrorClass } from "../api/errors.js";
import { isUnsetValue } from "../api/bytes.js";
import { backoff, jitter, type Random } from "./jitter.js";

/** Backoff base for transient errors. */
export const BACKOFF_BASE_MS = 1_000;
/** Backoff cap; also the retry interval for permission/authentication errors. */
export const BACKOFF_CAP_MS = 5 * 60_000;
/** Leased secrets are re-fetched at this fraction of their TTL. */
export const LEASE_FRACTION = 0.9;

/**
 * Why a reference is fetched next (status): its first fetch, the `refresh` interval, the retry
 * interval of a secret not set yet, a backoff after an error, a lease (`ttlMs`) ending before the
 * refresh, a renewal the backend asked for (`Secret.renewal`), a push source's change, or an
 * operator's refresh.
 */
export type NextFetchReason = "first" | "refresh" | "retry" | "backoff" | "lease" | "renewal" | "change" | "operator";

/** When a reference is fetched next, and why. */
export interface FetchTiming {
  /** Epoch ms the next fetch is due (now or in the past while it waits for its batch). */
  readonly nextAt?: number;
  readonly reason?: NextFetchReason;
  /** A fetch is in flight. */
  readonly fetching: boolean;
}

/** A value (text or bytes) that counts as "not yet set": empty or `intentionally-empty`. */
export function isUnset(value: string | Uint8Array): boolean {
  return isUnsetValue(value);
}

/** The delay before the next fetch after a successful one, and its reason. */
export function afterSuccess(result: Secret, o: { refreshMs: number; retryMs: number; firstResolve: boolean; random: Random }): { delay: number; reason: NextFetchReason } {
  // A value that counts as "not yet set" is re-checked at the retry interval, as the original
  // did, not at the much longer refresh interval.
  const unset = isUnset(result.value);
  let reason: NextFetchReason = unset ? "retry" : "refresh";
  let delay = jitter(unset ? Math.min(o.retryMs, o.refreshMs) : o.refreshMs, o.random);
  // The first refresh lands anywhere in a window one whole interval wide (0.5–1.5 × refresh):
  // a fleet that boots within a minute would otherwise refresh in one burst every interval,
  // forever; never sooner than half an interval, so no secret is fetched twice in quick succession.
  if (o.firstResolve && !unset) delay = Math.round(o.refreshMs * (0.5 + o.random()));
  if (result.ttlMs !== undefined && result.ttlMs > 0) {
    const lease = jitter(result.ttlMs * LEASE_FRACTION, o.random, 0.05);
    if (lease < delay) [delay, reason] = [lease, result.renewal === true ? "renewal" : "lease"];
  }
  return { delay, reason };
}

/**
 * The delay before the next fetch after a failed one: the retry interval while not set, an
 * exponential backoff (at least the server's `retryAfterMs`) for transient errors, the cap for
 * fatal ones. `attempt` counts the transient failures before this one.
 */
export function afterError(cls: ErrorClass, o: { attempt: number; retryMs: number; retryAfterMs?: unknown; random: Random }): number {
  if (cls === "not_found") return jitter(o.retryMs, o.random);
  if (cls === "transient") {
    const delay = backoff(o.attempt, BACKOFF_BASE_MS, BACKOFF_CAP_MS, o.random);
    return typeof o.retryAfterMs === "number" && o.retryAfterMs > delay ? Math.min(o.retryAfterMs, BACKOFF_CAP_MS) : delay;
  }
  return jitter(BACKOFF_CAP_MS, o.random);
}
