/**
 * Small shared pieces of the fake Vault: the HTTP answer type, Go-style durations as Vault parses
 * and prints them, and Vault's error bodies.
 */

/** An HTTP answer. `raw` replaces the JSON body (Vault's raw PKI endpoints). */
export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly raw?: { readonly contentType: string; readonly body: string | Buffer };
}

/** `{"errors": [...]}` with a status. */
export function errorReply(status: number, ...errors: string[]): Reply {
  return { status, body: { errors } };
}

/** Go's multierror wrapping of one error, as Vault prints errors returned by a handler. */
export function multiError(msg: string): string {
  return `1 error occurred:\n\t* ${msg}\n\n`;
}

/** A request to an operation the path does not support (logical.ErrUnsupportedOperation). */
export const UNSUPPORTED: Reply = errorReply(405, multiError("unsupported operation"));

/** A request the token's policies do not allow (logical.ErrPermissionDenied). */
export const DENIED: Reply = errorReply(403, multiError("permission denied"));

/**
 * Vault's duration parameters (`parseutil.ParseDurationSecond`): a number of seconds, a numeric
 * string, or a Go duration (`90s`, `1h30m`, `768h`). Undefined for empty or invalid input.
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
  if (typeof v !== "string") return undefined;
  const s = v.trim();
  if (s === "") return undefined;
  if (/^\d+$/.test(s)) return Number(s);
  if (!/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) {
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3600 : m[2] === "m" ? n * 60 : m[2] === "s" ? n : n / 1000;
  }
  return Math.floor(total);
}

/** Go's `time.Duration.String()` for whole seconds: `1h0m0s`, `10m0s`, `45s`, `0s`. */
export function goDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** Vault's `humanDuration` (sdk/framework/lease.go): Go's form without zero parts (`1h`, `10m`, `1m30s`). */
export function humanDuration(seconds: number): string {
  let s = goDuration(seconds);
  if (s.endsWith("m0s")) s = s.slice(0, -2);
  const i = s.indexOf("h0m");
  if (i > 0) s = s.slice(0, i + 1) + s.slice(i + 3);
  return s;
}

/**
 * Vault's `framework.CalculateTTL` for a renewal: the new TTL in seconds for `increment`
 * (or `ttl` when none was asked), capped by what is left of the max TTL counted from
 * `issuedAtMs`. Times are truncated to the second as Vault does. `past: true` when nothing is
 * left ("past the max TTL, cannot renew").
 */
export function renewalTtl(o: { increment: number | undefined; ttl: number; maxTtl: number | undefined; issuedAtMs: number; nowMs: number }): { ttl: number; warning?: string; past?: true } {
  const want = o.increment && o.increment > 0 ? o.increment : o.ttl;
  if (o.maxTtl === undefined || o.maxTtl <= 0) return { ttl: want };
  const left = Math.floor(o.issuedAtMs / 1000) + o.maxTtl - Math.floor(o.nowMs / 1000);
  if (left <= 0) return { ttl: 0, past: true };
  if (want > left) return { ttl: left, warning: `TTL of "${humanDuration(want)}" exceeded the effective max_ttl of "${humanDuration(left)}"; TTL value is capped accordingly` };
  return { ttl: want };
}

/** A string or a list of strings as Vault's comma-string-slice parameters take them. */
export function commaList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String).map((s) => s.trim()).filter(Boolean);
  if (typeof v === "string") return v.split(",").map((s) => s.trim()).filter(Boolean);
  return [];
}

/** The error list of an injected fault (`FakeVault.fail`) when the test gives none. */
export function defaultErrors(status: number, path: string): string[] {
  switch (status) {
    case 403:
      return ["1 error occurred:\n\t* permission denied\n\n"];
    case 404:
      return [];
    case 429:
      return [`request path "${path}": rate limit quota exceeded`];
    case 503:
      return ["Vault is sealed"];
    default:
      return ["internal error"];
  }
}
