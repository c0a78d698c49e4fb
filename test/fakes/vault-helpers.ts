/**
 * Test helpers for the vault backend: a logger that captures every line (and copies it to the
 * suite's canary scan), a backend wired to a fake Vault, and a secrecy check.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import createVaultBackend, { type VaultBackend, type VaultBackendOptions } from "../../backends/vault.js";
import { createLogger, silentLogger, extractValue, parseRef, safeError, type Logger, type Secret, type StateAccess } from "../../src/index.js";

/** A logger whose output is kept in memory. */
export interface CapturedLog {
  readonly logger: Logger;
  readonly lines: string[];
  /** Parsed lines. */
  entries(): Record<string, unknown>[];
  /** Copies the lines into the suite's canary scan directory. */
  flush(label: string): void;
}

/** A trace-level logger capturing every line. */
export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const logger = createLogger({
    level: "trace",
    destination: {
      write(s: string) {
        for (const l of s.split("\n")) if (l) lines.push(l);
      },
    },
  });
  return {
    logger,
    lines,
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    flush(label) {
      const dir = process.env.EMISSARY_TEST_OUTPUT_DIR;
      if (dir && lines.length) appendFileSync(join(dir, `vault-${label}-${randomBytes(4).toString("hex")}.log`), lines.join("\n") + "\n");
    },
  };
}

/** Builds the backend against a fake (config.address defaults to the fake's URL). */
export function vaultBackend(
  log: CapturedLog,
  opts: { address?: string; config?: Record<string, unknown>; env?: Record<string, string | undefined>; state?: StateAccess } & VaultBackendOptions = {},
): VaultBackend {
  const { config = {}, env = {}, address, state, ...rest } = opts;
  return createVaultBackend({ config: { ...(address ? { address } : {}), ...config }, env, logger: log.logger, ...(state ? { state } : {}) }, rest);
}

/** Fetches `vault:<id>` with the given long-form options. */
export function fetchVault(b: VaultBackend, id: string, options: Record<string, string | number | boolean> = {}, signal?: AbortSignal): Promise<Secret> {
  return b.fetch({ backend: "vault", id, options }, { signal: signal ?? new AbortController().signal, logger: silentLogger() });
}

/** What a template would see for `vault:<id>#field`. */
export function field(secret: Secret, ref: string): string {
  return extractValue(parseRef(ref), secret).text;
}

/** Runs `fn` and returns what it threw (fails when it does not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & { code?: string; status?: number; retryAfterMs?: number }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected an error, but the call succeeded");
}

/** Every place a secret could leak through: the log lines and the errors (message and safe serialization). */
export function leakText(log: CapturedLog, errors: readonly unknown[]): string {
  return [...log.lines, ...errors.map((e) => `${(e as Error)?.message ?? String(e)} ${JSON.stringify(safeError(e))}`)].join("\n");
}
