/**
 * Size: 1,000 templates in one directory, and one 10,000-line template, through the built daemon.
 * All 1,000 are rendered; a rotation of the secret they share rewrites all of them in one pass
 * and runs their common command once; the big template renders exactly and re-renders on a change.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

const N = 1000;
const GROUPS = 20;
const BIG_LINES = 10_000;

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
function count(file: string): number {
  return (read(file) ?? "").split("\n").filter(Boolean).length;
}

describe("scale", () => {
  let dir: string;
  let daemon: Daemon | undefined;
  const out = (i: number): string => join(dir, "out", `${String(i).padStart(4, "0")}.conf`);
  const runs = (): string => join(dir, "runs.log");
  const secrets = (n: string): string => join(dir, "secrets", n);
  const expected = (i: number): string => `shared=${read(secrets("shared"))}\ngroup=${read(secrets(`g${i % GROUPS}`))}\nindex=${i}\n`;
  const bigExpected = (v: string): string => Array.from({ length: BIG_LINES }, (_, i) => `line_${i} = "${v}" # ${i % 7 === 0 ? "seven" : "other"}`).join("\n") + "\n";

  beforeAll(() => {
    dir = tmpDir("emissary-scale-");
    for (const d of ["tpl", "secrets", "out", "big"]) mkdirSync(join(dir, d));
    writeFileSync(secrets("shared"), canary("shared1"));
    for (let g = 0; g < GROUPS; g++) writeFileSync(secrets(`g${g}`), canary(`group${g}`));
    for (let i = 0; i < N; i++) {
      writeFileSync(
        join(dir, "tpl", `t${String(i).padStart(4, "0")}.tpl`),
        `---\ndest: ${out(i)}\ncommand: ["/bin/sh", "-c", "echo run >> ${runs()}"]\nsecrets:\n  shared: file:../secrets/shared\n  group: file:../secrets/g${i % GROUPS}\n---\nshared={{shared}}\ngroup={{group}}\nindex=${i}\n`,
      );
    }
    writeFileSync(secrets("big"), canary("big1"));
    // 10,000 lines of body, with a section every seventh line.
    const body = Array.from({ length: BIG_LINES }, (_, i) => `line_${i} = "{{v}}" # ${i % 7 === 0 ? "{{#v}}seven{{/v}}" : "other"}`).join("\n");
    mkdirSync(join(dir, "bigtpl"));
    writeFileSync(join(dir, "bigtpl", "big.tpl"), `---\ndest: ${join(dir, "big", "big.conf")}\nsecrets:\n  v: file:../secrets/big\n---\n${body}\n`);
  });

  afterAll(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
    }
  });

  it(`renders ${N} templates, then rewrites all of them in one pass on a rotation and runs their command once`, async () => {
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    // Count finished destinations only: up to 16 writes are in flight, each with a dot temp file.
    await waitFor(() => readdirSync(join(dir, "out")).filter((n) => !n.startsWith(".")).length === N, 90_000, `${N} destinations written`);
    for (let i = 0; i < N; i++) expect(read(out(i)), `template ${i}`).toBe(expected(i));
    // Settled: no command queued or running, no more writes.
    await daemon.waitForLog((l) => l.msg === "emissary started", 30_000);
    let before = -1;
    await waitFor(
      async () => {
        const c = count(runs());
        const stable = c === before;
        before = c;
        await new Promise((r) => setTimeout(r, 500));
        return stable && c === count(runs());
      },
      60_000,
      "commands settle",
    );
    const runsBefore = count(runs());

    writeFileSync(secrets("shared"), canary("shared2"));
    await waitFor(() => {
      for (let i = 0; i < N; i += 97) if (read(out(i)) !== expected(i)) return false;
      return read(out(N - 1)) === expected(N - 1);
    }, 90_000, "the rotation reaches the templates");
    await waitFor(() => count(runs()) > runsBefore, 30_000, "the command ran");
    for (let i = 0; i < N; i++) expect(read(out(i)), `template ${i} after the rotation`).toBe(expected(i));
    // One pass wrote all 1,000: their identical command ran once.
    await new Promise((r) => setTimeout(r, 500));
    expect(count(runs())).toBe(runsBefore + 1);
    expect(readdirSync(join(dir, "out"))).toHaveLength(N); // no temp files left
    expect(daemon.proc.exitCode).toBeNull();
    await daemon.stop();
    daemon = undefined;
  }, 240_000);

  it(`renders a ${BIG_LINES}-line template exactly and re-renders it on a change`, async () => {
    daemon = spawnEmissary(["run", "--templates", join(dir, "bigtpl")]);
    const dest = join(dir, "big", "big.conf");
    await waitFor(() => read(dest) !== undefined, 60_000, "big template written");
    expect(read(dest)).toBe(bigExpected(read(secrets("big"))!));
    const v2 = canary("big2");
    writeFileSync(secrets("big"), v2);
    await waitFor(() => read(dest)?.startsWith(`line_0 = "${v2}"`) === true, 30_000, "big template re-rendered");
    expect(read(dest)).toBe(bigExpected(v2));
  }, 120_000);
});
