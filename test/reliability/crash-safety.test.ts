/**
 * Crash safety: SIGKILL at random moments while secrets rotate as fast as the daemon can write.
 *
 * Each round starts the built daemon, waits until it is busy writing, kills it with SIGKILL — the
 * instant one of its temp files appears, right after a write, or after a random delay — and checks every destination: it must hold one complete rendering — of the old
 * or of a new value — never a mix, a truncated file or a missing one, with the right mode. The
 * next start must remove the temp files the killed process left behind (a planted one with a
 * dead pid proves this deterministically; the rounds that really left some are counted and
 * printed). `EMISSARY_CRASH_ROUNDS` changes the number of rounds (default 40).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { pidNamespace } from "../../src/output/temp-files.js";

const ROUNDS = Number(process.env.EMISSARY_CRASH_ROUNDS ?? 40);
const TEMPLATES = 3;
const LINES = Number(process.env.EMISSARY_CRASH_LINES ?? 6000); // ~250 KB per destination: a write takes long enough to be interrupted
/** `.<name>.emissary-<pid>-<pidns>-<hex>.tmp` */
const TEMP_RE = /^\..*\.emissary-(\d+)-\d+-[0-9a-f]{12}\.tmp$/;

describe("crash safety under SIGKILL", () => {
  const dir = tmpDir("emissary-crash-");
  const out = (i: number): string => join(dir, "out", `app${i}.conf`);
  const secret = join(dir, "secrets", "s");
  const written: string[] = [];
  let rotator: NodeJS.Timeout | undefined;
  let daemon: Daemon | undefined;

  afterAll(async () => {
    if (rotator) clearInterval(rotator);
    if (daemon && daemon.proc.exitCode === null) daemon.proc.kill("SIGKILL");
  });

  /** Writes a new secret value atomically (so a partial secret is never read). */
  function rotate(): void {
    const v = canary(`gen${written.length}`);
    writeFileSync(secret + ".next", v);
    renameSync(secret + ".next", secret);
    written.push(v);
  }

  /** The destination holds one complete rendering of a value that was written. */
  function checkComplete(i: number): string {
    const text = readFileSync(out(i), "utf8");
    const m = /^BEGIN (\S+)\n/.exec(text);
    expect(m, `app${i}.conf starts with a BEGIN line`).not.toBeNull();
    const v = m![1]!;
    expect(written.includes(v), `app${i}.conf holds a value that was written`).toBe(true);
    const expected = `BEGIN ${v}\n${`${v}\n`.repeat(LINES)}END ${v}\n`;
    expect(text.length, `app${i}.conf is complete`).toBe(expected.length);
    expect(text === expected, `app${i}.conf is one rendering of one value`).toBe(true);
    expect(statSync(out(i)).mode & 0o7777).toBe(0o640);
    return v;
  }

  it(`${ROUNDS} rounds: the destination is always the complete old or new file; leftovers are removed on the next start`, async () => {
    for (const d of ["tpl", "secrets", "out"]) mkdirSync(join(dir, d));
    rotate();
    const body = `BEGIN {{v}}\n${"{{v}}\n".repeat(LINES)}END {{v}}\n`;
    for (let i = 0; i < TEMPLATES; i++) {
      writeFileSync(join(dir, "tpl", `app${i}.tpl`), `---\ndest: ${out(i)}\nmode: 0640\nsecrets:\n  v: file:../secrets/s\n---\n${body}`);
    }
    // Every destination exists before the first kill: "the old file" is then always defined.
    const first = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    await waitFor(() => [...Array(TEMPLATES).keys()].every((i) => existsSync(out(i))), 30_000, "first render");
    expect((await first.stop()).code).toBe(0);
    rotator = setInterval(rotate, 15);

    let roundsWithLeftovers = 0;
    let leftoversRemoved = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      // A stale temp file of a process that no longer exists: the next start must remove it.
      const planted = join(dir, "out", `.app0.conf.emissary-999999${round}-${pidNamespace()}-0123456789ab.tmp`);
      writeFileSync(planted, "stale");
      const d = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
      daemon = d;
      await d.waitForLog((l) => l.msg === "emissary started", 30_000, `round ${round}: started`);
      expect(existsSync(planted), `round ${round}: a stale temp file is removed at start`).toBe(false);
      // Temp files of earlier (killed) processes are gone once it has started.
      const stale = readdirSync(join(dir, "out")).filter((n) => {
        const m = TEMP_RE.exec(n);
        return m && Number(m[1]) !== d.proc.pid;
      });
      expect(stale, `round ${round}: leftovers of the killed process removed`).toEqual([]);
      const removed = d.logs().find((l) => l.msg === "removed stale temporary files of an earlier run");
      if (removed) leftoversRemoved += Number(removed.removed) - 1; // minus the planted one

      await d.waitForLog((l) => l.msg === "wrote destination", 30_000, `round ${round}: writing`);
      // Three kinds of moment, in turn: the instant a temp file appears (mid-write, between
      // create and rename), right after a write, and a random time later.
      const kind = round % 3;
      if (kind === 0) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            d.proc.kill("SIGKILL");
            w.close();
            clearTimeout(t);
            resolve();
          };
          const w = watch(join(dir, "out"), (_e, name) => {
            if (name && TEMP_RE.test(String(name)) && String(name).includes(`-${d.proc.pid}-`)) done();
          });
          const t = setTimeout(done, 10_000); // no write seen: kill anyway
        });
      } else {
        await new Promise((r) => setTimeout(r, kind === 1 ? 0 : Math.floor(Math.random() * 250)));
      }
      d.proc.kill("SIGKILL");
      const { signal } = await d.exited;
      expect(signal).toBe("SIGKILL");

      for (let i = 0; i < TEMPLATES; i++) checkComplete(i);
      if (readdirSync(join(dir, "out")).some((n) => TEMP_RE.test(n) && !n.includes("-999999"))) roundsWithLeftovers++;
    }
    clearInterval(rotator);
    rotator = undefined;

    // A clean run after the storm: the newest value, no temp files at all, a graceful exit.
    const last = written.at(-1)!;
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    await waitFor(() => [...Array(TEMPLATES).keys()].every((i) => existsSync(out(i)) && readFileSync(out(i), "utf8").startsWith(`BEGIN ${last}\n`)), 30_000, "final value");
    for (let i = 0; i < TEMPLATES; i++) expect(checkComplete(i)).toBe(last);
    const { code } = await daemon.stop();
    expect(code).toBe(0);
    expect(readdirSync(join(dir, "out")).sort()).toEqual([...Array(TEMPLATES).keys()].map((i) => `app${i}.conf`));
    console.log(`crash safety: ${ROUNDS} SIGKILL rounds, ${written.length} values written, ${roundsWithLeftovers} rounds left temp files behind (${leftoversRemoved} removed at the next start), every destination complete every time`);
  }, 30_000 + ROUNDS * 8_000);
});
