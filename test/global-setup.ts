import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
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
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), "utf8");
      for (const line of text.split("\n")) {
        lines++;
        if (line.includes("CANARY")) hits.push(`${f}: ${line.slice(0, 300)}`);
      }
    }
    if (process.env.EMISSARY_KEEP_TEST_OUTPUT !== "1") rmSync(dir, { recursive: true, force: true });
    if (hits.length > 0) {
      throw new Error(`canary secret values found in daemon output (${hits.length} lines):\n${hits.slice(0, 20).join("\n")}`);
    }
    process.stdout.write(`canary scan: ${lines} lines of daemon output searched, no secret value found\n`);
  };
}
