import { execFileSync } from "node:child_process";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { WriteError } from "../../../src/api/errors.js";
import { writeAtomicMany } from "../../../src/output/batch.js";
import type { WriteResult } from "../../../src/output/writer.js";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "emissary-batch-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

const ok = (r: WriteResult | Error): WriteResult => {
  if (r instanceof Error) throw r;
  return r;
};

describe("writeAtomicMany", () => {
  it("writes every destination across directories (creating them), with its mode, and leaves no temp file", async () => {
    const reqs = Array.from({ length: 40 }, (_, i) => ({ path: join(dir, `d${i % 3}`, "sub", `f${i}.conf`), content: `value ${i}\n`, mode: i % 2 ? 0o640 : 0o600 }));
    const res = await writeAtomicMany(reqs, { concurrency: 5 });
    expect(res.map((r) => ok(r).reason)).toEqual(reqs.map(() => "created"));
    for (const [i, r] of reqs.entries()) {
      expect(await fsp.readFile(r.path, "utf8")).toBe(`value ${i}\n`);
      expect((await fsp.stat(r.path)).mode & 0o777).toBe(r.mode);
    }
    for (const d of ["d0", "d1", "d2"]) expect((await fsp.readdir(join(dir, d, "sub"))).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    // The same batch again: nothing to do.
    expect((await writeAtomicMany(reqs)).map((r) => ok(r).changed)).toEqual(reqs.map(() => false));
  });

  it("writes requests for the same destination in order: the last one wins", async () => {
    const path = join(dir, "same.conf");
    const res = await writeAtomicMany(["a", "bb", "ccc", "dddd"].map((content) => ({ path, content, mode: 0o600 })), { concurrency: 4 });
    expect(res.every((r) => !(r instanceof Error) && r.changed)).toBe(true);
    expect(await fsp.readFile(path, "utf8")).toBe("dddd");
  });

  it("fails only the requests at fault, with writeAtomic's errors, and writes the others", async () => {
    const fifo = join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    await fsp.writeFile(join(dir, "blocker"), "a file where a directory should be");
    const res = await writeAtomicMany([
      { path: join(dir, "good1"), content: "1", mode: 0o600 },
      { path: join(dir, "suid"), content: "x", mode: 0o4755 },
      { path: fifo, content: "x", mode: 0o600 },
      { path: join(dir, "blocker", "under"), content: "x", mode: 0o600 },
      { path: join(dir, "good2"), content: "2", mode: 0o600 },
    ]);
    expect(ok(res[0]!).changed).toBe(true);
    expect(res[1]).toBeInstanceOf(WriteError);
    expect((res[1] as Error).message).toMatch(/setuid, setgid or sticky/);
    expect(res[2]).toBeInstanceOf(WriteError);
    expect((res[2] as Error).message).toMatch(/FIFO/);
    expect(res[3]).toBeInstanceOf(WriteError);
    expect((res[3] as Error).message).toContain(join(dir, "blocker", "under"));
    expect(ok(res[4]!).changed).toBe(true);
    expect(await fsp.readFile(join(dir, "good2"), "utf8")).toBe("2");
    expect((await fsp.stat(fifo)).isFIFO()).toBe(true);
    await expect(fsp.stat(join(dir, "suid"))).rejects.toThrow();
  });

  it("replaces a symlink at a destination instead of following it", async () => {
    const target = join(dir, "target");
    await fsp.writeFile(target, "keep");
    await fsp.symlink(target, join(dir, "link"));
    const [r] = await writeAtomicMany([{ path: join(dir, "link"), content: "new", mode: 0o600 }]);
    expect(ok(r!).reason).toBe("symlink");
    expect(await fsp.readFile(target, "utf8")).toBe("keep");
    expect((await fsp.lstat(join(dir, "link"))).isFile()).toBe(true);
  });
});
