import type { Logger } from "pino";

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
}

/** Passed to every fetch. */
export interface FetchContext {
  /** Aborted when emissary stops or the reference is no longer used. */
  readonly signal: AbortSignal;
  /** A logger scoped to the backend. Never log a secret value with it. */
  readonly logger: Logger;
  /** The last value this reference resolved to, for cheap "has it changed?" checks. */
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
  /** Push source: call `onChange` when the secret may have changed. Returns an unsubscribe function. */
  watch?(ref: SecretRef, onChange: () => void): () => void;
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
}

/** A function that builds a backend. Module default exports may be a Backend or a factory. */
export type BackendFactory = (ctx: BackendFactoryContext) => Backend | Promise<Backend>;

/** The identity used to deduplicate fetches: backend, id and sorted options. */
export function refKey(ref: SecretRef): string {
  const keys = Object.keys(ref.options).sort();
  if (keys.length === 0) return `${ref.backend}:${ref.id}`;
  const opts = keys.map((k) => `${k}=${String(ref.options[k])}`).join("&");
  return `${ref.backend}:${ref.id}?${opts}`;
}
