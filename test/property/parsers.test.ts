/**
 * Property-based fuzzing (fast-check) of front matter, whole template files, mustache bodies and
 * their rendering, references and value extraction, durations, modes, commands, globs and config
 * files: only clean, typed errors — never a crash, never a hang.
 *
 * Each group runs in a worker thread (test/property/fuzz-worker.mjs, against the built dist/)
 * so that a hang can be detected and ended: after a generous deadline the worker is terminated
 * and the test fails showing the input it was stuck on. A failure prints fast-check's report with
 * the seed; re-run it with EMISSARY_FUZZ_SEED=<seed>. EMISSARY_FUZZ_RUNS sets the runs per
 * property (default 300).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/e2e.js";

const DIST = join(ROOT, "dist");
const RUNS = Number(process.env.EMISSARY_FUZZ_RUNS ?? 300);
const SEED = process.env.EMISSARY_FUZZ_SEED ? Number(process.env.EMISSARY_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Far beyond what any group needs (a few seconds): only a hang gets here. */
const HANG_DEADLINE_MS = 90_000;

type Outcome = { ok: true; runs: number } | { ok: false; report: string } | { ok: false; hang: string } | { ok: false; crash: string };

function runGroup(group: string, deadlineMs = HANG_DEADLINE_MS): Promise<Outcome> {
  const sab = new SharedArrayBuffer(4 + 16_384);
  const worker = new Worker(new URL("./fuzz-worker.mjs", import.meta.url), { workerData: { group, seed: SEED, numRuns: RUNS, dist: DIST, sab } });
  return new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => {
      const len = Atomics.load(new Int32Array(sab, 0, 1), 0);
      const input = new TextDecoder().decode(new Uint8Array(sab, 4, len));
      void worker.terminate();
      resolve({ ok: false, hang: input });
    }, deadlineMs);
    worker.once("message", (m: Outcome) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(m);
    });
    worker.once("error", (err) => {
      clearTimeout(timer);
      resolve({ ok: false, crash: `${err.name}: ${err.message}` });
    });
  });
}

describe("property-based fuzzing: only clean errors, never a crash or a hang", () => {
  it("dist/ is built (npm test builds it first)", () => {
    expect(existsSync(join(DIST, "src", "templates", "parse.js")), 'run "npm run build" first').toBe(true);
  });

  it("the watchdog ends a hung worker and names the input it hung on", async () => {
    // 10 s: the worker first loads fast-check and dist/ (seconds on a loaded 2-core machine);
    // a deadline that ends before the probe starts would find no input to name.
    const outcome = await runGroup("__hang", 10_000);
    expect(outcome).toEqual({ ok: false, hang: '["hang-probe"]' });
  });

  for (const group of ["refs", "durations", "modes", "templates", "commands", "globs", "config"]) {
    it(`${group}`, async () => {
      const outcome = await runGroup(group);
      if (!outcome.ok) {
        const why = "report" in outcome ? outcome.report : "hang" in outcome ? `hung for ${HANG_DEADLINE_MS / 1000}s on input: ${outcome.hang}` : outcome.crash;
        expect.fail(`${group} (seed ${SEED}, ${RUNS} runs per property):\n${why}`);
      }
      expect(outcome.ok).toBe(true);
    }, HANG_DEADLINE_MS + 30_000);
  }
});
