/**
 * The token keeper's record of its token, and the backoff of its upkeep (renewals, logins).
 */

/** What the token keeper knows of its current token. */
export interface State {
  readonly token: string;
  readonly gen: number;
  /** Remaining TTL when obtained/renewed; undefined = unknown, 0 = does not expire. */
  ttlMs?: number;
  /** The TTL the token was created with (the renewal increment). */
  initialTtlMs?: number;
  renewable: boolean;
  obtainedAt: number;
  /** A request with this token has succeeded (so a later 403 may mean revocation). */
  worked: boolean;
  fileId?: string;
}

/** First delay of the token upkeep backoff. */
export const BACKOFF_BASE_MS = 1000;
/** Cap of the token upkeep backoff. */
export const BACKOFF_CAP_MS = 5 * 60_000;
/** Renewal attempts that may fail before a login method logs in again. */
export const RENEW_ATTEMPTS = 3;

/** Backoff with "equal jitter" for attempt `attempt` (0-based). */
export function backoff(attempt: number): number {
  const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  return Math.round(exp / 2 + (exp / 2) * Math.random());
}

/** `v` when it is a finite number ≥ 0. */
export function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
}

