import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Every line any emissary process printed during the run is copied into OUTPUT_DIR by
 * test/helpers/e2e.ts. At the end of the whole suite we search all of it for canary secret
 * values: any hit fails the run. Tests plant values containing CANARY (see test/helpers/canary.ts).
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "emissary-test-output-"));
  process.env.EMISSARY_TEST_OUTPUT_DIR = dir;
  return () => {
    const hits: string[] = [];
    let lines = 0;
    // Binary canaries (test/helpers/canary.ts) list their hex and base64 forms here: search for those too.
    const formsDir = join(dir, "canary-forms");
    const forms = existsSync(formsDir)
      ? readdirSync(formsDir).flatMap((f) => readFileSync(join(formsDir, f), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as string))
      : [];
    for (const f of readdirSync(dir)) {
      if (f === "canary-forms") continue;
      const text = readFileSync(join(dir, f), "latin1");
      const utf8 = Buffer.from(text, "latin1").toString("utf8");
      for (const [i, line] of utf8.split("\n").entries()) {
        lines++;
        if (line.includes("CANARY")) hits.push(`${f}: ${line.slice(0, 300)}`);
        else if (forms.some((form) => line.includes(form))) hits.push(`${f}: line ${i + 1} holds a binary canary's hex or base64 form`);
      }
      // A raw binary leak may span lines: its Latin-1 form is searched in the whole file.
      if (forms.some((form) => form.length >= 16 && /[^\x20-\x7e]/.test(form) && text.includes(form))) hits.push(`${f}: holds a binary canary's raw bytes`);
    }
    if (process.env.EMISSARY_KEEP_TEST_OUTPUT !== "1") rmSync(dir, { recursive: true, force: true });
    if (hits.length > 0) {
      throw new Error(`canary secret values found in daemon output (${hits.length} lines):\n${hits.slice(0, 20).join("\n")}`);
    }
    process.stdout.write(`canary scan: ${lines} lines of daemon output searched (and ${forms.length} forms of binary canaries), no secret value found\n`);
  };
}
