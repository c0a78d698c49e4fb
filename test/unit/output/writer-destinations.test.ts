/**
 * What the writer refuses or warns about at a destination: FIFOs, sockets and devices (never
 * replaced), setuid/setgid/sticky modes (refused), world-writable modes (a warning, once), and the
 * order in which owner and mode are applied (chown first).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { promises as fsp } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic, type WriterFsOps } from "../../../src/output/writer.js";
import { WriteError } from "../../../src/api/errors.js";
import { createLogger } from "../../../src/observe/log.js";
import { canary } from "../../helpers/canary.js";

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

let dir: string;
let server: Server | undefined;
beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "emissary-dest-"));
});
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  await fsp.rm(dir, { recursive: true, force: true });
});

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  let raw = "";
  const logger = createLogger({ level: "debug", destination: { write: (s: string) => void (raw += s) } });
  return { logger, raw: () => raw, lines: () => raw.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const special: Record<string, { make: (p: string) => Promise<void>; is: (st: import("node:fs").Stats) => boolean; word: string; root?: boolean }> = {
  FIFO: { make: async (p) => void execFileSync("mkfifo", ["-m", "0644", p]), is: (st) => st.isFIFO(), word: "FIFO" },
  socket: {
    make: (p) =>
      new Promise<void>((resolve, reject) => {
        server = createServer();
        server.once("error", reject);
        server.listen(p, () => resolve());
      }),
    is: (st) => st.isSocket(),
    word: "socket",
  },
  "character device": { make: async (p) => void execFileSync("mknod", ["-m", "0666", p, "c", "1", "3"]), is: (st) => st.isCharacterDevice(), word: "character device", root: true },
};

describe("a FIFO, socket or device at the destination", () => {
  for (const [kind, s] of Object.entries(special)) {
    it(`a ${kind} is refused with an error naming the path, and left untouched`, async (ctx) => {
      if (s.root && !isRoot) {
        if (process.env.CI === "true") throw new Error("mknod needs root, and CI runs as root");
        console.log(`skipped: creating a ${kind} needs root`);
        ctx.skip();
        return;
      }
      const dest = join(dir, `dest-${kind.replace(" ", "-")}`);
      await s.make(dest);
      const before = await fsp.lstat(dest);
      const value = canary();
      // On the in-place path (EBUSY/EXDEV) as well as the normal one.
      for (const fsOps of [undefined, { rename: async () => Promise.reject(Object.assign(new Error("busy"), { code: "EBUSY" })) }] as (Partial<WriterFsOps> | undefined)[]) {
        const err = await writeAtomic({ path: dest, content: value, mode: 0o600, ...(fsOps ? { fsOps } : {}) }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WriteError);
        expect((err as WriteError).path).toBe(dest);
        expect((err as WriteError).message).toContain(dest);
        expect((err as WriteError).message).toContain(s.word);
        expect((err as WriteError).message).not.toContain(value);
        const after = await fsp.lstat(dest);
        expect(s.is(after)).toBe(true);
        expect([after.ino, after.mode, after.uid]).toEqual([before.ino, before.mode, before.uid]);
        expect((await fsp.readdir(dir)).filter((n) => n.includes(".emissary-"))).toEqual([]);
      }
    });
  }
});

describe("modes", () => {
  it.each(["4755", "2755", "1777", "6600"])("refuses mode %s (setuid, setgid or sticky) and writes nothing", async (mode) => {
    const dest = join(dir, "prog");
    const err = await writeAtomic({ path: dest, content: "x", mode: parseInt(mode, 8) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect((err as WriteError).message).toMatch(/setuid, setgid or sticky/);
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it("warns once per destination and mode about a world-writable mode, naming both", async () => {
    const { logger, lines } = capture();
    const a = join(dir, "a.conf");
    const b = join(dir, "b.conf");
    for (let i = 0; i < 3; i++) {
      await writeAtomic({ path: a, content: `v${i}`, mode: 0o666, logger });
      await writeAtomic({ path: b, content: `v${i}`, mode: 0o640, logger });
    }
    await writeAtomic({ path: a, content: "v", mode: 0o777, logger });
    const warns = lines().filter((l) => l.level === 40);
    expect(warns.map((w) => [w.dest, w.mode])).toEqual([
      [a, "0666"],
      [a, "0777"],
    ]);
    expect(String(warns[0]!.msg)).toContain("every user");
    expect((await fsp.stat(a)).mode & 0o7777).toBe(0o777);
  });

  it("applies the owner before the mode: chown, then chmod, on the temp file before the rename (root only)", async (ctx) => {
    if (!isRoot) {
      if (process.env.CI === "true") throw new Error("chown to another uid needs root, and CI runs as root");
      console.log("skipped: chown to another uid needs root");
      ctx.skip();
      return;
    }
    const dest = join(dir, "owned.conf");
    const ops: { op: string; mode: number; uid: number }[] = [];
    const fsOps: Partial<WriterFsOps> = {
      async open(path, flags, mode) {
        const fh = await fsp.open(path, flags, mode);
        const record = async (op: string): Promise<void> => {
          const st = await fh.stat();
          ops.push({ op, mode: st.mode & 0o7777, uid: st.uid });
        };
        return new Proxy(fh, {
          get(target, prop) {
            if (prop === "chown" || prop === "chmod") {
              return async (...args: [number, number?]) => {
                await record(`${String(prop)} before`);
                await (target[prop] as (...a: unknown[]) => Promise<void>).apply(target, args);
                await record(`${String(prop)} after`);
              };
            }
            const v = Reflect.get(target, prop, target) as unknown;
            return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        });
      },
      async rename(from, to) {
        ops.push({ op: "rename", mode: (await fsp.lstat(from)).mode & 0o7777, uid: (await fsp.lstat(from)).uid });
        await fsp.rename(from, to);
      },
    };
    await writeAtomic({ path: dest, content: canary(), mode: 0o640, uid: 12345, gid: 23456, fsOps });
    const names = ops.map((o) => o.op);
    const chown = names.indexOf("chown before");
    const lastChmod = names.lastIndexOf("chmod before");
    expect(chown).toBeGreaterThan(-1);
    expect(chown, names.join(", ")).toBeLessThan(lastChmod);
    // While the file changes hands it is still 0600: never 0640 under the old group.
    expect(ops[chown]!.mode).toBe(0o600);
    expect(ops.at(-1)).toEqual({ op: "rename", mode: 0o640, uid: 12345 });
    const st = await fsp.stat(dest);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 12345, 23456]);
  });
});
