/**
 * Typed errors. Each error class says what the scheduling loop should do with it:
 * keep waiting ({@link SecretNotFoundError}), back off and retry ({@link TransientError}),
 * or log loudly and retry at the cap ({@link FatalError}).
 *
 * Errors are matched by `code` as well as by `instanceof`, so a backend compiled against
 * another copy of this package still classifies correctly.
 *
 * Messages must never contain a secret value: they are logged as they are.
 */

/** Base class of every error emissary throws on purpose. */
export abstract class EmissaryError extends Error {
  /** Stable machine-readable code. */
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The secret does not exist (yet), or is empty / `intentionally-empty`. The loop keeps waiting. */
export class SecretNotFoundError extends EmissaryError {
  readonly code = "NOT_FOUND" as const;
}

/** A passing failure (network, throttling, 5xx). The loop backs off exponentially with jitter. */
export class TransientError extends EmissaryError {
  readonly code = "TRANSIENT" as const;
  /** A server-suggested delay before the next try (e.g. from `Retry-After`). */
  readonly retryAfterMs?: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** Authentication, permission or a malformed reference. Logged loudly, retried at the backoff cap. */
export class FatalError extends EmissaryError {
  readonly code = "FATAL" as const;
}

/**
 * A fetch would have to issue something (a write, a new certificate or lease) where issuing is not
 * allowed (`emissary render`, `check`). Classified as fatal.
 */
export class WouldIssueError extends EmissaryError {
  readonly code = "WOULD_ISSUE" as const;
  /** The reference as a template names it. */
  readonly ref: string;
  constructor(ref: string, message?: string) {
    super(message ?? `${ref}: would be issued (a write to Vault); nothing is kept for it in the state directory`);
    this.ref = ref;
  }
}

/** Where in a file an error was found. All fields 1-based. */
export interface SourceLocation {
  /** File path as the user named it. */
  readonly file?: string;
  /** 1-based line. */
  readonly line?: number;
  /** 1-based column. */
  readonly column?: number;
  /** The field (front-matter key or config key path) at fault. */
  readonly field?: string;
}

function formatLocation(loc: SourceLocation): string {
  let where = loc.file ?? "";
  if (loc.line !== undefined) where += `${where ? ":" : "line "}${loc.line}`;
  if (loc.line !== undefined && loc.column !== undefined) where += `:${loc.column}`;
  return where;
}

/** A template file could not be parsed or validated. The template is skipped; others carry on. */
export class TemplateError extends EmissaryError {
  readonly code = "TEMPLATE" as const;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly field?: string;
  /** The reason alone, without the location prefix. */
  readonly reason: string;
  constructor(reason: string, loc: SourceLocation = {}, options?: { cause?: unknown }) {
    const where = formatLocation(loc);
    const field = loc.field ? `${loc.field}: ` : "";
    super(`${where ? where + ": " : ""}${field}${reason}`, options);
    this.reason = reason;
    if (loc.file !== undefined) this.file = loc.file;
    if (loc.line !== undefined) this.line = loc.line;
    if (loc.column !== undefined) this.column = loc.column;
    if (loc.field !== undefined) this.field = loc.field;
  }
}

/** Bad flag, environment variable or configuration file. CLI exit code 2. */
export class ConfigError extends EmissaryError {
  readonly code = "CONFIG" as const;
  readonly file?: string;
  readonly field?: string;
  constructor(message: string, loc: { file?: string; field?: string } = {}, options?: { cause?: unknown }) {
    super(message, options);
    if (loc.file !== undefined) this.file = loc.file;
    if (loc.field !== undefined) this.field = loc.field;
  }
}

/** A destination file could not be written. The last good file stays in place. */
export class WriteError extends EmissaryError {
  readonly code = "WRITE" as const;
  /** The destination path. */
  readonly path: string;
  /** The underlying errno code, e.g. `EACCES`. */
  readonly errno?: string;
  constructor(message: string, path: string, errno?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
    if (errno !== undefined) this.errno = errno;
  }
}

/** What the scheduling loop does with an error. */
export type ErrorClass = "not_found" | "transient" | "fatal";

const CODE_TABLE: Readonly<Record<string, ErrorClass>> = {
  NOT_FOUND: "not_found",
  TRANSIENT: "transient",
  FATAL: "fatal",
  TEMPLATE: "fatal",
  CONFIG: "fatal",
  WOULD_ISSUE: "fatal",
};

/**
 * Classifies any thrown value in one place. Unknown errors are transient: retrying something
 * we do not understand is safer than giving up on it.
 */
export function classifyError(err: unknown): ErrorClass {
  if (err instanceof SecretNotFoundError) return "not_found";
  if (err instanceof TransientError) return "transient";
  if (err instanceof FatalError) return "fatal";
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in CODE_TABLE) return CODE_TABLE[code]!;
  return "transient";
}
