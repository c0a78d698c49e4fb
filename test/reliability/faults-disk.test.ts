/**
 * Disk faults: a full file system and a read-only destination directory.
 *
 * Where tmpfs can be mounted (root here) the built daemon writes into a real 64 KiB tmpfs and a
 * tmpfs remounted read-only; elsewhere the same promises are checked by injecting ENOSPC, EROFS
 * and EIO into the writer through its `fsOps` hook. The injected cases always run; the test prints
 * which kind ran. Asserted: the last good file stays byte for byte, no temporary file is left,
 * the other templates are written, an error line names the destination and the errno, the daemon
 * stays up, and it catches up once the disk is writable again.
 */
import { promises as fsp, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WriteError } from "../../src/api/errors.js";
import { writeAtomic, type WriterFsOps } from "../../src/output/writer.js";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { mountTmpfs, remount, unmount } from "./helpers/tmpfs.js";

const TEMP_RE = /\.emissary-\d+-\d+-[0-9a-f]{12}\.tmp$/;

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => TEMP_RE.test(n));
}
function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** Whether this machine lets us mount a tmpfs, and why not. */
const mountProbe = ((): string | undefined => {
  const probe = tmpDir("emissary-mount-probe-");
  const why = mountTmpfs(probe, "64k");
  if (why === undefined) unmount(probe);
  return why;
})();
const canMount = mountProbe === undefined;
// Which variant ran is part of the test report.
console.log(canMount ? "disk faults: using real tmpfs mounts (full: size=64k; read-only: remount,ro)" : `disk faults: tmpfs cannot be mounted here (${mountProbe}); using injected fs errors only`);

describe.runIf(canMount)("disk faults on real tmpfs mounts (daemon)", () => {
  let dir: string;
  let full: string;
  let ro: string;
  let daemon: Daemon | undefined;
  const secret = (n: string): string => join(dir, "secrets", n);
  const bigValue = (label: string, bytes: number): string => `${canary(label)}\n${"x".repeat(bytes)}`;

  beforeAll(async () => {
    dir = tmpDir("emissary-disk-");
    full = join(dir, "full");
    ro = join(dir, "ro");
    for (const d of [full, ro, join(dir, "out"), join(dir, "tpl"), join(dir, "secrets")]) mkdirSync(d);
    expect(mountTmpfs(full, "64k")).toBeUndefined();
    expect(mountTmpfs(ro, "1m")).toBeUndefined();
    writeFileSync(join(dir, "emissary.yaml"), "defaults: { retry: 1s }\n");
    const tpl = (name: string, dest: string): void =>
      writeFileSync(join(dir, "tpl", `${name}.tpl`), `---\ndest: ${dest}\nsecrets:\n  v: file:../secrets/${name}\n---\n{{v}}\n`);
    tpl("big", join(full, "big.txt"));
    tpl("app", join(ro, "app.txt"));
    tpl("control", join(dir, "out", "control.txt"));
    writeFileSync(secret("big"), bigValue("big1", 20_000));
    writeFileSync(secret("app"), canary("app1"));
    writeFileSync(secret("control"), canary("control1"));
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl"), "--config", join(dir, "emissary.yaml")]);
    await waitFor(
      () => ["big", "app", "control"].every((n) => read(join(n === "big" ? full : n === "app" ? ro : join(dir, "out"), `${n}.txt`)) === readFileSync(secret(n), "utf8") + "\n"),
      20_000,
      "first render",
    );
  });

  afterAll(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
    }
    if (ro) unmount(ro);
    if (full) unmount(full);
  });

  function writeErrors(dest: string): Record<string, unknown>[] {
    return daemon!.logs().filter((l) => l.dest === dest && l.msg === "cannot write destination; the last good file stays");
  }

  it("a full file system: ENOSPC is logged, the last good file stays whole, no temp file, others carry on, then it catches up", async () => {
    const dest = join(full, "big.txt");
    const good = readFileSync(dest, "utf8");
    // 20 KB on disk + a 60 KB temp file do not fit in 64 KiB.
    writeFileSync(secret("big"), bigValue("big2", 60_000));
    await waitFor(() => writeErrors(dest).length > 0, 20_000, "a write error for the full file system");
    const line = writeErrors(dest)[0]!;
    expect(JSON.stringify(line.err)).toContain("ENOSPC");
    expect(JSON.stringify(line)).not.toContain("CANARY");
    expect(readFileSync(dest, "utf8")).toBe(good);
    expect(tempFiles(full)).toEqual([]);

    const c2 = canary("control2");
    writeFileSync(secret("control"), c2);
    await waitFor(() => read(join(dir, "out", "control.txt")) === `${c2}\n`, 15_000, "the control template is still written");
    expect(daemon!.proc.exitCode).toBeNull();

    // Space comes back (the secret shrinks): the retry writes it.
    const fits = bigValue("big3", 30_000);
    writeFileSync(secret("big"), fits);
    await waitFor(() => read(dest) === `${fits}\n`, 20_000, "the destination is written once it fits");
    expect(tempFiles(full)).toEqual([]);
  }, 90_000);

  it("a read-only destination directory: EROFS is logged, the file stays, others carry on, written again when writable", async () => {
    const dest = join(ro, "app.txt");
    const good = readFileSync(dest, "utf8");
    remount(ro, true);
    try {
      writeFileSync(secret("app"), canary("app2"));
      await waitFor(() => writeErrors(dest).length > 0, 20_000, "a write error for the read-only directory");
      expect(JSON.stringify(writeErrors(dest)[0]!.err)).toContain("EROFS");
      expect(readFileSync(dest, "utf8")).toBe(good);
      const c3 = canary("control3");
      writeFileSync(secret("control"), c3);
      await waitFor(() => read(join(dir, "out", "control.txt")) === `${c3}\n`, 15_000, "the control template is still written");
      // Still read-only after a few retries: still the last good file.
      await waitFor(() => writeErrors(dest).length >= 2, 20_000, "a retry");
      expect(readFileSync(dest, "utf8")).toBe(good);
    } finally {
      remount(ro, false);
    }
    await waitFor(() => read(dest) === readFileSync(secret("app"), "utf8") + "\n", 20_000, "written after the remount read-write");
    expect(tempFiles(ro)).toEqual([]);
    expect(daemon!.proc.exitCode).toBeNull();
  }, 90_000);
});

describe("disk faults injected into the writer (always run)", () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir("emissary-disk-inject-");
  });

  /** Opens the real temp file but makes one of its handle's operations fail with `code`. */
  function failingHandle(op: "writeFile" | "sync" | "chmod", code: string): Partial<WriterFsOps> {
    return {
      async open(path, flags, mode) {
        const fh = await fsp.open(path, flags, mode);
        return new Proxy(fh, {
          get(target, prop, receiver) {
            if (prop === op) {
              return async (...args: unknown[]) => {
                // Write part of it first, as a disk filling up mid-write does.
                if (op === "writeFile") await target.write(Buffer.from(String(args[0]).slice(0, 5)));
                throw errnoError(code);
              };
            }
            const v = Reflect.get(target, prop, receiver) as unknown;
            return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        });
      },
    };
  }

  const cases: { name: string; code: string; fsOps: () => Partial<WriterFsOps> }[] = [
    { name: "ENOSPC while writing (full disk)", code: "ENOSPC", fsOps: () => failingHandle("writeFile", "ENOSPC") },
    { name: "EIO on fsync (failing disk)", code: "EIO", fsOps: () => failingHandle("sync", "EIO") },
    { name: "EROFS creating the temp file (read-only)", code: "EROFS", fsOps: () => ({ open: async () => Promise.reject(errnoError("EROFS")) }) },
    { name: "EACCES creating the temp file (directory not writable)", code: "EACCES", fsOps: () => ({ open: async () => Promise.reject(errnoError("EACCES")) }) },
    { name: "EROFS on rename", code: "EROFS", fsOps: () => ({ rename: async () => Promise.reject(errnoError("EROFS")) }) },
  ];

  for (const c of cases) {
    it(`${c.name}: WriteError naming path and errno, old file intact, no temp file`, async () => {
      const dest = join(dir, `${c.code}-${c.name.length}.conf`);
      const good = `${canary("old")}\n`;
      await fsp.writeFile(dest, good, { mode: 0o600 });
      const value = canary("new");
      const err = await writeAtomic({ path: dest, content: value, mode: 0o600, fsOps: c.fsOps() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WriteError);
      expect((err as WriteError).errno).toBe(c.code);
      expect((err as WriteError).message).toContain(dest);
      expect((err as WriteError).message).not.toContain("CANARY");
      expect(await fsp.readFile(dest, "utf8")).toBe(good);
      expect(tempFiles(dir)).toEqual([]);
      // And the next write, once the disk is fine, succeeds.
      await writeAtomic({ path: dest, content: value, mode: 0o600 });
      expect(await fsp.readFile(dest, "utf8")).toBe(value);
    });
  }
});
