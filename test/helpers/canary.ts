import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync } from "node:fs";
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

/** Folder (under EMISSARY_TEST_OUTPUT_DIR) where the printable forms of binary canaries are listed. */
export const CANARY_FORMS_DIR = "canary-forms";

/**
 * The printable forms a binary value could leak in: hex (either case), base64 and base64url at
 * each of the three byte alignments it could have inside a longer encoded text, and its Latin-1
 * reading (the raw bytes in a log). Each is long enough never to match by chance.
 */
export function leakForms(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  const forms = new Set<string>([b.toString("hex"), b.toString("hex").toUpperCase()]);
  for (let shift = 0; shift < 3; shift++) {
    const enc = Buffer.concat([Buffer.alloc(shift), b]);
    // Drop the characters that mix in the bytes before and after: only the middle is certain.
    for (const alphabet of ["base64", "base64url"] as const) {
      const text = enc.toString(alphabet).replace(/=+$/, "");
      const middle = text.slice(shift === 0 ? 0 : 4, Math.floor((b.length + shift) / 3) * 4);
      if (middle.length >= 16) forms.add(middle);
    }
  }
  const latin1 = b.toString("latin1");
  if (latin1.length >= 16) forms.add(latin1);
  // A value of a few bytes has no form that would not match by chance: nothing to search for.
  return [...forms].filter((f) => f.length >= 16);
}

/**
 * A binary secret that must never be printed: random bytes that are never valid UTF-8 (0xff, a
 * broken sequence, NUL, CR and LF among them) with the ASCII marker CANARY inside, so a raw leak
 * is caught like any canary; its hex and base64 forms are registered for the global scan too.
 */
export function binaryCanary(size = 48): Buffer {
  const n = Math.max(size, 24);
  const marker = Buffer.from("CANARY", "latin1");
  const fixed = Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0xc3, 0x28]);
  const bytes = Buffer.concat([fixed, randomBytes(Math.floor((n - 12) / 2)), marker, randomBytes(n - 12 - Math.floor((n - 12) / 2))]);
  registerLeakForms(bytes);
  return bytes;
}

/** Lists `bytes`' printable forms for the global canary scan (test/global-setup.ts). */
export function registerLeakForms(bytes: Uint8Array): void {
  const dir = process.env.EMISSARY_TEST_OUTPUT_DIR;
  if (!dir) return;
  mkdirSync(join(dir, CANARY_FORMS_DIR), { recursive: true });
  // JSON per line: a Latin-1 form may hold line breaks.
  const lines = leakForms(bytes).map((f) => JSON.stringify(f) + "\n").join("");
  appendFileSync(join(dir, CANARY_FORMS_DIR, `${process.pid}.jsonl`), lines);
}

/** The first printable form of `bytes` found in `text`, or undefined (for a test's own scan). */
export function findLeak(text: string, bytes: Uint8Array): string | undefined {
  return leakForms(bytes).find((f) => text.includes(f));
}
