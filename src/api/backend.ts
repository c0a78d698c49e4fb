import { createHash } from "node:crypto";
import type { Logger } from "pino";

/** One value of a write's `params`: a scalar, or a list of scalars (`alt_names: [a, b]`). */
export type ParamValue = string | number | boolean | readonly (string | number | boolean)[];

/**
 * A parsed secret reference without the parts the core applies itself (field, trim, default).
 * Two references with the same {@link refKey} are fetched once, however many templates use them.
 */
export interface SecretRef {
  /** Backend name as registered (aliases resolved), e.g. `vault`. */
  readonly backend: string;
  /** Backend-specific identifier: a path, a name, an ARN, a variable name. */
  readonly id: string;
  /**
   * Long-form options the backend understands (`version_stage`, `version_id`, `version`, …).
   * Empty for the short form.
   */
  readonly options: Readonly<Record<string, string | number | boolean>>;
  /**
   * Long-form `params`: the reference is a write (as `vault write` does) with these as its
   * request body. Part of the reference's identity ({@link refKey}). Absent for a read.
   */
  readonly params?: Readonly<Record<string, ParamValue>>;
}

/**
 * What emissary knows of an issued certificate, for status and metrics (never the certificate's
 * content): epoch milliseconds.
 */
export interface CertificateInfo {
  readonly notBefore: number;
  readonly notAfter: number;
  /** When it will be re-issued. */
  readonly renewAt: number;
  /** When it was issued (or restored from the state directory). */
  readonly issuedAt: number;
  /** The serial number, colon-separated hex as Vault shows it. */
  readonly serialNumber?: string;
}

/** What a backend returns for one reference. */
export interface Secret {
  /**
   * The secret's value: text (a `string`) or bytes (a `Uint8Array`; a Buffer is one). JSON objects
   * are returned as their original text. Bytes are never re-encoded: they reach the file as they
   * are when a template is that one value alone, and are read as UTF-8 text everywhere else (an
   * error, naming the reference, when they are not). A backend that reads bytes returns them, or
   * {@link textOrBytes} of them; a `string` works as it always has.
   */
  readonly value: string | Uint8Array;
  /**
   * The value is binary data with no text form at its source (AWS `SecretBinary`): unless the
   * reference says `encoding:`, it reaches templates as base64 text. @defaultValue false
   */
  readonly binary?: boolean;
  /** An opaque version; when it is unchanged the value is assumed unchanged. */
  readonly version?: string;
  /** A lease: the secret must be re-fetched before this many milliseconds have passed. */
  readonly ttlMs?: number;
  /** A structured form the backend already parsed (e.g. a YAML file), used for `#field` lookups. */
  readonly data?: unknown;
  /**
   * `ttlMs` is when the backend wants to be called again to renew what it holds (a renewable
   * lease, a certificate at its renewal point), not the end of the value's life. Only changes what
   * status reports as the reason of the next fetch (`renewal` instead of `lease`).
   */
  readonly renewal?: boolean;
  /** The value holds an issued certificate: its validity and renewal time (for status and metrics). */
  readonly certificate?: CertificateInfo;
}

/**
 * JSON entries kept in the state directory across restarts (issued certificates, leases). Values
 * are written atomically to files only emissary's user can read; they may hold private keys.
 * When the state directory is off or unusable, `enabled` is false, `get` finds nothing and `set`
 * and `delete` do nothing: a backend must work without it (a restart then issues anew).
 */
export interface StateAccess {
  /** False when nothing is kept across restarts. */
  readonly enabled: boolean;
  /** The kept value of `key`; undefined when there is none, or it was unreadable or corrupt (logged). */
  get(key: string): Promise<unknown>;
  /** Keeps `value` (JSON-serializable) under `key`. Never throws: a failed write is logged. */
  set(key: string, value: unknown): Promise<void>;
  /** Forgets `key`. Never throws. */
  delete(key: string): Promise<void>;
}

/** Passed to every fetch. */
export interface FetchContext {
  /** Aborted when emissary stops or the reference is no longer used. */
  readonly signal: AbortSignal;
  /** A logger scoped to the backend. Never log a secret value with it. */
  readonly logger: Logger;
  /** The last value this reference resolved to, for cheap "has it changed?" checks. */
  readonly previous?: Secret;
  /**
   * Entries of the state directory, by {@link refKey} of the reference being fetched. Entries of
   * references no template uses any more are deleted by the core. Absent in tests and tools that
   * keep nothing.
   */
  readonly state?: StateAccess;
  /**
   * False in `emissary render` and `check`: the backend must not issue anything (a write, a
   * certificate): it uses what it holds or what the state keeps, else throws {@link WouldIssueError}.
   * @defaultValue true
   */
  readonly issue?: boolean;
  /**
   * An operator asked for this fetch (`emissary refresh`, `POST /v1/refresh`, SIGUSR1): read the
   * value from the source itself, skipping every shortcut and cache of the backend — a
   * "has it changed?" probe (awssm's DescribeSecret, an HTTP `If-None-Match`), cached metadata
   * (Vault's mount table). `previous` is still passed, for logging only. What the backend holds
   * because the source issued it (a Vault lease, a certificate) is kept unless {@link reissue}.
   * @defaultValue false
   */
  readonly fresh?: boolean;
  /**
   * `emissary refresh --reissue`: also give up what the source issued — re-read a leased secret
   * instead of renewing or reusing its lease, re-issue a certificate before its renewal point.
   * Always comes with {@link fresh}. A backend without issued secrets ignores it.
   * @defaultValue false
   */
  readonly reissue?: boolean;
}

/**
 * What `emissary check --connect` found for one reference. Never carries a value.
 * - `ok`: the backend answered and the reference can be read (or written, for a write);
 * - `not_set`: reachable and allowed, but nothing is there yet (printed "not set yet");
 * - `denied`: authentication or permission refused;
 * - `unreachable`: no answer (network, timeout, server error);
 * - `invalid`: the reference or the backend's configuration is wrong (a bad path, a directory
 *   where a file should be, no region).
 */
export type CheckStatus = "ok" | "not_set" | "denied" | "unreachable" | "invalid";

/** The answer of {@link Backend.check}. */
export interface CheckResult {
  readonly status: CheckStatus;
  /** Why, in a sentence an operator can act on; never a value, token or credential. */
  readonly reason: string;
}

/** Passed to {@link Backend.check}. */
export interface CheckContext {
  /** Aborted at the check's deadline (`--timeout`, 10s by default, per backend). */
  readonly signal: AbortSignal;
  /** A logger scoped to the backend. Never log a secret value with it. */
  readonly logger: Logger;
  /**
   * `check --connect --read`: where permission to read can only be proven by reading (AWS
   * GetSecretValue), read the value and discard it. Never for a read that issues something
   * (Vault dynamic credentials, certificates). @defaultValue false
   */
  readonly read?: boolean;
}

/** Passed to {@link Backend.watch}. */
export interface WatchContext {
  /** The last value the subscriber holds for this reference, if any. */
  readonly previous?: Secret;
}

/** Context for turning a reference as written into its canonical form. */
export interface ResolveContext {
  /** Directory of the template that names the reference. */
  readonly baseDir: string;
}

/**
 * The contract every secret source implements — built-in ones included.
 *
 * What it leaves out, on purpose: scheduling (when to fetch, retry and back off is the core's
 * job), caching of values across fetches (the core keeps the last value), field extraction,
 * trimming and defaults (applied by the core to every backend alike). A backend must never log
 * or put into an error message a secret value or credential. A backend classifies its failures
 * by throwing {@link SecretNotFoundError}, {@link TransientError} or {@link FatalError};
 * anything else is treated as transient.
 */
export interface Backend {
  /** The name used in references (`name:id`). Lower case letters, digits, `-` and `_`. */
  readonly name: string;
  /** Other names that refer to this backend (`insecure` for `http`). */
  readonly aliases?: readonly string[];
  /**
   * How often a resolved secret is re-fetched, unless a template or the config says otherwise.
   * `undefined` with no `watch` means 5 minutes. Push backends (with `watch`) use it as a backstop.
   */
  readonly defaultRefreshMs?: number;
  /** Turns a reference as written into its canonical form (e.g. a relative path made absolute). */
  resolve?(ref: SecretRef, ctx: ResolveContext): SecretRef;
  /** Throws a {@link FatalError} naming what is wrong with a reference, without fetching. */
  validate?(ref: SecretRef): void;
  /** Fetches one secret. */
  fetch(ref: SecretRef, ctx: FetchContext): Promise<Secret>;
  /**
   * Fetches several secrets in one go. The map is keyed by {@link refKey}; a missing key or an
   * Error value is that reference's failure.
   */
  fetchMany?(refs: readonly SecretRef[], ctx: Omit<FetchContext, "previous"> & { readonly previous: ReadonlyMap<string, Secret> }): Promise<Map<string, Secret | Error>>;
  /**
   * `emissary check --connect`: log in and find out whether the reference could be fetched, without
   * fetching its value where the backend can tell otherwise (Vault capabilities, AWS DescribeSecret,
   * a file's type and permissions). Classify the outcome in the result; throwing counts as
   * `unreachable` with the error's message. Without `check`, `check --connect` fetches the
   * reference and discards the value.
   */
  check?(ref: SecretRef, ctx: CheckContext): Promise<CheckResult>;
  /**
   * Push source: call `onChange` when the secret may have changed. Returns an unsubscribe function.
   * `ctx.previous` is the value the caller already holds (after a reload, fetched by another
   * instance of the backend): a watch that compares content must report a difference from it,
   * not take what it first sees as its starting point — that would lose a change made while the
   * old watch was being replaced.
   */
  watch?(ref: SecretRef, onChange: () => void, ctx?: WatchContext): () => void;
  /** Releases connections, watchers and timers. */
  close?(): Promise<void>;
}

/** What a backend factory is given. */
export interface BackendFactoryContext {
  /** The `backends.<name>` section of the config file, without the core's keys (`refresh`). */
  readonly config: Readonly<Record<string, unknown>>;
  /** The process environment (or the library caller's replacement). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** A logger scoped to the backend. */
  readonly logger: Logger;
  /** The config file path, when there is one, for error messages. */
  readonly configFile?: string;
  /**
   * The backend's own entries in the state directory (e.g. an unwrapped AppRole secret_id),
   * by names it chooses. Never garbage-collected: the backend deletes what it no longer needs.
   */
  readonly state?: StateAccess;
}

/** A function that builds a backend. Module default exports may be a Backend or a factory. */
export type BackendFactory = (ctx: BackendFactoryContext) => Backend | Promise<Backend>;

/**
 * A write's params as canonical JSON: keys sorted, lists in their order. Two params maps with the
 * same canonical JSON are the same request.
 */
export function canonicalParams(params: Readonly<Record<string, ParamValue>>): string {
  const keys = Object.keys(params).sort();
  return "{" + keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(params[k])}`).join(",") + "}";
}

/**
 * The identity used to deduplicate fetches: backend, id, sorted options and, for a write, its
 * params. Params enter as a SHA-256 of their canonical JSON ({@link canonicalParams}): the key
 * is shown in status and metrics, and a params value is not for display.
 */
export function refKey(ref: SecretRef): string {
  const parts = Object.keys(ref.options)
    .sort()
    .map((k) => `${k}=${String(ref.options[k])}`);
  if (ref.params !== undefined) parts.push(`params=${createHash("sha256").update(canonicalParams(ref.params)).digest("hex").slice(0, 24)}`);
  if (parts.length === 0) return `${ref.backend}:${ref.id}`;
  return `${ref.backend}:${ref.id}?${parts.join("&")}`;
}
