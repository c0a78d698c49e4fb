/**
 * What a caller of createEmissary may set: everything else comes from the environment, the
 * config file and the defaults (see resolve.ts).
 * @module
 */
import type { Logger } from "pino";
import type { Backend, BackendFactory } from "../api/backend.js";
import type { FlagValues, ResolvedConfig } from "./resolve.js";

/** Options for {@link createEmissary}. Unset values come from the environment, then defaults. */
export interface EmissaryOptions {
  /** Template directory. @defaultValue `EMISSARY_TPL_DIR`, else the working directory */
  templates?: string;
  /** Template file glob. @defaultValue "*.tpl" */
  pattern?: string;
  /** YAML config file path. */
  config?: string;
  /** Extra backends (instances or factories), added to the built-in ones. */
  backends?: readonly (Backend | BackendFactory)[];
  /** Backend module paths, as `--backend-module`. */
  modules?: readonly string[];
  /** A pino logger. @defaultValue a JSON logger on stdout at `info` */
  logger?: Logger;
  /** Environment to read variables from. @defaultValue process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Working directory for relative paths. @defaultValue process.cwd() */
  cwd?: string;
  /** Watch the template directory for changes. @defaultValue true */
  watch?: boolean;
  /** `once` semantics: failures are final instead of retried. @defaultValue false */
  once?: boolean;
  /** A config already resolved by the CLI (skips flag/env resolution at creation). */
  resolved?: ResolvedConfig;
  /** Command-line flags: `reload()` resolves the config again from these, the environment and the config file. */
  flags?: FlagValues;
  /**
   * Where issued certificates and leases are kept across restarts, as `--state-dir`; `""` = off.
   * @defaultValue `EMISSARY_STATE_DIR`, else `state_dir` of the config file, else /var/lib/emissary
   */
  stateDir?: string;
}
