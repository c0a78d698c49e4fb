/**
 * The `env` backend: a secret is an environment variable, `env:DB_PASSWORD`.
 *
 * The environment is read once, when the backend is built (at start and again on reload, which
 * builds a new instance): a process's environment does not change under it.
 * @packageDocumentation
 */
import {
  FatalError,
  SecretNotFoundError,
  TransientError,
  contentVersion,
  rejectUnknownKeys,
  rejectUnknownOptions,
  type Backend,
  type BackendFactoryContext,
  type CheckResult,
  type FetchContext,
  type Secret,
  type SecretRef,
} from "../src/api/index.js";

/** What a variable name may look like (POSIX portable names). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The env backend's refresh interval: a day, since values only change with a reload. */
export const ENV_REFRESH_MS = 24 * 60 * 60 * 1000;

function check(ref: SecretRef): void {
  if (!ENV_NAME.test(ref.id)) {
    throw new FatalError(`env:${ref.id}: not a valid environment variable name (letters, digits and "_", not starting with a digit)`);
  }
  rejectUnknownOptions(ref);
}

/**
 * Builds the `env` backend from a snapshot of `ctx.env`.
 *
 * @param ctx - factory context; `ctx.config` (`backends.env`) must be empty
 * @throws ConfigError for any key in `backends.env`
 */
export function createEnvBackend(ctx: BackendFactoryContext): Backend {
  rejectUnknownKeys("env", ctx.config, [], ctx.configFile);
  const snapshot = new Map<string, string>();
  for (const [k, v] of Object.entries(ctx.env)) if (typeof v === "string") snapshot.set(k, v);

  const backend = {
    name: "env",
    defaultRefreshMs: ENV_REFRESH_MS,
    validate: check,
    async fetch(ref: SecretRef, fctx: FetchContext): Promise<Secret> {
      check(ref);
      if (fctx.signal.aborted) throw new TransientError(`env:${ref.id}: fetch aborted`);
      const value = snapshot.get(ref.id);
      if (value === undefined || value === "") throw new SecretNotFoundError(`env:${ref.id}: the variable is ${value === undefined ? "not set" : "empty"}`);
      return { value, version: contentVersion(value) };
    },
    async check(ref: SecretRef): Promise<CheckResult> {
      try {
        check(ref);
      } catch (err) {
        return { status: "invalid", reason: (err as Error).message };
      }
      const value = snapshot.get(ref.id);
      if (value === undefined || value === "") return { status: "not_set", reason: `env:${ref.id}: the variable is ${value === undefined ? "not set" : "empty"}` };
      return { status: "ok", reason: `env:${ref.id}: set` };
    },
  } satisfies Backend;
  return backend;
}

/** The module's default export: the `env` backend factory. */
export default createEnvBackend;
