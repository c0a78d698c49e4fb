import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A secret value that must never appear in anything emissary prints. The global teardown
 * searches every line the daemons printed for the marker "CANARY".
 */
export function canary(label = "secret"): string {
  return `${label}-CANARY-${randomBytes(6).toString("hex")}`;
}

/**
 * Adds a secret that was made elsewhere and cannot carry the CANARY marker (a private key or a
 * certificate a fake Vault generated, a signed JWT) to the global scan: no line any daemon
 * printed may contain any line of it (24 characters or longer: the base64 body of a PEM, a JWT).
 * The value is stored base64-encoded in a `.canary` file of the scan directory, which the scan
 * reads as its list and does not search.
 */
export function plantCanary(value: string, label = "secret"): void {
  const dir = process.env.EMISSARY_TEST_OUTPUT_DIR;
  if (!dir) return;
  appendFileSync(join(dir, `${label}-${randomBytes(4).toString("hex")}.canary`), Buffer.from(value).toString("base64") + "\n");
}

/** The fragments of a planted value the scan looks for. */
export function canaryFragments(value: string): string[] {
  return value
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length >= 24 && !l.startsWith("-----"));
}
