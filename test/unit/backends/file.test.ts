import { chmod, mkdir, mkdtemp, rename, rm, symlink, truncate, appendFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import createDefault, { FILE_LINK_POLL_MS, FILE_REFRESH_MS, createFileBackend, type FileBackendOptions } from "../../../backends/file.js";
import { ConfigError, FatalError, SecretNotFoundError, extractValue, parseRef, silentLogger, type Backend, type FetchContext, type SecretRef } from "../../../src/index.js";
import { distUrl, runAsNobody } from "../../helpers/as-nobody.js";
import { canary } from "../../helpers/canary.js";

const ctx = (): FetchContext => ({ signal: new AbortController().signal, logger: silentLogger() });
const ref = (id: string): SecretRef => ({ backend: "file", id, options: {} });
const WAIT_MS = 10_000;

/** Counts onChange calls and lets a test wait for the n-th one. */
function recorder() {
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    fn: () => {
      count++;
      for (const w of waiters.filter((w) => count >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    get count() {
      return count;
    },
    waitFor(n: number): Promise<void> {
      if (count >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`onChange was called ${count} times; waited ${WAIT_MS} ms for call ${n}`)), WAIT_MS);
        waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
  };
}
type Recorder = ReturnType<typeof recorder>;

/** Waits for onChange calls until a fetch returns `expected` (a truncate then a write may take two). */
async function untilValue(b: Backend, r: SecretRef, rec: Recorder, expected: string): Promise<void> {
  for (let n = 1; n < 50; n++) {
    await rec.waitFor(n);
    const v = await b.fetch(r, ctx()).then((s) => s.value, () => undefined);
    if (v === expected) return;
  }
  throw new Error("the value never became the expected one");
}

let dir: string;
let backends: Backend[] = [];
const make = (opts: FileBackendOptions = {}): Backend => {
  const b = createFileBackend({ config: {}, env: {}, logger: silentLogger() }, { dirPollMs: 50, ...opts });
  backends.push(b);
  return b;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "emissary-file-"));
});
afterEach(async () => {
  for (const b of backends) await b.close?.();
  backends = [];
  await rm(dir, { recursive: true, force: true });
});

describe("file backend: fetch", () => {
  it("is named file, default-exports its factory, and refreshes every 5 minutes as a backstop", () => {
    expect(createDefault).toBe(createFileBackend);
    const b = make();
    expect(b.name).toBe("file");
    expect(b.defaultRefreshMs).toBe(FILE_REFRESH_MS);
    expect(FILE_REFRESH_MS).toBe(5 * 60_000);
  });

  it("reads the file text with a content version that does not reveal it", async () => {
    const value = canary();
    const p = join(dir, "secret");
    await writeFile(p, value + "\n");
    const b = make();
    const s = await b.fetch(ref(p), ctx());
    expect(s.value).toBe(value + "\n");
    expect(s.version).toMatch(/^h:[0-9a-f]+$/);
    expect(s.data).toBeUndefined();
    await writeFile(p, value + "\n");
    expect((await b.fetch(ref(p), ctx())).version).toBe(s.version);
    await writeFile(p, "other");
    expect((await b.fetch(ref(p), ctx())).version).not.toBe(s.version);
  });

  it("throws SecretNotFoundError naming the path for a missing file or directory", async () => {
    const b = make();
    for (const p of [join(dir, "nope"), join(dir, "no-dir", "nope")]) {
      const err = await b.fetch(ref(p), ctx()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SecretNotFoundError);
      expect((err as Error).message).toContain(p);
    }
  });

  it("throws FatalError for a directory", async () => {
    await expect(make().fetch(ref(dir), ctx())).rejects.toBeInstanceOf(FatalError);
  });

  it("throws FatalError naming the path when the file is not readable (EACCES; as root: checked as uid 65534)", async () => {
    const p = join(dir, "locked");
    await writeFile(p, canary());
    await chmod(p, 0o000);
    let err: { name: string; message: string };
    if (process.getuid?.() === 0) {
      // Root reads mode-000 files: drop to an unprivileged user for this check.
      await chmod(dir, 0o755);
      err = (await runAsNobody(
        `import createFileBackend from ${JSON.stringify(distUrl("backends/file.js"))};
         import { silentLogger } from ${JSON.stringify(distUrl("src/index.js"))};
         const b = createFileBackend({ config: {}, env: {}, logger: silentLogger() });
         const r = await b.fetch({ backend: "file", id: ${JSON.stringify(p)}, options: {} }, { signal: new AbortController().signal, logger: silentLogger() })
           .then(() => ({ name: "resolved", message: "" }), (e) => ({ name: e.name, message: e.message }));
         await b.close?.();
         console.log(JSON.stringify(r));`,
      )) as { name: string; message: string };
      expect(err.name).toBe("FatalError");
    } else {
      const e = await make().fetch(ref(p), ctx()).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FatalError);
      err = e as Error;
    }
    expect(err.message).toContain(p);
    expect(err.message).not.toContain("CANARY");
  });

  it("parses .json, .yaml and .yml files and JSON-looking content so #field works", async () => {
    const b = make();
    const pw = canary("pw");
    const cases: [string, string][] = [
      ["a.json", JSON.stringify({ user: "app", password: pw, nested: { k: "v" } })],
      ["a.yaml", `user: app\npassword: ${pw}\nnested:\n  k: v\n`],
      ["a.yml", `user: app\npassword: ${pw}\nnested: {k: v}\n`],
      ["plain", ` {"user": "app", "password": "${pw}", "nested": {"k": "v"}}\n`],
    ];
    for (const [name, text] of cases) {
      const p = join(dir, name);
      await writeFile(p, text);
      const s = await b.fetch(ref(p), ctx());
      expect(s.value).toBe(text);
      expect(s.data, name).toEqual({ user: "app", password: pw, nested: { k: "v" } });
      expect(extractValue(parseRef(`file:${p}#password`), s)).toEqual({ kind: "text", text: pw });
      expect(extractValue(parseRef(`file:${p}#/nested/k`), s)).toEqual({ kind: "text", text: "v" });
    }
  });

  it("keeps the text and sets no data for malformed or scalar JSON/YAML, without throwing", async () => {
    const b = make();
    const cases: [string, string][] = [
      ["bad.json", `{"password": "${canary()}"`],
      ["bad.yaml", "a: [1, 2\n"],
      ["dup.yaml", "a: 1\na: 2\n"],
      ["bad2.yml", 'a: "unterminated\n'],
      ["scalar.yaml", "just text\n"],
      ["plain", "{not json"],
    ];
    for (const [name, text] of cases) {
      const p = join(dir, name);
      await writeFile(p, text);
      const s = await b.fetch(ref(p), ctx());
      expect(s.value).toBe(text);
      expect(s.data, name).toBeUndefined();
    }
  });

  it("resolves relative paths against the template's directory", () => {
    const b = make();
    expect(b.resolve!(ref("secrets/db"), { baseDir: "/etc/emissary" }).id).toBe("/etc/emissary/secrets/db");
    expect(b.resolve!(ref("../db"), { baseDir: "/etc/emissary" }).id).toBe("/etc/db");
    expect(b.resolve!(ref("/run/secret"), { baseDir: "/etc/emissary" }).id).toBe("/run/secret");
  });

  it("validates: rejects options and NUL bytes", () => {
    const b = make();
    expect(() => b.validate!({ backend: "file", id: "/x", options: { version: 2 } })).toThrow(FatalError);
    expect(() => b.validate!(ref("/x\0y"))).toThrow(FatalError);
    expect(() => b.validate!(ref("/x"))).not.toThrow();
  });

  it("rejects config keys, naming them", () => {
    expect(() => createFileBackend({ config: { watch: true }, env: {}, logger: silentLogger() })).toThrow(ConfigError);
    expect(() => createFileBackend({ config: { watch: true }, env: {}, logger: silentLogger() })).toThrow("backends.file.watch");
  });
});

describe("file backend: watch", () => {
  it("notices an in-place write", async () => {
    const p = join(dir, "secret");
    await writeFile(p, "one");
    const b = make();
    await b.fetch(ref(p), ctx());
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await writeFile(p, "two");
    await untilValue(b, ref(p), rec, "two");
  });

  it("notices a file renamed over the secret (editors, atomic writers)", async () => {
    const p = join(dir, "secret");
    await writeFile(p, "one");
    const b = make();
    await b.fetch(ref(p), ctx());
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await writeFile(join(dir, ".secret.tmp"), "two");
    await rename(join(dir, ".secret.tmp"), p);
    await untilValue(b, ref(p), rec, "two");
  });

  it("notices a Kubernetes-style ..data symlink swap", async () => {
    await mkdir(join(dir, "..2026_01"));
    await writeFile(join(dir, "..2026_01", "secret"), "one");
    await symlink("..2026_01", join(dir, "..data"));
    await symlink(join("..data", "secret"), join(dir, "secret"));
    const p = join(dir, "secret");
    const b = make();
    expect((await b.fetch(ref(p), ctx())).value).toBe("one");
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    // What the kubelet does: new timestamped dir, new symlink, renamed over ..data, old dir removed.
    await mkdir(join(dir, "..2026_02"));
    await writeFile(join(dir, "..2026_02", "secret"), "two");
    await symlink("..2026_02", join(dir, "..data_tmp"));
    await rename(join(dir, "..data_tmp"), join(dir, "..data"));
    await rm(join(dir, "..2026_01"), { recursive: true });
    await untilValue(b, ref(p), rec, "two");
  });

  it("notices an in-place write at a symlink's target in an unwatched directory, by looking every FILE_LINK_POLL_MS", async () => {
    expect(FILE_LINK_POLL_MS).toBe(60_000);
    const elsewhere = join(dir, "elsewhere");
    await mkdir(join(dir, "watched"));
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, "target"), "one");
    const p = join(dir, "watched", "secret");
    await symlink(join(elsewhere, "target"), p);
    const b = make({ linkPollMs: 100 });
    expect((await b.fetch(ref(p), ctx())).value).toBe("one");
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await new Promise((r) => setTimeout(r, 50));
    // No event reaches the watched directory: only the periodic look can see this.
    await writeFile(join(elsewhere, "target"), "two");
    await untilValue(b, ref(p), rec, "two");
  });

  it("notices truncate then write", async () => {
    const p = join(dir, "secret");
    await writeFile(p, "one");
    const b = make();
    await b.fetch(ref(p), ctx());
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await truncate(p, 0);
    await appendFile(p, "two");
    await untilValue(b, ref(p), rec, "two");
  });

  it("does not call onChange for an identical rewrite", async () => {
    const p = join(dir, "secret");
    const marker = join(dir, "marker");
    await writeFile(p, "same");
    await writeFile(marker, "m1");
    const b = make();
    await b.fetch(ref(p), ctx());
    await b.fetch(ref(marker), ctx());
    const rec = recorder();
    const mrec = recorder();
    b.watch!(ref(p), rec.fn);
    b.watch!(ref(marker), mrec.fn);
    await writeFile(p, "same");
    await writeFile(join(dir, ".tmp"), "same");
    await rename(join(dir, ".tmp"), p);
    // The marker is checked in the same pass as the secret, after the rewrites: once it fires,
    // the rewrites have been looked at.
    await writeFile(marker, "m2");
    await mrec.waitFor(1);
    expect(rec.count).toBe(0);
  });

  it("a new instance watching with the value the caller holds reports a change made before it watched (a reload)", async () => {
    const p = join(dir, "secret");
    const marker = join(dir, "marker");
    await writeFile(p, "v1");
    await writeFile(marker, "m1");
    const before = await make().fetch(ref(p), ctx()); // the old instance's fetch
    await writeFile(p, "v2"); // changed while the watch is being replaced
    const b = make(); // the new instance, after the reload: it never fetched
    const rec = recorder();
    b.watch!(ref(p), rec.fn, { previous: before });
    await untilValue(b, ref(p), rec, "v2");
    // And with the value it holds unchanged, nothing is reported.
    const held = await b.fetch(ref(p), ctx());
    const c = make();
    await c.fetch(ref(marker), ctx());
    const crec = recorder();
    const mrec = recorder();
    c.watch!(ref(p), crec.fn, { previous: held });
    c.watch!(ref(marker), mrec.fn);
    await writeFile(marker, "m2");
    await mrec.waitFor(1);
    expect(crec.count).toBe(0);
  });

  it("notices a missing file being created", async () => {
    const p = join(dir, "later");
    const b = make();
    await expect(b.fetch(ref(p), ctx())).rejects.toBeInstanceOf(SecretNotFoundError);
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await writeFile(p, "here");
    await untilValue(b, ref(p), rec, "here");
  });

  it("notices a file whose directory does not exist yet, and one whose directory is recreated", async () => {
    const sub = join(dir, "a", "b");
    const p = join(sub, "secret");
    const b = make();
    await expect(b.fetch(ref(p), ctx())).rejects.toBeInstanceOf(SecretNotFoundError);
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await mkdir(sub, { recursive: true });
    await writeFile(p, "one");
    await untilValue(b, ref(p), rec, "one");
    await rm(join(dir, "a"), { recursive: true });
    await mkdir(sub, { recursive: true });
    await writeFile(p, "two");
    await untilValue(b, ref(p), rec, "two");
  });

  it("shares a directory watcher between files, and unsubscribing one keeps the others", async () => {
    const a = join(dir, "a");
    const c = join(dir, "c");
    await writeFile(a, "a1");
    await writeFile(c, "c1");
    const b = make();
    await b.fetch(ref(a), ctx());
    await b.fetch(ref(c), ctx());
    const ra = recorder();
    const rc = recorder();
    const offA = b.watch!(ref(a), ra.fn);
    b.watch!(ref(c), rc.fn);
    await writeFile(a, "a2");
    await untilValue(b, ref(a), ra, "a2");
    offA();
    offA();
    const before = ra.count;
    await writeFile(a, "a3");
    await writeFile(c, "c2");
    await untilValue(b, ref(c), rc, "c2");
    expect(ra.count).toBe(before);
  });

  it("lets two subscribers of one file both hear about a change", async () => {
    const p = join(dir, "secret");
    await writeFile(p, "one");
    const b = make();
    const r1 = recorder();
    const r2 = recorder();
    b.watch!(ref(p), r1.fn);
    b.watch!(ref(p), r2.fn);
    // The secret was never fetched, so the watch reads its baseline itself. The marker (whose
    // baseline is known from a fetch) is read in the same pass: once it fires, that has happened.
    const marker = join(dir, "marker");
    await expect(b.fetch(ref(marker), ctx())).rejects.toBeInstanceOf(SecretNotFoundError);
    const mrec = recorder();
    b.watch!(ref(marker), mrec.fn);
    await writeFile(marker, "m");
    await mrec.waitFor(1);
    await writeFile(p, "two");
    await r1.waitFor(1);
    await r2.waitFor(1);
  });

  it("stops calling after close()", async () => {
    const p = join(dir, "secret");
    await writeFile(p, "one");
    const b = make();
    await b.fetch(ref(p), ctx());
    const rec = recorder();
    b.watch!(ref(p), rec.fn);
    await b.close!();
    await b.close!();
    // A second backend watching the same file proves the change was visible.
    const other = make();
    await other.fetch(ref(p), ctx());
    const orec = recorder();
    other.watch!(ref(p), orec.fn);
    await writeFile(p, "two");
    await untilValue(other, ref(p), orec, "two");
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.count).toBe(0);
    // watch after close is inert, not an error
    expect(typeof b.watch!(ref(p), rec.fn)).toBe("function");
  });
});
