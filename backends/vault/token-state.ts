/**
 * The token keeper's record of its token, and the backoff of its upkeep (renewals, logins).
 */
import type { VaultAuthConfig } from "./config.js";

/** The secrets a configuration holds itself (a token, AppRole ids, AWS keys), to scrub from messages. */
export function knownSecrets(a: VaultAuthConfig, env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  if (a.method === "token" && a.token) out.push(a.token);
  if (a.method === "approle") for (const s of [a.roleId, a.secretId]) if (s) out.push(s);
  for (const k of ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) if (env[k]) out.push(env[k]!);
  return out;
}

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

