import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CANARY_FORMS_DIR, canaryFragments } from "./helpers/canary.js";

/** emissary's default state directory: no test may leave it behind (they use their own, or none). */
const DEFAULT_STATE_DIR = "/var/lib/emissary";

/**
 * Every line any emissary process printed during the run is copied into OUTPUT_DIR by
 * test/helpers/e2e.ts. At the end of the whole suite we search all of it for canary secret
 * values: any hit fails the run. Tests plant values containing CANARY (see test/helpers/canary.ts),
 * or register secrets made elsewhere (private keys, certificates, JWTs) with plantCanary; binary
 * canaries (binaryCanary) are searched for in their hex, base64 and raw forms as well.
 *
 * The state directory is off for every test that does not choose one (EMISSARY_STATE_DIR=""), so
 * no test shares kept certificates or leases with another, or writes to /var/lib/emissary.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "emissary-test-output-"));
  process.env.EMISSARY_TEST_OUTPUT_DIR = dir;
  process.env.EMISSARY_STATE_DIR ??= "";
  const stateDirBefore = existsSync(DEFAULT_STATE_DIR);
  return () => {
    const hits: string[] = [];
    let lines = 0;
    const names = readdirSync(dir).filter((f) => f !== CANARY_FORMS_DIR);
    const planted = names
      .filter((f) => f.endsWith(".canary"))
      .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean))
      .flatMap((b64) => canaryFragments(Buffer.from(b64, "base64").toString("utf8")));
    // Binary canaries (binaryCanary) list their hex and base64 forms in CANARY_FORMS_DIR: search for those too.
    const formsDir = join(dir, CANARY_FORMS_DIR);
    const forms = existsSync(formsDir)
      ? readdirSync(formsDir).flatMap((f) => readFileSync(join(formsDir, f), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as string))
      : [];
    for (const f of names) {
      if (f.endsWith(".canary")) continue;
      const text = readFileSync(join(dir, f), "latin1");
      for (const [i, line] of Buffer.from(text, "latin1").toString("utf8").split("\n").entries()) {
        lines++;
        if (line.includes("CANARY") || planted.some((p) => line.includes(p))) hits.push(`${f}: ${line.slice(0, 300)}`);
        else if (forms.some((form) => line.includes(form))) hits.push(`${f}: line ${i + 1} holds a binary canary's hex or base64 form`);
      }
      // A raw binary leak may span lines: its Latin-1 form is searched in the whole file.
      if (forms.some((form) => /[^\x20-\x7e]/.test(form) && text.includes(form))) hits.push(`${f}: holds a binary canary's raw bytes`);
    }
    if (!stateDirBefore && existsSync(DEFAULT_STATE_DIR)) hits.push(`${DEFAULT_STATE_DIR} was created by a test: give it a state directory of its own (or "")`);
    if (process.env.EMISSARY_KEEP_TEST_OUTPUT !== "1") rmSync(dir, { recursive: true, force: true });
    if (hits.length > 0) {
      throw new Error(`canary secret values found in daemon output (${hits.length} lines):\n${hits.slice(0, 20).join("\n")}`);
    }
    process.stdout.write(`canary scan: ${lines} lines of daemon output searched for CANARY, ${planted.length} planted fragments and ${forms.length} forms of binary canaries, no secret value found\n`);
  };
}
