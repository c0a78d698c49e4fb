/**
 * The as-nobody test helper works wherever the clone is: a checkout under a private directory
 * (`mktemp -d` is 0700, so is /root) cannot be entered by uid 65534, so the helper copies what the
 * modules need (package.json, dist/, production dependencies) to a directory it can reach.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { distUrl, runAsNobody, stageForNobody } from "../helpers/as-nobody.js";
import { IN_CI } from "./packaging-tools.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A built project under a 0700 directory, its files 0600 as a clone made under umask 077 has them. */
function privateProject(): string {
  const parent = mkdtempSync(join(tmpdir(), "emissary-private-"));
  dirs.push(parent);
  chmodSync(parent, 0o700);
  const root = join(parent, "clone");
  const write = (rel: string, text: string): void => {
    mkdirSync(join(root, rel, ".."), { recursive: true, mode: 0o700 });
    writeFileSync(join(root, rel), text, { mode: 0o600 });
  };
  write("package.json", JSON.stringify({ name: "p", version: "1.0.0", type: "module", dependencies: { dep: "1.0.0" }, devDependencies: { devdep: "1.0.0" } }));
  write("package-lock.json", JSON.stringify({ lockfileVersion: 3, packages: { "": {}, "node_modules/dep": { version: "1.0.0" }, "node_modules/dep/node_modules/inner": { version: "2.0.0" }, "node_modules/devdep": { version: "1.0.0", dev: true } } }));
  write("dist/src/mod.js", 'import { v } from "dep";\nexport const value = `mod+${v}`;\n');
  write("node_modules/dep/package.json", JSON.stringify({ name: "dep", version: "1.0.0", type: "module", exports: "./index.js" }));
  write("node_modules/dep/index.js", 'import { w } from "inner";\nexport const v = `dep+${w}`;\n');
  write("node_modules/dep/node_modules/inner/package.json", JSON.stringify({ name: "inner", version: "2.0.0", type: "module", exports: "./index.js" }));
  write("node_modules/dep/node_modules/inner/index.js", 'export const w = "inner";\n');
  write("node_modules/devdep/package.json", JSON.stringify({ name: "devdep", version: "1.0.0" }));
  return root;
}

const importAsNobody = (url: string): Promise<unknown> =>
  runAsNobody(`const r = await import(${JSON.stringify(url)}).then((m) => ({ value: m.value }), (e) => ({ code: e.code ?? e.name }));
               console.log(JSON.stringify(r));`);

describe("as-nobody helper", () => {
  const root = process.getuid?.() === 0;

  it("copies a private checkout's dist/ and production dependencies where uid 65534 can import them", async (ctx) => {
    if (!root) {
      if (IN_CI) throw new Error("this test needs root under CI=true");
      process.stdout.write("skipping: not root, cannot run as uid 65534\n");
      return ctx.skip();
    }
    const project = privateProject();
    // As it is, uid 65534 cannot even reach the module (Node reports the EACCES of its stat as not found).
    const direct = (await importAsNobody(pathToFileURL(join(project, "dist/src/mod.js")).href)) as { code?: string };
    expect(["EACCES", "ERR_MODULE_NOT_FOUND"]).toContain(direct.code);

    const staged = stageForNobody(project);
    expect(await importAsNobody(pathToFileURL(join(staged, "dist/src/mod.js")).href)).toEqual({ value: "mod+dep+inner" });
    for (let d = staged; d !== "/"; d = join(d, "..")) expect(statSync(d).mode & 0o005, `${d} is reachable`).toBe(0o005);
    expect(existsSync(join(staged, "node_modules/devdep")), "devDependencies are not copied").toBe(false);
  });

  it("distUrl gives uid 65534 this checkout's built modules, wherever the checkout is", async (ctx) => {
    if (!root) {
      if (IN_CI) throw new Error("this test needs root under CI=true");
      process.stdout.write("skipping: not root, cannot run as uid 65534\n");
      return ctx.skip();
    }
    const r = await runAsNobody(`const m = await import(${JSON.stringify(distUrl("src/index.js"))});
                                 console.log(JSON.stringify({ createEmissary: typeof m.createEmissary }));`);
    expect(r).toEqual({ createEmissary: "function" });
  });
});
