/**
 * The parent-creation race: a destination below a directory another user can write. While root
 * emissary creates `shared/a/b/` for `shared/a/b/out.conf`, an unprivileged racer (uid 65534, who
 * owns `shared`) keeps renaming `shared/a` away the instant it is a directory and putting a
 * symlink in its place — to a root-only directory, or to a root-owned 0600 file in it. Going by
 * path (`mkdir -p`, then `chmod 0755` by name) root would chmod the link's target or create
 * directories and the secret inside the root-only directory.
 *
 * After every round the root-owned file and directory must keep their mode, owner and content,
 * and nothing may appear outside `shared`. `EMISSARY_RACE_ROUNDS` sets the number of rounds
 * (default 400). Needs root (to be root racing nobody); CI runs as root.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeAtomic } from "../../src/output/writer.js";
import { WriteError } from "../../src/api/errors.js";
import { NOBODY, runAsNobody } from "../helpers/as-nobody.js";
import { canary } from "../helpers/canary.js";
import { tmpDir, waitFor } from "../helpers/e2e.js";

const ROUNDS = Number(process.env.EMISSARY_RACE_ROUNDS ?? 400);
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

/** The racer, run as uid 65534: swaps `shared/a` for a symlink whenever it is a real directory. */
function racerCode(shared: string, targets: string[], stop: string): string {
  return `import * as fs from "node:fs";
const shared = ${JSON.stringify(shared)};
const targets = ${JSON.stringify(targets)};
const stop = ${JSON.stringify(stop)};
const a = shared + "/a";
let swaps = 0;
let n = 0;
fs.writeFileSync(shared + "/ready", "");
while (!fs.existsSync(stop)) {
  try {
    if (fs.lstatSync(a).isDirectory()) {
      fs.renameSync(a, shared + "/moved-" + n++);
      fs.symlinkSync(targets[n % targets.length], a);
      swaps++;
    }
  } catch {}
}
console.log(JSON.stringify({ swaps }));`;
}

/**
 * Empties `shared` (but for the racer's ready file). Never `rm -r` inside `shared` itself: the
 * racer can swap a directory for a symlink between rm's lstat and its readdir (Node's recursive
 * rm then empties the link's target). Entries are first renamed into `trash`, which only root
 * can enter — rename never follows a symlink — and removed there.
 */
function reset(shared: string, trash: string): void {
  let n = 0;
  for (const name of readdirSync(shared)) if (name !== "ready") renameSync(join(shared, name), join(trash, String(n++)));
  for (const name of readdirSync(trash)) rmSync(join(trash, name), { recursive: true, force: true });
}

describe("parent directories are created without following a planted symlink", () => {
  it(`${ROUNDS} rounds of uid ${NOBODY} swapping a directory for a symlink while root creates it`, async (ctx) => {
    if (!isRoot) {
      if (process.env.CI === "true") throw new Error("this test must run as root under CI (it races uid 65534 against a root writer)");
      console.log("skipped: racing uid 65534 against a root writer needs root");
      ctx.skip();
      return;
    }
    const base = tmpDir("emissary-race-");
    chmodSync(base, 0o755);
    const secretDir = join(base, "secretdir");
    mkdirSync(secretDir, { mode: 0o700 });
    chmodSync(secretDir, 0o700);
    const secretFile = join(secretDir, "secret.key");
    const secret = canary("root-only");
    writeFileSync(secretFile, secret, { mode: 0o600 });
    chmodSync(secretFile, 0o600);
    const shared = join(base, "shared");
    mkdirSync(shared);
    chownSync(shared, NOBODY, NOBODY);
    chmodSync(shared, 0o755);
    const stop = join(base, "stop");
    const trash = join(base, "trash");
    mkdirSync(trash, { mode: 0o700 });

    const racer = runAsNobody(racerCode(shared, [secretDir, secretFile], stop));
    const outcome = { written: 0, refused: 0, otherErrors: 0 };
    let swaps = 0;
    try {
      await waitFor(() => readdirSync(shared).includes("ready"), 15_000, "racer started");
      const dest = join(shared, "a", "b", "out.conf");
      for (let round = 1; round <= ROUNDS; round++) {
        reset(shared, trash);
        try {
          await writeAtomic({ path: dest, content: canary(`round${round}`), mode: 0o600 });
          outcome.written++;
        } catch (err) {
          expect(err).toBeInstanceOf(WriteError);
          if (/symlink owned by uid 65534|was replaced/.test((err as Error).message)) outcome.refused++;
          else outcome.otherErrors++; // the racer moved a directory away mid-walk: ENOENT and friends
        }
        const file = lstatSync(secretFile);
        const sdir = lstatSync(secretDir);
        expect({ round, mode: file.mode & 0o7777, uid: file.uid, gid: file.gid }).toEqual({ round, mode: 0o600, uid: 0, gid: 0 });
        expect({ round, mode: sdir.mode & 0o7777, uid: sdir.uid }).toEqual({ round, mode: 0o700, uid: 0 });
        expect(readFileSync(secretFile, "utf8")).toBe(secret);
        expect({ round, inSecretDir: readdirSync(secretDir) }).toEqual({ round, inSecretDir: ["secret.key"] });
        expect({ round, inBase: readdirSync(base).filter((n) => n !== "stop").sort() }).toEqual({ round, inBase: ["secretdir", "shared", "trash"] });
      }
    } finally {
      writeFileSync(stop, "");
      swaps = ((await racer) as { swaps: number }).swaps;
      rmSync(base, { recursive: true, force: true });
    }
    console.log(`symlink race: ${ROUNDS} rounds, ${swaps} swaps by uid ${NOBODY}: ${outcome.written} writes, ${outcome.refused} refused, ${outcome.otherErrors} other errors; the root-only file and directory never changed`);
    // The racer really raced: without swaps this test would prove nothing.
    expect(swaps).toBeGreaterThan(0);
    expect(outcome.refused + outcome.otherErrors).toBeGreaterThan(0);
  }, 120_000);
});
