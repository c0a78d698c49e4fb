/**
 * What a backend needs of logging: the log levels, the safe error serializer and the pino
 * `Logger` type. The logger itself is made in src/observe/log.ts.
 * @module
 */
import { pino, type Logger } from "pino";

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Log output formats accepted by `--log-format`. */
export const LOG_FORMATS = ["json", "pretty"] as const;
/** A log format. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Fields of an error object that may be logged. Everything else — request headers, request
 * bodies, SDK `$response`, axios `config` — is dropped, because SDK and HTTP client errors carry
 * tokens and credentials (a Vault token has been seen printed this way).
 */
const ERROR_FIELDS = [
  "code",
  "errno",
  "syscall",
  "path",
  "statusCode",
  "status",
  "retryAfterMs",
  "file",
  "line",
  "column",
  "field",
  "ref",
  "reason",
] as const;

/** Longest error message kept; long messages are more likely to quote payloads. */
const MAX_MESSAGE = 500;

/** A serialized error: only whitelisted, primitive fields. */
export interface SafeError {
  type: string;
  message: string;
  [key: string]: unknown;
}

/**
 * Serializes an error keeping whitelisted primitive fields only, following `cause` three levels.
 * AWS SDK errors keep their `$metadata.httpStatusCode` and `$fault`, nothing else.
 */
export function safeError(err: unknown, depth = 0): SafeError {
  if (err === null || typeof err !== "object") {
    return { type: typeof err, message: typeof err === "string" ? truncate(err) : String(err) };
  }
  const e = err as Record<string, unknown> & { name?: unknown; message?: unknown };
  const out: SafeError = {
    type: typeof e.name === "string" ? e.name : (e.constructor?.name ?? "Error"),
    message: typeof e.message === "string" ? truncate(e.message) : "",
  };
  // JSON.parse's SyntaxError quotes the text it failed on, which may be a secret.
  if (out.type === "SyntaxError") out.message = "invalid syntax (message withheld: it may quote a secret)";
  for (const k of ERROR_FIELDS) {
    const v = e[k];
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = typeof v === "string" ? truncate(v) : v;
  }
  const meta = e.$metadata as Record<string, unknown> | undefined;
  if (meta && typeof meta.httpStatusCode === "number") out.httpStatusCode = meta.httpStatusCode;
  if (typeof e.$fault === "string") out.fault = e.$fault;
  if (depth < 3 && e.cause !== undefined) out.cause = safeError(e.cause, depth + 1);
  return out;
}

function truncate(s: string): string {
  return s.length > MAX_MESSAGE ? s.slice(0, MAX_MESSAGE) + "…" : s;
}

/**
 * Paths pino removes from every line, as a second line of defence behind the error serializer
 * and the rule that values are never passed to the logger at all.
 */
export const REDACT_PATHS: readonly string[] = [
  "value",
  "*.value",
  "secret",
  "*.secret",
  "token",
  "*.token",
  "password",
  "*.password",
  "output",
  "*.output",
  "rendered",
  "*.rendered",
  "headers",
  "*.headers",
  "authorization",
  "*.authorization",
  'headers["x-vault-token"]',
  "config.headers",
  "env",
  "*.env",
];

/** A logger that drops everything (library default when the caller passes none). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

export type { Logger };
