import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDestDir } from "../../../src/output/dirs.js";
import { writeAtomic } from "../../../src/output/writer.js";
import { WriteError } from "../../../src/api/errors.js";
import { createLogger } from "../../../src/observe/log.js";
import { distUrl, NOBODY, runAsNobody } from "../../helpers/as-nobody.js";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

let dir: string;
let savedUmask: number;
beforeEach(async () => {
  dir = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), "emissary-dirs-")));
  savedUmask = process.umask();
});
afterEach(async () => {
  process.umask(savedUmask);
  await fsp.rm(dir, { recursive: true, force: true });
});

function capture(): { logger: ReturnType<typeof createLogger>; warnings: () => Array<Record<string, unknown>> } {
  let raw = "";
  const logger = createLogger({ level: "debug", destination: { write: (s: string) => void (raw += s) } });
  return {
    logger,
    warnings: () =>
      raw
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.level === 40),
  };
}

/** Root only: a test that needs files owned by another user. Prints why when it cannot run. */
function needsRoot(ctx: { skip: () => void }): boolean {
  if (isRoot) return true;
  if (process.env.CI === "true") throw new Error("this test must run as root under CI");
  console.log("skipped: files owned by another user need root to create");
  ctx.skip();
  return false;
}

describe("openDestDir: the /proc fallback says so", () => {
  it("warns once that the lstat walk is not race-free", async () => {
    const { logger, warnings } = capture();
    for (let i = 0; i < 2; i++) await writeAtomic({ path: join(dir, `f${i}`), content: "v", mode: 0o600, logger, noProc: true });
    const w = warnings().filter((l) => String(l.msg).includes("/proc/self/fd is not available"));
    // Once per process (this test runs first in its file, so the process has not warned yet).
    expect(w.length).toBe(1);
  });
});

// Every case runs on the /proc/self/fd walk and on the lstat fallback used where /proc is absent.
for (const noProc of [false, true]) {
  const walk = noProc ? "lstat fallback" : "/proc/self/fd walk";

  describe(`openDestDir (${walk})`, () => {
    it("creates missing directories 0755 through their descriptor, whatever the umask", async () => {
      process.umask(0o077);
      const d = await openDestDir(join(dir, "a", "b"), { create: true, forPath: join(dir, "a", "b", "f"), noProc });
      try {
        expect(d.pinned).toBe(!noProc);
        expect(d.path).toBe(join(dir, "a", "b"));
        await fsp.writeFile(d.entry("f"), "x");
      } finally {
        await d.close();
      }
      expect(await fsp.readFile(join(dir, "a", "b", "f"), "utf8")).toBe("x");
      for (const p of [join(dir, "a"), join(dir, "a", "b")]) expect((await fsp.stat(p)).mode & 0o7777).toBe(0o755);
      expect((await fsp.stat(dir)).mode & 0o7777).toBe(0o700); // existing directories are left as they are
    });

    it("without create, a missing directory is ENOENT and nothing is created", async () => {
      const err = await openDestDir(join(dir, "nope", "x"), { create: false, forPath: "f", noProc }).catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe("ENOENT");
      expect(await fsp.readdir(dir)).toEqual([]);
    });

    it("follows a symlink owned by root or emissary's user (relative, absolute, with ..)", async () => {
      await fsp.mkdir(join(dir, "real", "inner"), { recursive: true });
      await fsp.symlink("real", join(dir, "rel")); // like /var/run -> ../run
      await fsp.symlink(join(dir, "real", "inner"), join(dir, "abs"));
      await fsp.symlink("../real", join(dir, "real", "up"));
      for (const [via, want] of [
        [join(dir, "rel", "inner"), join(dir, "real", "inner")],
        [join(dir, "abs", "new"), join(dir, "real", "inner", "new")],
        [join(dir, "real", "up", "inner", "..", "x"), join(dir, "real", "x")],
      ] as const) {
        const d = await openDestDir(via, { create: true, forPath: join(via, "f"), noProc });
        await d.close();
        expect(d.path).toBe(want);
        expect((await fsp.lstat(want)).isDirectory()).toBe(true);
      }
    });

    it("refuses a symlink owned by another user anywhere in the path, naming it and its owner (root only)", async (ctx) => {
      if (!needsRoot(ctx)) return;
      const target = join(dir, "target");
      await fsp.mkdir(target, { mode: 0o700 });
      const link = join(dir, "link");
      await fsp.symlink(target, link);
      await fsp.lchown(link, NOBODY, NOBODY);
      const dest = join(link, "sub", "out.conf");
      const err = await writeAtomic({ path: dest, content: "secret", mode: 0o600, noProc }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WriteError);
      expect((err as WriteError).path).toBe(dest);
      expect((err as WriteError).message).toContain(`${link} is a symlink owned by uid ${NOBODY}`);
      expect(await fsp.readdir(target)).toEqual([]);
      expect((await fsp.stat(target)).mode & 0o7777).toBe(0o700);
      // The same link as the destination itself is replaced, not followed: that is not a refusal.
      const res = await writeAtomic({ path: link, content: "v\n", mode: 0o600, noProc });
      expect(res.reason).toBe("symlink");
      expect((await fsp.lstat(link)).isFile()).toBe(true);
    });

    it("a symlink loop is ELOOP", async () => {
      await fsp.symlink("b", join(dir, "a"));
      await fsp.symlink("a", join(dir, "b"));
      const err = await openDestDir(join(dir, "a", "x"), { create: true, forPath: "f", noProc }).catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe("ELOOP");
    });

    it("a regular file in the path is ENOTDIR", async () => {
      await fsp.writeFile(join(dir, "file"), "");
      const err = await openDestDir(join(dir, "file", "x"), { create: true, forPath: "f", noProc }).catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe("ENOTDIR");
    });

    it("warns once when others can write the destination's directory, or own one above it (root only)", async (ctx) => {
      if (!needsRoot(ctx)) return;
      const open = join(dir, `open-${noProc}`);
      await fsp.mkdir(open);
      await fsp.chmod(open, 0o777);
      const theirs = join(dir, `theirs-${noProc}`);
      await fsp.mkdir(join(theirs, "sub"), { recursive: true });
      await fsp.chown(theirs, NOBODY, NOBODY);
      const { logger, warnings } = capture();
      for (let i = 0; i < 3; i++) {
        await writeAtomic({ path: join(open, "a.conf"), content: `v${i}`, mode: 0o600, logger, noProc });
        await writeAtomic({ path: join(theirs, "sub", "b.conf"), content: `v${i}`, mode: 0o600, logger, noProc });
      }
      const w = warnings().filter((l) => typeof l.dir === "string");
      expect(w.map((l) => [l.dir, l.mode, l.writableBy])).toEqual([
        [open, "0777", "everyone"],
        [theirs, "0755", `owner ${NOBODY}`],
      ]);
      expect(String(w[0]!.msg)).toContain("directory of this destination");
      expect(String(w[1]!.msg)).toContain("directory above this destination");
    });
  });
}

describe("openDestDir: directories emissary may search but not read", () => {
  it("a 0711 directory in the path is pinned with O_PATH (as root: checked as uid 65534)", async (ctx) => {
    if (!needsRoot(ctx)) return;
    await fsp.chmod(dir, 0o755);
    const searchOnly = join(dir, "x-only");
    await fsp.mkdir(searchOnly);
    const mine = join(searchOnly, "mine");
    await fsp.mkdir(mine);
    await fsp.chown(mine, NOBODY, NOBODY);
    await fsp.chmod(searchOnly, 0o711);
    const dest = join(mine, "new", "out.conf");
    const res = (await runAsNobody(
      `import { writeAtomic } from ${JSON.stringify(distUrl("src/output/writer.js"))};
       const r = await writeAtomic({ path: ${JSON.stringify(dest)}, content: "v", mode: 0o600 }).then((x) => x, (e) => ({ name: e.name, message: e.message }));
       console.log(JSON.stringify(r));`,
    )) as Record<string, unknown>;
    expect(res).toEqual({ changed: true, inPlace: false, reason: "created" });
    expect(await fsp.readFile(dest, "utf8")).toBe("v");
    expect((await fsp.stat(dest)).uid).toBe(NOBODY);
  });
});
