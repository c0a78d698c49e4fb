import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readRegularFile, readRegularFileSync } from "../../../src/api/safe-read.js";

const dir = mkdtempSync(join(tmpdir(), "emissary-safe-read-"));
function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
const code = (p: Promise<unknown>) => p.then(() => "resolved", (e: { code?: string }) => e.code);

describe("readRegularFile", () => {
  it("reads small, empty and multi-chunk files exactly, like the sync reader", async () => {
    const big = Buffer.alloc(200_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    for (const [name, content] of [["small", "hunter2"], ["empty", ""], ["big", big]] as const) {
      const p = file(name, content);
      const got = await readRegularFile(p);
      expect(got.equals(Buffer.from(content))).toBe(true);
      expect(readRegularFileSync(p).equals(Buffer.from(content))).toBe(true);
    }
  });

  it("reads a file whose size the kernel reports as 0 to its end (/proc)", async () => {
    const text = (await readRegularFile("/proc/self/status")).toString("utf8");
    expect(text).toMatch(/^Name:/);
    expect(text).toMatch(/VmRSS|Threads/);
  });

  it("enforces the size limit: at the limit is fine, one byte over is EFBIG, or max+1 bytes with truncate", async () => {
    const p = file("limit", "x".repeat(100));
    expect((await readRegularFile(p, { maxBytes: 100 })).length).toBe(100);
    expect(await code(readRegularFile(p, { maxBytes: 99 }))).toBe("EFBIG");
    expect((await readRegularFile(p, { maxBytes: 10, truncate: true })).length).toBe(11);
  });

  it("refuses a FIFO without blocking, and a directory", async () => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    expect(await code(readRegularFile(fifo))).toBe("ENOTREG");
    expect(await code(readRegularFile(dir))).toBe("ENOTREG");
    expect(await code(readRegularFile(join(dir, "missing")))).toBe("ENOENT");
  });

  it("stops when the signal is aborted", async () => {
    const p = file("abort", "value");
    const ac = new AbortController();
    ac.abort();
    expect(await code(readRegularFile(p, { signal: ac.signal }))).toBe("ABORT_ERR");
  });
});
