/**
 * The CLI's use of Node's compile cache, with the real Node running the tests: on Node 22.1+ the
 * cache lands in a private 0700 directory under TMPDIR; a directory others can write is never
 * used (code read from it would run as root); Node 20 has no cache and nothing is created.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import * as nodeModule from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runEmissary, tmpDir } from "../helpers/e2e.js";

const hasCache = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === "function";
const uid = process.getuid!();

function setup(): { base: string; templates: string; env: Record<string, string | undefined> } {
  const base = tmpDir("emissary-cc-");
  chmodSync(base, 0o755);
  const templates = join(base, "templates");
  mkdirSync(templates);
  writeFileSync(join(templates, "a.tpl"), `---\ndest: ${join(base, "out.conf")}\nsecrets:\n  s: "env:EMISSARY_CC_TEST"\n---\n{{s}}\n`);
  return { base, templates, env: { TMPDIR: base, EMISSARY_STATE_DIR: "", NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined } };
}

/** Every file below dir (the cache is a directory per Node version with one file per module). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

describe(`compile cache (node ${process.version}: ${hasCache ? "has one" : "has none"})`, () => {
  it(hasCache ? "is written to <TMPDIR>/emissary-compile-cache-<uid>, created 0700" : "is off: nothing is created", async () => {
    const { base, templates, env } = setup();
    const res = await runEmissary(["check", "--templates", templates], { env });
    expect(res.code, res.stderr).toBe(0);
    const dir = join(base, `emissary-compile-cache-${uid}`);
    if (!hasCache) {
      expect(readdirSync(base).sort()).toEqual(["templates"]);
      return;
    }
    const st = lstatSync(dir);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(uid);
    expect(filesUnder(dir).length).toBeGreaterThan(0);
  });

  it("never uses a directory of that name that others can write", async () => {
    const { base, templates, env } = setup();
    const dir = join(base, `emissary-compile-cache-${uid}`);
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const res = await runEmissary(["check", "--templates", templates], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(filesUnder(dir)).toEqual([]);
    expect(lstatSync(dir).mode & 0o777).toBe(0o777);
  });

  it(hasCache ? "goes into <state dir>/compile-cache when the state directory exists and is private" : "is off with a state directory too", async () => {
    const { base, templates, env } = setup();
    const state = join(base, "state");
    mkdirSync(state, { mode: 0o700 });
    const res = await runEmissary(["check", "--templates", templates, "--state-dir", state], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(readdirSync(base).sort()).toEqual(["state", "templates"]);
    if (!hasCache) {
      expect(readdirSync(state)).toEqual([]);
      return;
    }
    expect(readdirSync(state)).toEqual(["compile-cache"]);
    expect(lstatSync(join(state, "compile-cache")).mode & 0o777).toBe(0o700);
    expect(filesUnder(join(state, "compile-cache")).length).toBeGreaterThan(0);
  });
});
