/**
 * Small helpers shared by the built-in backends and available to custom ones.
 * @packageDocumentation
 */
import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import type { SecretRef } from "./backend.js";
import { ConfigError, FatalError } from "./errors.js";

/**
 * A per-process key, so that a content version cannot be used to guess a low-entropy secret:
 * versions are only ever compared inside one process, so they need not be stable across runs.
 */
// A KeyObject, not a Buffer: Node 24 imports a Buffer key afresh on every createHmac (38 µs
// against 7 µs per call measured), which a cold start over 1,000 files pays thousands of times.
const VERSION_KEY = createSecretKey(randomBytes(32));

/**
 * An opaque version for a value that has none of its own (a file, an HTTP body without ETag):
 * a keyed hash of the text, stable for the life of the process and across backend instances
 * created on reload. It reveals nothing about the value.
 *
 * @param text - the secret's text
 * @returns a string like `h:3f9a…` (32 hex digits)
 */
export function contentVersion(text: string | Uint8Array): string {
  return "h:" + createHmac("sha256", VERSION_KEY).update(text).digest("hex").slice(0, 32);
}

/**
 * Throws a {@link ConfigError} naming `backends.<backend>.<key>` for the first key of `config`
 * that is not in `allowed`.
 *
 * @param backend - the backend's name, used in the error's field path
 * @param config - the `backends.<name>` section as given to the factory
 * @param allowed - the keys the backend understands
 * @param configFile - the config file path, for the error
 */
export function rejectUnknownKeys(backend: string, config: Readonly<Record<string, unknown>>, allowed: readonly string[], configFile?: string): void {
  for (const key of Object.keys(config)) {
    if (!allowed.includes(key)) {
      const field = `backends.${backend}.${key}`;
      const known = allowed.length > 0 ? `known keys: ${allowed.join(", ")}` : `the ${backend} backend takes no settings`;
      throw new ConfigError(`${field}: unknown key (${known})`, { field, ...(configFile !== undefined ? { file: configFile } : {}) });
    }
  }
}

/**
 * Throws a {@link FatalError} when a reference carries a long-form option the backend does not
 * understand (e.g. `version_stage` on a `file:` reference), so a typo is not silently ignored.
 * Long-form `params` (a write) are refused unless `allowed` lists `"params"`.
 *
 * @param ref - the reference as the template declared it
 * @param allowed - the option names the backend understands
 * @defaultValue allowed: none
 */
export function rejectUnknownOptions(ref: SecretRef, allowed: readonly string[] = []): void {
  // `params` makes a reference a write: a backend that does not list it has no writes.
  if (ref.params !== undefined && !allowed.includes("params")) {
    throw new FatalError(`${ref.backend}:${ref.id}: params (a write) are not understood by the ${ref.backend} backend (it makes no writes)`);
  }
  for (const key of Object.keys(ref.options)) {
    if (!allowed.includes(key)) {
      const opts = allowed.filter((a) => a !== "params");
      const known = opts.length > 0 ? `it takes ${opts.join(", ")}` : "it takes none";
      throw new FatalError(`${ref.backend}:${ref.id}: option "${key}" is not understood by the ${ref.backend} backend (${known})`);
    }
  }
}
