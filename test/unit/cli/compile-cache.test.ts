import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_STATE_DIR, enableCompileCache, isPrivateDir } from "../../../src/cli/compile-cache.js";
import { DEFAULT_STATE_DIR as CONFIG_DEFAULT_STATE_DIR } from "../../../src/config/resolve.js";

/** A stand-in for node:module that records the directory it was asked to use. */
function fakeApi() {
  const calls: (string | undefined)[] = [];
  return { calls, api: { enableCompileCache: (dir?: string) => (calls.push(dir), { status: 1, directory: dir ?? "/node-default" }) } };
}

const uid = process.getuid!();
let base: string;
const saved = { disable: process.env.NODE_DISABLE_COMPILE_CACHE, dir: process.env.NODE_COMPILE_CACHE };
beforeEach(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), "emissary-cc-test-")));
  chmodSync(base, 0o755);
  delete process.env.NODE_DISABLE_COMPILE_CACHE;
  delete process.env.NODE_COMPILE_CACHE;
});
afterEach(() => {
  for (const [k, v] of [["NODE_DISABLE_COMPILE_CACHE", saved.disable], ["NODE_COMPILE_CACHE", saved.dir]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("compile cache directory", () => {
  it("is created 0700 in the temporary directory and handed to Node", () => {
    const { api, calls } = fakeApi();
    const dir = join(base, `emissary-compile-cache-${uid}`);
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBe(dir);
    expect(calls).toEqual([dir]);
    const st = lstatSync(dir);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(uid);
    // A second start reuses it.
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBe(dir);
  });

  it("stays off on a Node without a compile cache (Node 20), creating nothing", () => {
    expect(enableCompileCache({}, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(readdirSync(base)).toEqual([]);
  });

  it("is skipped when the directory others could have written already exists", () => {
    const dir = join(base, `emissary-compile-cache-${uid}`);
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const { api, calls } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(calls).toEqual([]);
    chmodSync(dir, 0o750);
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it("is skipped when the name is a symlink, even to a private directory", () => {
    const target = join(base, "elsewhere");
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, join(base, `emissary-compile-cache-${uid}`));
    const { api, calls } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it("is skipped when the name is a file", () => {
    writeFileSync(join(base, `emissary-compile-cache-${uid}`), "x");
    const { api, calls } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it("is skipped in a parent others can write without the sticky bit (they could swap the directory)", () => {
    chmodSync(base, 0o777);
    const { api, calls } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(calls).toEqual([]);
    chmodSync(base, 0o1777);
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBe(join(base, `emissary-compile-cache-${uid}`));
  });

  it.runIf(uid === 0)("is skipped when another user owns the directory (as root)", () => {
    const dir = join(base, `emissary-compile-cache-${uid}`);
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    expect(isPrivateDir(dir, uid)).toBe(false);
    const { api, calls } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it("honours NODE_DISABLE_COMPILE_CACHE and NODE_COMPILE_CACHE", () => {
    const { api, calls } = fakeApi();
    process.env.NODE_DISABLE_COMPILE_CACHE = "1";
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBeUndefined();
    delete process.env.NODE_DISABLE_COMPILE_CACHE;
    process.env.NODE_COMPILE_CACHE = join(base, "chosen");
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBe("/node-default");
    expect(calls).toEqual([undefined]);
    expect(readdirSync(base)).toEqual([]);
  });

  it("goes into <state dir>/compile-cache when the state directory exists and is private", () => {
    const state = join(base, "state");
    mkdirSync(state, { mode: 0o700 });
    const { api, calls } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: state })).toBe(join(state, "compile-cache"));
    expect(calls).toEqual([join(state, "compile-cache")]);
    expect(lstatSync(join(state, "compile-cache")).mode & 0o777).toBe(0o700);
  });

  it("uses the temporary directory when the state directory is missing (never creating it), off, or not private", () => {
    const tmpCache = join(base, `emissary-compile-cache-${uid}`);
    const { api } = fakeApi();
    expect(enableCompileCache(api, { tmp: base, stateDir: join(base, "missing") })).toBe(tmpCache);
    expect(readdirSync(base)).toEqual([`emissary-compile-cache-${uid}`]);
    expect(enableCompileCache(api, { tmp: base, stateDir: "" })).toBe(tmpCache);
    const open = join(base, "open");
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(enableCompileCache(api, { tmp: base, stateDir: open })).toBe(tmpCache);
    expect(readdirSync(open)).toEqual([]);
  });

  it("knows the config's default state directory", () => {
    expect(DEFAULT_STATE_DIR).toBe(CONFIG_DEFAULT_STATE_DIR);
  });
});
