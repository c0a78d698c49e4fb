/**
 * The state directory on a real file system: created 0700 on the first write (never on a read),
 * entries 0600, refused when a symlink, not owned by emissary's user, writable by group or others
 * or under a parent others can write; corrupt entries ignored with one warning each; reference
 * entries garbage-collected, backend entries not; off with "" and read-only for render.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StateDir } from "../../../src/sources/state.js";
import { captureLog } from "../../fakes/vault-helpers.js";

function base(): string {
  return mkdtempSync(join(tmpdir(), "emissary-state-"));
}

function open(dir: string, extra: { readOnly?: boolean; uid?: number } = {}): { s: StateDir; warnings: () => string[] } {
  const log = captureLog();
  const s = new StateDir({ dir, logger: log.logger, ...extra });
  return { s, warnings: () => log.entries().filter((l) => l.level === 40).map((l) => `${String(l.msg)} ${String(l.reason ?? "")}`) };
}

describe("StateDir", () => {
  it("creates the directory 0700 on the first write only, and keeps entries 0600 as JSON", async () => {
    const dir = join(base(), "lib", "emissary");
    const { s, warnings } = open(dir);
    expect(await s.refs.get("vault:pki/issue/x")).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    expect(s.phase).toBe("closed");
    await s.refs.set("vault:pki/issue/x", { kind: "issued", n: 1 });
    expect(s.phase).toBe("open");
    expect(statSync(dir).mode & 0o7777).toBe(0o700);
    const [file] = readdirSync(dir);
    expect(file).toMatch(/^r-[0-9a-f]{32}\.json$/);
    expect(statSync(join(dir, file!)).mode & 0o7777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, file!), "utf8"))).toMatchObject({ emissary_state: 1, key: "vault:pki/issue/x", value: { kind: "issued", n: 1 } });
    expect(await s.refs.get("vault:pki/issue/x")).toEqual({ kind: "issued", n: 1 });
    // Another instance (a restart) reads it back.
    expect(await open(dir).s.refs.get("vault:pki/issue/x")).toEqual({ kind: "issued", n: 1 });
    expect(warnings()).toEqual([]);
  });

  it("deletes reference entries no template uses, keeps backend entries, and does nothing to a directory that does not exist", async () => {
    const dir = join(base(), "state");
    const { s } = open(dir);
    expect(await s.retain(new Set())).toBe(0);
    expect(existsSync(dir)).toBe(false);
    await s.refs.set("a", 1);
    await s.refs.set("b", 2);
    await s.forBackend("vault").set("approle-secret-id/approle", { secretId: "x" });
    expect(await s.retain(new Set(["b"]))).toBe(1);
    expect(await s.refs.get("a")).toBeUndefined();
    expect(await s.refs.get("b")).toBe(2);
    expect(await s.forBackend("vault").get("approle-secret-id/approle")).toEqual({ secretId: "x" });
    // Backend entries are per backend.
    expect(await s.forBackend("other").get("approle-secret-id/approle")).toBeUndefined();
    await s.refs.delete("b");
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it("ignores a corrupt, truncated or foreign entry with a warning that quotes nothing of it", async () => {
    const dir = join(base(), "state");
    const { s, warnings } = open(dir);
    await s.refs.set("k1", { secret: "TOPSECRET-1" });
    await s.refs.set("k2", { secret: "TOPSECRET-2" });
    const files = readdirSync(dir).map((f) => join(dir, f));
    const k1 = files.find((f) => readFileSync(f, "utf8").includes('"key":"k1"'))!;
    const k2 = files.find((f) => f !== k1)!;
    // k2's file gets k1's (valid) envelope: an entry for another key; k1's is cut short.
    writeFileSync(k2, readFileSync(k1, "utf8"));
    writeFileSync(k1, '{"emissary_state":1,"key":"k1","value":{"secret":"TOPSECRET-1"');
    const again = open(dir);
    expect(await again.s.refs.get("k1")).toBeUndefined();
    expect(await again.s.refs.get("k2")).toBeUndefined();
    expect(again.warnings()).toHaveLength(2);
    expect(again.warnings().join("\n")).not.toContain("TOPSECRET");
    expect(warnings()).toEqual([]);
  });

  it.each([
    ["a symlink", (dir: string) => { const real = join(base(), "real"); mkdirSync(real, { mode: 0o700 }); symlinkSync(real, dir); }, /it is a symlink/],
    ["writable by others", (dir: string) => { mkdirSync(dir); chmodSync(dir, 0o777); }, /writable by others \(mode 0777\)/],
    ["writable by its group", (dir: string) => { mkdirSync(dir); chmodSync(dir, 0o770); }, /writable by its group \(mode 0770\)/],
    ["a file", (dir: string) => writeFileSync(dir, "x"), /not a directory/],
    ["under a parent others can write", (dir: string) => { chmodSync(join(dir, ".."), 0o777); }, /parent .* is writable by others without the sticky bit/],
  ])("refuses a state directory that is %s: one warning, nothing written", async (_what, make, reason) => {
    const dir = join(base(), "state");
    make(dir);
    const { s, warnings } = open(dir);
    await s.refs.set("a", 1);
    await s.refs.set("b", 2);
    expect(await s.refs.get("a")).toBeUndefined();
    expect(s.phase).toBe("refused");
    expect(s.refs.enabled).toBe(false);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(reason);
    if (lstatSync(dir).isDirectory() && !lstatSync(dir).isSymbolicLink()) expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses a directory owned by another user", async () => {
    const dir = join(base(), "state");
    mkdirSync(dir, { mode: 0o700 });
    let uid: number;
    if (process.getuid?.() === 0) {
      chownSync(dir, 65534, 65534);
      uid = 0;
    } else {
      uid = (process.getuid?.() ?? 1000) + 1;
    }
    const { s, warnings } = open(dir, { uid });
    await s.refs.set("a", 1);
    expect(warnings()[0]).toMatch(/owned by uid \d+, not by emissary's user/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('"" is off: nothing read or written, one warning when something would have been kept', async () => {
    const { s, warnings } = open("");
    expect(s.phase).toBe("off");
    expect(s.refs.enabled).toBe(false);
    await s.refs.set("a", 1);
    await s.refs.set("b", 1);
    expect(await s.refs.get("a")).toBeUndefined();
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatch(/state directory is off/);
  });

  it("read-only (render) reads what is kept, and never writes, deletes or creates", async () => {
    const dir = join(base(), "state");
    await open(dir).s.refs.set("a", 1);
    const ro = open(dir, { readOnly: true }).s;
    expect(await ro.refs.get("a")).toBe(1);
    await ro.refs.set("b", 2);
    await ro.refs.delete("a");
    expect(await ro.retain(new Set())).toBe(0);
    expect(readdirSync(dir)).toHaveLength(1);
    const missing = open(join(base(), "none"), { readOnly: true }).s;
    await missing.refs.set("a", 1);
    expect(await missing.refs.get("a")).toBeUndefined();
  });
});
