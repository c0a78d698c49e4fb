/**
 * The token keeper's record of its token, and the backoff of its upkeep (renewals, logins).
 */
import { TransientError } from "../../src/api/index.js";
import { pastMaxTtl, vaultErrors, type VaultResponse } from "./client.js";
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
  /** A renewal gave less than it asked for: the token's max TTL ends when this TTL does. */
  capped?: boolean;
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


/** What an `auth/token/renew-self` answer means. */
export type RenewOutcome =
  | { readonly kind: "renewed"; readonly ttlS: number; readonly renewable: boolean; readonly capped: boolean }
  | { readonly kind: "at-max" }
  | { readonly kind: "failed"; readonly err: Error; readonly permanent: boolean };

/**
 * Reads a renew-self answer. Vault caps a renewal at the token's max TTL (a TTL below the
 * increment: `capped`, seen against OpenBao as 20s, 19s, 8s… for a 20s token with a 45s max).
 * At its max TTL: 200 with lease_duration 0, or in the last second (Vault, OpenBao) 500 "past the
 * max TTL, cannot renew" — `at-max`, not a failure to retry. 400 and 403 are permanent.
 */
export function renewOutcome(res: VaultResponse, incrementS: number, redact: (s: string) => string): RenewOutcome {
  const auth = res.body?.auth;
  const ttl = auth ? num(auth.lease_duration) : undefined;
  if ((res.status === 200 && ttl === 0) || pastMaxTtl(res)) return { kind: "at-max" };
  if (res.status === 200 && ttl !== undefined) return { kind: "renewed", ttlS: ttl, renewable: auth!.renewable === true, capped: ttl < incrementS };
  const detail = vaultErrors(res.body, redact);
  const err = new TransientError(`vault POST auth/token/renew-self: ${res.status}${detail ? " " + detail : ""}`);
  return { kind: "failed", err, permanent: res.status === 400 || res.status === 403 };
}
