/**
 * Vault's `warnings`: a 200 may carry a top-level `warnings: [..]` array, such as a PKI issue
 * whose `ttl` is above the role's max (`TTL "48h0m0s" is longer than permitted maxTTL "24h0m0s",
 * so maxTTL is being used`). Each is logged at `warn`, once per reference and distinct text —
 * a certificate re-issued with the same capped ttl does not repeat it. Only the warning text is
 * logged (it names fields and durations, never a value), never the response's data.
 */
import type { Logger } from "../../src/api/index.js";

/** Distinct warning texts remembered per reference (a bound on memory, not a limit in practice). */
const MAX_TEXTS_PER_REF = 32;
/** Longest warning text logged. */
const MAX_TEXT = 500;

/**
 * With `private_key: local` emissary sends its own CSR: Vault's remarks about the role's
 * `use_csr_common_name` / `use_csr_sans` are expected, not news.
 */
const CSR_NOISE = /use_csr_/;

/** What one response's warnings are reported with. */
export interface WarningSource {
  /** {@link refKey} of the reference: warnings are remembered per key. */
  readonly key: string;
  /** The reference as log lines name it, e.g. `vault:pki/issue/web`. */
  readonly refText: string;
  /** The Vault path asked (e.g. `pki/issue/web`, `secret/data/app`). */
  readonly path: string;
  /** The response's JSON body. */
  readonly body: unknown;
  /** The request carried a CSR emissary made (`private_key: local`). */
  readonly localKey?: boolean;
}

/** The warning texts of a response body (strings of a top-level `warnings` array), whitespace collapsed. */
export function warningsOf(body: unknown): string[] {
  const w = (body as { warnings?: unknown } | null | undefined)?.warnings;
  if (!Array.isArray(w)) return [];
  return w.filter((x): x is string => typeof x === "string").map((x) => x.replace(/\s+/g, " ").trim()).filter((x) => x !== "");
}

/** Logs Vault's warnings once per reference and text. */
export class VaultWarnings {
  readonly #logger: Logger;
  readonly #redact: (s: string) => string;
  readonly #seen = new Map<string, Set<string>>();

  /**
   * @param redact - scrubs known secrets (the token) from a text, as for Vault's error strings
   */
  constructor(logger: Logger, redact: (s: string) => string = (s) => s) {
    this.#logger = logger;
    this.#redact = redact;
  }

  /** Logs the warnings of `src.body` not logged before for `src.key`; returns how many were logged. */
  report(src: WarningSource): number {
    let texts = warningsOf(src.body);
    if (src.localKey) texts = texts.filter((t) => !CSR_NOISE.test(t));
    let logged = 0;
    for (const raw of texts) {
      const text = this.#redact(raw.length > MAX_TEXT ? raw.slice(0, MAX_TEXT) + "…" : raw);
      let seen = this.#seen.get(src.key);
      if (seen?.has(text)) continue;
      if (!seen) this.#seen.set(src.key, (seen = new Set()));
      if (seen.size >= MAX_TEXTS_PER_REF) seen.delete(seen.values().next().value as string);
      seen.add(text);
      this.#logger.warn({ ref: src.refText, path: src.path, warning: text }, "vault: Vault answered with a warning");
      logged++;
    }
    return logged;
  }

  /** Forgets what was logged. */
  clear(): void {
    this.#seen.clear();
  }
}
