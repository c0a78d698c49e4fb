import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "../../../src/output/writer.js";
import { cleanStaleTempFiles, parseTempName, pidAlive, pidNamespace, tempNameFor, UNCHECKABLE_TEMP_MAX_AGE_MS } from "../../../src/output/temp-files.js";
import { WriteError } from "../../../src/api/errors.js";
import { createLogger } from "../../../src/observe/log.js";

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "emissary-temp-"));
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await fsp.rm(dir, { recursive: true, force: true });
});

function capture(): { logger: ReturnType<typeof createLogger>; raw: () => string } {
  let raw = "";
  return { logger: createLogger({ level: "debug", destination: { write: (s: string) => void (raw += s) } }), raw: () => raw };
}

/** A process that stays alive until the test ends: stands in for another emissary mid-write. */
function livePid(): number {
  const c = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
  children.push(c);
  return c.pid!;
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => c.on("close", r));
  return c.pid!;
}

function errWithCode(code: string): NodeJS.ErrnoException {
  const e = new Error(`simulated ${code}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

async function plant(name: string, ageMs = 0): Promise<string> {
  const p = join(dir, name);
  await fsp.writeFile(p, "x");
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs);
    await fsp.utimes(p, t, t);
  }
  return name;
}

describe("temp file names", () => {
  it("carry the pid and pid namespace of the writer, and parse back", () => {
    const name = tempNameFor("app.conf");
    expect(name).toMatch(/^\.app\.conf\.emissary-\d+-\d+-[0-9a-f]{12}\.tmp$/);
    expect(parseTempName(name)).toEqual({ kind: "current", pid: process.pid, ns: pidNamespace() });
    expect(parseTempName(".app.conf.emissary-123-0123456789ab.tmp")).toEqual({ kind: "legacy", pid: 123 });
    expect(parseTempName("app.conf")).toBeUndefined();
    // Earlier versions' cleanup matched `\.emissary-\d+-[0-9a-f]{12}\.tmp$`: new names do not, so an
    // older emissary on the same directory cannot delete a new one's in-flight temp file either.
    expect(/^\..*\.emissary-\d+-[0-9a-f]{12}\.tmp$/s.test(name)).toBe(false);
  });

  it("pidAlive: this process and a running child are alive; an exited one, pid 0 and negatives are not", async () => {
    expect(pidAlive(process.pid)).toBe(true);
    expect(pidAlive(livePid())).toBe(true);
    expect(pidAlive(await deadPid())).toBe(false);
    expect(pidAlive(0)).toBe(false);
    expect(pidAlive(-1)).toBe(false);
  });
});

describe("cleanStaleTempFiles", () => {
  it("leaves another live process's in-flight temp file alone and removes a dead one's", async () => {
    const ns = pidNamespace();
    const live = await plant(`.a.conf.emissary-${livePid()}-${ns}-0123456789ab.tmp`);
    const dead = await plant(`.a.conf.emissary-${await deadPid()}-${ns}-0123456789ab.tmp`);
    // The same, named as an earlier version named them: young ones may still be in flight.
    const liveLegacy = await plant(`.b.conf.emissary-${livePid()}-aaaaaaaaaaaa.tmp`);
    const { logger, raw } = capture();
    expect(await cleanStaleTempFiles(dir, logger)).toBe(1);
    expect((await fsp.readdir(dir)).sort()).toEqual([live, liveLegacy].sort());
    expect(raw()).toContain("removed stale temp file");
  });

  it("names whose pid cannot be checked (earlier versions, another pid namespace) go only once old", async () => {
    const old = UNCHECKABLE_TEMP_MAX_AGE_MS + 60_000;
    const keep = [
      await plant(`.a.emissary-${await deadPid()}-0123456789ab.tmp`), // legacy, young: maybe in flight
      await plant(`.b.emissary-${await deadPid()}-1-0123456789ab.tmp`), // another namespace, young
    ];
    await plant(`.c.emissary-${livePid()}-0123456789ab.tmp`, old); // legacy, old
    await plant(`.d.emissary-${livePid()}-1-0123456789ab.tmp`, old); // another namespace, old
    expect(pidNamespace()).not.toBe("1");
    expect(await cleanStaleTempFiles(dir)).toBe(2);
    expect((await fsp.readdir(dir)).sort()).toEqual(keep.sort());
  });

  it("removes only files named like the writer's temp files, and only regular files", async () => {
    const ns = pidNamespace();
    const dead = await deadPid();
    const ours = [`.a.conf.emissary-${dead}-${ns}-0123456789ab.tmp`, `.b.emissary-${dead}-${ns}-ffffffffffff.tmp`];
    const theirs = [
      ".a.conf.tmp",
      `a.conf.emissary-${dead}-${ns}-0123456789ab.tmp`, // no leading dot
      `.a.conf.emissary-${dead}-${ns}-0123.tmp`, // wrong random length
      `.a.conf.emissary-x-${ns}-0123456789ab.tmp`, // pid not numeric
      `.a.conf.emissary-${dead}-${ns}-0123456789ab.tmp.bak`,
      "a.conf",
    ];
    for (const n of [...ours, ...theirs]) await plant(n, UNCHECKABLE_TEMP_MAX_AGE_MS * 2);
    await fsp.mkdir(join(dir, `.d.emissary-${dead}-${ns}-0123456789ab.tmp`)); // a directory is never removed
    expect(await cleanStaleTempFiles(dir)).toBe(2);
    expect((await fsp.readdir(dir)).sort()).toEqual([...theirs, `.d.emissary-${dead}-${ns}-0123456789ab.tmp`].sort());
  });

  it("removes a temp file a failed write of this very process left behind", async () => {
    const dest = join(dir, "crash.conf");
    // Simulate a crash between fsync and rename: keep a hard link to the temp file under another
    // temp-style name of this pid (the writer itself removes its own temp file on failure).
    const err = await writeAtomic({
      path: dest,
      content: "v",
      mode: 0o600,
      fsOps: {
        async rename(from) {
          await fsp.link(from, from.replace(/-[0-9a-f]{12}\.tmp$/, "-aaaaaaaaaaaa.tmp"));
          throw errWithCode("EIO");
        },
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    const stale = (await fsp.readdir(dir)).filter((n) => parseTempName(n));
    expect(stale).toEqual([`.crash.conf.emissary-${process.pid}-${pidNamespace()}-aaaaaaaaaaaa.tmp`]);
    expect(await cleanStaleTempFiles(dir)).toBe(1);
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it("does not remove the temp file of a write in progress in this process", async () => {
    const dest = join(dir, "busy.conf");
    let removedDuringWrite = -1;
    await writeAtomic({
      path: dest,
      content: "v\n",
      mode: 0o600,
      fsOps: {
        async rename(from, to) {
          removedDuringWrite = await cleanStaleTempFiles(dir);
          await fsp.rename(from, to);
        },
      },
    });
    expect(removedDuringWrite).toBe(0);
    expect(await fsp.readFile(dest, "utf8")).toBe("v\n");
  });

  it("a missing directory counts as clean", async () => {
    expect(await cleanStaleTempFiles(join(dir, "nope"))).toBe(0);
  });
});
