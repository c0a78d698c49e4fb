import { mkdtemp, rename, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFileBackend } from "../../../backends/file.js";
import { MAX_TRUST_MS, RACY_MS, Signatures } from "../../../backends/file/signatures.js";
import { silentLogger, type FetchContext, type Secret, type SecretRef } from "../../../src/index.js";

let dir: string;
let offset = 0;
const clock = (): number => Date.now() + offset;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "emissary-file-sig-"));
  offset = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("file signatures", () => {
  it("spare a read only when the file was older than the racy window and has not changed", async () => {
    const p = join(dir, "s");
    await writeFile(p, "one");
    const sigs = new Signatures(clock);
    // Just written: its ctime is within the racy window, so nothing is trusted.
    let l = await sigs.look(p);
    expect(l.trusted).toBe(false);
    sigs.record(p, l, "h1");
    expect((await sigs.look(p)).hash).toBeUndefined();
    // Later (the clock moved past the window): trusted, and reused on the next look.
    offset = RACY_MS + 1000;
    l = await sigs.look(p);
    expect(l.trusted).toBe(true);
    expect(l.hash).toBeUndefined();
    sigs.record(p, l, "h1");
    expect((await sigs.look(p)).hash).toBe("h1");
    // Rewritten with the same size and an mtime set back: ctime still changes, so it is read again.
    const { mtime } = await import("node:fs/promises").then((f) => f.stat(p));
    await writeFile(p, "two");
    await utimes(p, mtime, mtime);
    expect((await sigs.look(p)).hash).toBeUndefined();
  });

  it("are trusted for MAX_TRUST_MS at most, and never for a missing file or an error", async () => {
    const p = join(dir, "s");
    await writeFile(p, "one");
    const sigs = new Signatures(clock);
    offset = RACY_MS + 1000;
    sigs.record(p, await sigs.look(p), "h1");
    expect((await sigs.look(p)).hash).toBe("h1");
    offset += MAX_TRUST_MS;
    expect((await sigs.look(p)).hash).toBeUndefined();
    sigs.record(p, await sigs.look(p), "err:EACCES");
    expect((await sigs.look(p)).hash).toBeUndefined();
    const missing = join(dir, "missing");
    const l = await sigs.look(missing);
    expect(l).toEqual({ trusted: false });
  });
});

describe("file backend refresh with an unchanged file", () => {
  const ctx = (previous?: Secret, fresh = false): FetchContext => ({ signal: new AbortController().signal, logger: silentLogger(), ...(previous ? { previous } : {}), ...(fresh ? { fresh } : {}) });
  const ref = (id: string): SecretRef => ({ backend: "file", id, options: {} });

  it("returns the previous secret itself when the signature is unchanged, and reads again after any change", async () => {
    const p = join(dir, "db.json");
    await writeFile(p, '{"password":"one"}');
    const b = createFileBackend({ config: {}, env: {}, logger: silentLogger() }, { clock });
    offset = RACY_MS + 1000;
    const first = await b.fetch(ref(p), ctx());
    expect(first.value).toBe('{"password":"one"}');
    // Same signature: the very object handed in comes back (no read, no hash).
    expect(await b.fetch(ref(p), ctx(first))).toBe(first);
    // An operator's refresh reads anyway.
    const fresh = await b.fetch(ref(p), ctx(first, true));
    expect(fresh).not.toBe(first);
    expect(fresh.version).toBe(first.version);
    // A previous value with another version is not reused.
    const other = { ...first, version: "h:other" };
    expect(await b.fetch(ref(p), ctx(other))).not.toBe(other);
    // Replaced by rename with the same size: a new inode, read again, new value.
    await writeFile(join(dir, "tmp"), '{"password":"two"}');
    await rename(join(dir, "tmp"), p);
    const second = await b.fetch(ref(p), ctx(first));
    expect(second.value).toBe('{"password":"two"}');
    expect(second.version).not.toBe(first.version);
    expect(second.data).toEqual({ password: "two" });
    // Rewritten in place, same size: its ctime moved, so it is read again.
    await writeFile(p, '{"password":"333"}');
    const third = await b.fetch(ref(p), ctx(second));
    expect(third.value).toBe('{"password":"333"}');
    await b.close?.();
  });
});
