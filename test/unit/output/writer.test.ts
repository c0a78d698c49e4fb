import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { resolveOwner, writeAtomic, type WriterFsOps } from "../../../src/output/writer.js";
import { ConfigError, WriteError } from "../../../src/api/errors.js";
import { createLogger } from "../../../src/observe/log.js";
import { distUrl, runAsNobody } from "../../helpers/as-nobody.js";
import { canary } from "../../helpers/canary.js";

/** `.<name>.emissary-<pid>-<pidns>-<hex>.tmp` */
const TEMP_RE = /^\..*\.emissary-\d+-\d+-[0-9a-f]{12}\.tmp$/;
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

let dir: string;
let savedUmask: number;

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "emissary-writer-"));
  savedUmask = process.umask();
});
afterEach(async () => {
  process.umask(savedUmask);
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A logger whose lines are collected for assertions. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  let raw = "";
  const logger = createLogger({ level: "debug", destination: { write: (s: string) => void (raw += s) } });
  return {
    logger,
    raw: () => raw,
    lines: () =>
      raw
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function tempFilesIn(d: string): Promise<string[]> {
  return (await fsp.readdir(d)).filter((n) => n.includes(".emissary-"));
}

async function modeOf(p: string): Promise<number> {
  return (await fsp.lstat(p)).mode & 0o7777;
}

function errWithCode(code: string): NodeJS.ErrnoException {
  const e = new Error(`simulated ${code}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

describe("writeAtomic", () => {
  it("creates a file with the exact bytes and mode", async () => {
    const dest = join(dir, "out.conf");
    const value = canary();
    const res = await writeAtomic({ path: dest, content: `token = "${value}"\n`, mode: 0o640 });
    expect(res).toEqual({ changed: true, inPlace: false, reason: "created" });
    expect(await fsp.readFile(dest, "utf8")).toBe(`token = "${value}"\n`);
    expect(await modeOf(dest)).toBe(0o640);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("writes Buffers byte for byte", async () => {
    const dest = join(dir, "bin");
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10]);
    await writeAtomic({ path: dest, content: bytes, mode: 0o600 });
    expect((await fsp.readFile(dest)).equals(bytes)).toBe(true);
  });

  it("leaves an identical file untouched: same inode, same mtime", async () => {
    const dest = join(dir, "same.conf");
    await writeAtomic({ path: dest, content: "a=1\n", mode: 0o600 });
    // Push the mtime into the past so any rewrite would be visible.
    const past = new Date("2001-02-03T04:05:06Z");
    await fsp.utimes(dest, past, past);
    const before = await fsp.stat(dest, { bigint: true });
    const res = await writeAtomic({ path: dest, content: Buffer.from("a=1\n"), mode: 0o600 });
    expect(res).toEqual({ changed: false, inPlace: false });
    const after = await fsp.stat(dest, { bigint: true });
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeNs).toBe(before.mtimeNs);
  });

  it("rewrites when the content differs", async () => {
    const dest = join(dir, "c.conf");
    await writeAtomic({ path: dest, content: "a=1\n", mode: 0o600 });
    const res = await writeAtomic({ path: dest, content: "a=2\n", mode: 0o600 });
    expect(res).toEqual({ changed: true, inPlace: false, reason: "content" });
    expect(await fsp.readFile(dest, "utf8")).toBe("a=2\n");
  });

  it("a mode-only change is a change with reason 'mode'", async () => {
    const dest = join(dir, "m.conf");
    await writeAtomic({ path: dest, content: "x\n", mode: 0o600 });
    const res = await writeAtomic({ path: dest, content: "x\n", mode: 0o444 });
    expect(res).toEqual({ changed: true, inPlace: false, reason: "mode" });
    expect(await modeOf(dest)).toBe(0o444);
    expect(await fsp.readFile(dest, "utf8")).toBe("x\n");
  });

  it("replaces a symlink at the destination and never writes through it", async () => {
    const target = join(dir, "target.txt");
    await fsp.writeFile(target, "original target\n", { mode: 0o644 });
    const dest = join(dir, "link.conf");
    await fsp.symlink(target, dest);
    // Even when the link points at a file with the very same bytes and mode, the link is replaced.
    const res = await writeAtomic({ path: dest, content: "original target\n", mode: 0o644 });
    expect(res).toEqual({ changed: true, inPlace: false, reason: "symlink" });
    expect((await fsp.lstat(dest)).isFile()).toBe(true);

    await fsp.rm(dest);
    await fsp.symlink(target, dest);
    await writeAtomic({ path: dest, content: "new\n", mode: 0o600 });
    expect((await fsp.lstat(dest)).isSymbolicLink()).toBe(false);
    expect(await fsp.readFile(dest, "utf8")).toBe("new\n");
    expect(await fsp.readFile(target, "utf8")).toBe("original target\n");
    expect(await modeOf(target)).toBe(0o644);
  });

  it("replaces a dangling symlink without creating its target", async () => {
    const dest = join(dir, "dangling.conf");
    const target = join(dir, "nowhere", "file");
    await fsp.symlink(target, dest);
    await writeAtomic({ path: dest, content: "v\n", mode: 0o600 });
    expect(await fsp.readFile(dest, "utf8")).toBe("v\n");
    await expect(fsp.lstat(join(dir, "nowhere"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("creates missing parent directories 0755 whatever the umask", async () => {
    process.umask(0o077);
    const dest = join(dir, "a", "b", "c", "secret.conf");
    await writeAtomic({ path: dest, content: "v\n", mode: 0o600 });
    expect(await fsp.readFile(dest, "utf8")).toBe("v\n");
    for (const d of [join(dir, "a"), join(dir, "a", "b"), join(dir, "a", "b", "c")]) {
      expect((await fsp.stat(d)).mode & 0o7777).toBe(0o755);
    }
    // Existing directories are not chmod'ed.
    expect(await modeOf(dir)).toBe(0o700);
  });

  it("creates the temp file 0600 in the destination's directory even with umask 0", async () => {
    process.umask(0);
    const dest = join(dir, "umask.conf");
    const seen: { openMode?: number; name?: string; dirListing?: string[]; modeAtRename?: number } = {};
    const fsOps: Partial<WriterFsOps> = {
      async open(path, flags, mode) {
        const fh = await fsp.open(path, flags, mode);
        seen.openMode = (await fh.stat()).mode & 0o7777;
        seen.name = path;
        return fh;
      },
      async rename(from, to) {
        seen.dirListing = await fsp.readdir(dir);
        seen.modeAtRename = await modeOf(from);
        await fsp.rename(from, to);
      },
    };
    await writeAtomic({ path: dest, content: "s\n", mode: 0o640, fsOps });
    expect(seen.openMode).toBe(0o600);
    const temp = seen.dirListing?.filter((n) => TEMP_RE.test(n)) ?? [];
    expect(temp).toHaveLength(1);
    // Opened inside the destination's directory (by name in the directory emissary holds open).
    expect(basename(seen.name!)).toBe(temp[0]);
    expect(temp[0]!.startsWith(".umask.conf.emissary-")).toBe(true);
    // The final mode is applied before the rename, so the destination is never briefly 0600/0644.
    expect(seen.modeAtRename).toBe(0o640);
    expect(await modeOf(dest)).toBe(0o640);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("a failed rename leaves the old file and no temp file, and throws WriteError without the content", async () => {
    const dest = join(dir, "keep.conf");
    await fsp.writeFile(dest, "old\n", { mode: 0o600 });
    const value = canary();
    const err = await writeAtomic({
      path: dest,
      content: value,
      mode: 0o600,
      fsOps: { rename: async () => Promise.reject(errWithCode("EPERM")) },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    const we = err as WriteError;
    expect(we.path).toBe(dest);
    expect(we.errno).toBe("EPERM");
    expect(we.message).toContain(dest);
    expect(we.message).toContain("EPERM");
    expect(we.message).not.toContain(value);
    expect(await fsp.readFile(dest, "utf8")).toBe("old\n");
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("a real failure (parent is a regular file) throws WriteError naming the path and ENOTDIR", async () => {
    // chmod 0555 does not stop root; a file where a directory should be stops everyone.
    const notDir = join(dir, "plain-file");
    await fsp.writeFile(notDir, "i am a file\n");
    const dest = join(notDir, "sub", "out.conf");
    const err = await writeAtomic({ path: dest, content: "v", mode: 0o600 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as WriteError).errno).toBe("ENOTDIR");
    expect((err as WriteError).message).toContain(dest);
    expect(await fsp.readFile(notDir, "utf8")).toBe("i am a file\n");
  });

  it("a real rename failure (destination is a directory) leaves it and removes the temp file", async () => {
    const dest = join(dir, "is-a-dir");
    await fsp.mkdir(dest);
    await fsp.writeFile(join(dest, "inside"), "keep\n");
    const err = await writeAtomic({ path: dest, content: "v", mode: 0o600 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect(["EISDIR", "ENOTEMPTY", "EEXIST"]).toContain((err as WriteError).errno);
    expect(await fsp.readFile(join(dest, "inside"), "utf8")).toBe("keep\n");
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("read-only directory: fails with EACCES and leaves the old file (as root: checked as uid 65534)", async () => {
    const sub = join(dir, "ro");
    await fsp.mkdir(sub);
    const dest = join(sub, "f.conf");
    await fsp.writeFile(dest, "old\n");
    await fsp.chmod(sub, 0o555);
    try {
      if (isRoot) {
        // Root ignores directory permissions: drop to an unprivileged user for this check.
        await fsp.chmod(dir, 0o755);
        const res = (await runAsNobody(
          `import { writeAtomic } from ${JSON.stringify(distUrl("src/output/writer.js"))};
           const r = await writeAtomic({ path: ${JSON.stringify(dest)}, content: "new", mode: 0o600 }).then(() => ({ ok: true }), (e) => ({ name: e.name, errno: e.errno }));
           console.log(JSON.stringify(r));`,
        )) as { name: string; errno: string };
        expect(res).toEqual({ name: "WriteError", errno: "EACCES" });
      } else {
        const err = await writeAtomic({ path: dest, content: "new", mode: 0o600 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteError);
        expect((err as WriteError).errno).toBe("EACCES");
      }
      expect(await fsp.readFile(dest, "utf8")).toBe("old\n");
      expect((await fsp.readdir(sub)).sort()).toEqual(["f.conf"]);
    } finally {
      await fsp.chmod(sub, 0o755);
    }
  });

  for (const errno of ["EBUSY", "EXDEV"]) {
    it(`falls back to an in-place rewrite on ${errno}, with a warning naming path and errno only`, async () => {
      const dest = join(dir, "bind.conf");
      await fsp.writeFile(dest, "old content that is longer than the new one\n", { mode: 0o644 });
      const inoBefore = (await fsp.stat(dest)).ino;
      const { logger, lines, raw } = capturingLogger();
      const value = canary();
      const res = await writeAtomic({
        path: dest,
        content: `v=${value}\n`,
        mode: 0o600,
        logger,
        fsOps: { rename: async () => Promise.reject(errWithCode(errno)) },
      });
      expect(res).toEqual({ changed: true, inPlace: true, reason: "content" });
      expect(await fsp.readFile(dest, "utf8")).toBe(`v=${value}\n`);
      expect(await modeOf(dest)).toBe(0o600);
      expect((await fsp.stat(dest)).ino).toBe(inoBefore);
      expect(await tempFilesIn(dir)).toEqual([]);
      const warns = lines().filter((l) => l.level === 40);
      expect(warns).toHaveLength(1);
      expect(warns[0]!.dest).toBe(dest);
      expect(warns[0]!.errno).toBe(errno);
      expect(String(warns[0]!.msg)).toContain("in place");
      expect(raw()).not.toContain("CANARY");
    });
  }

  it("does not write through a symlink on the in-place path either", async () => {
    const target = join(dir, "t");
    await fsp.writeFile(target, "target\n");
    const dest = join(dir, "l");
    await fsp.symlink(target, dest);
    const err = await writeAtomic({
      path: dest,
      content: "new",
      mode: 0o600,
      fsOps: { rename: async () => Promise.reject(errWithCode("EXDEV")) },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as WriteError).errno).toBe("ELOOP");
    expect(await fsp.readFile(target, "utf8")).toBe("target\n");
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it("chowns and compares the owner when asked (root only)", async (ctx) => {
    if (!isRoot) {
      console.log("skipped: chown to another uid needs root");
      ctx.skip();
      return;
    }
    const dest = join(dir, "owned.conf");
    const r1 = await writeAtomic({ path: dest, content: "o\n", mode: 0o600, uid: 12345, gid: 23456 });
    expect(r1.changed).toBe(true);
    let st = await fsp.stat(dest);
    expect([st.uid, st.gid]).toEqual([12345, 23456]);
    expect((await writeAtomic({ path: dest, content: "o\n", mode: 0o600, uid: 12345, gid: 23456 })).changed).toBe(false);
    // Without uid/gid the owner is neither compared nor changed.
    expect((await writeAtomic({ path: dest, content: "o\n", mode: 0o600 })).changed).toBe(false);
    const r2 = await writeAtomic({ path: dest, content: "o\n", mode: 0o600, gid: 0 });
    expect(r2).toEqual({ changed: true, inPlace: false, reason: "owner" });
    st = await fsp.stat(dest);
    expect([st.uid, st.gid]).toEqual([12345, 0]);
  });

  it("keeps the owner of a replaced file when uid/gid are not given (root only)", async (ctx) => {
    if (!isRoot) {
      console.log("skipped: a file owned by another uid needs root to create");
      ctx.skip();
      return;
    }
    const dest = join(dir, "kept.conf");
    await fsp.writeFile(dest, "old\n", { mode: 0o600 });
    await fsp.chown(dest, 4242, 4343);
    const res = await writeAtomic({ path: dest, content: "new\n", mode: 0o600 });
    expect(res).toEqual({ changed: true, inPlace: false, reason: "content" });
    const st = await fsp.stat(dest);
    expect([st.uid, st.gid]).toEqual([4242, 4343]);
    expect(await fsp.readFile(dest, "utf8")).toBe("new\n");
  });
});

describe("resolveOwner", () => {
  it("passes numbers and numeric strings through", async () => {
    expect(await resolveOwner(1000, "2000")).toEqual({ uid: 1000, gid: 2000 });
    expect(await resolveOwner(0, 0)).toEqual({ uid: 0, gid: 0 });
    expect(await resolveOwner(" 42 ")).toEqual({ uid: 42 });
  });

  it("leaves absent ids absent", async () => {
    expect(await resolveOwner()).toEqual({});
    expect(await resolveOwner(undefined, "7")).toEqual({ gid: 7 });
  });

  it("looks root up in /etc/passwd and /etc/group", async () => {
    expect(await resolveOwner("root", "root")).toEqual({ uid: 0, gid: 0 });
  });

  it("looks names up in the given files", async () => {
    const passwd = join(dir, "passwd");
    const group = join(dir, "group");
    await fsp.writeFile(passwd, "# comment\nroot:x:0:0:root:/root:/bin/sh\nnomad:x:1234:999:Nomad:/var/lib/nomad:/sbin/nologin\n");
    await fsp.writeFile(group, "root:x:0:\nnomad:x:4321:nomad\n");
    expect(await resolveOwner("nomad", "nomad", { passwdFile: passwd, groupFile: group })).toEqual({ uid: 1234, gid: 4321 });
  });

  it("an unknown name is a ConfigError naming it", async () => {
    const err = await resolveOwner("no-such-user-xyz").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain('"no-such-user-xyz"');
    expect((err as ConfigError).field).toBe("owner");
    const gerr = await resolveOwner(undefined, "no-such-group-xyz").catch((e: unknown) => e);
    expect(gerr).toBeInstanceOf(ConfigError);
    expect((gerr as ConfigError).message).toContain('group "no-such-group-xyz"');
    expect((gerr as ConfigError).field).toBe("group");
  });

  it("rejects invalid ids", async () => {
    await expect(resolveOwner(-1)).rejects.toBeInstanceOf(ConfigError);
    await expect(resolveOwner(1.5)).rejects.toBeInstanceOf(ConfigError);
    await expect(resolveOwner("")).rejects.toBeInstanceOf(ConfigError);
  });

  it("a name missing from a readable file is an error, an unreadable file too", async () => {
    await expect(resolveOwner("root", undefined, { passwdFile: join(dir, "missing") })).rejects.toBeInstanceOf(ConfigError);
  });
});
