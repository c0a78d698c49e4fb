/**
 * What `npm pack` ships and what the container image holds, without a container engine. The
 * package is packed from a clean copy of the repository (its files, no dist/), as on a fresh
 * clone: the prepack script must build it. Then the Dockerfile's runtime steps in a temporary
 * directory — the unpacked package plus package-lock.json, `npm ci --omit=dev` — and the
 * image's entrypoint command run on a template; and the npm side of the same tarball installed
 * into a consumer project: `npx emissary --version`, `import "emissaryd"` and
 * `"emissaryd/testing"`, a custom backend module importing "emissaryd", and the types under
 * nodenext.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { ROOT, execForm, keyValues, parseDockerfile } from "./packaging-helpers.js";

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Where every line a daemon prints is copied for the suite's canary scan. */
function logFile(): string | undefined {
  const dir = process.env.EMISSARY_TEST_OUTPUT_DIR;
  return dir ? join(dir, `packaging-${Date.now()}-${randomBytes(4).toString("hex")}.log`) : undefined;
}

/** Runs a command to completion. `scan`: copy its output to the canary scan. */
function run(cmd: string, args: readonly string[], opts: SpawnOptions & { scan?: boolean; timeoutMs?: number } = {}): Promise<Result> & { kill(sig?: NodeJS.Signals): void } {
  const proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  const file = opts.scan ? logFile() : undefined;
  let stdout = "";
  let stderr = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    if (file) appendFileSync(file, d);
  });
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
    if (file) appendFileSync(file, d);
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 240_000);
  const p = new Promise<Result>((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  }) as Promise<Result> & { kill(sig?: NodeJS.Signals): void };
  p.kill = (sig = "SIGTERM") => void proc.kill(sig);
  return p;
}

/** Polls until `check` returns a value (or throws after `timeoutMs`). */
async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const failed = (what: string, r: Result): string => `${what} exited ${r.code ?? r.signal}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;

/** PATH with this test's node first, so `#!/usr/bin/env node` bins run on the same Node. */
const PATH = [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter);
/** A clean environment: no EMISSARY_/VAULT_/AWS_ settings leak in from the developer's shell. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(EMISSARY_|VAULT_|AWS_|CONSUL_)/.test(k)) out[k] = v;
  return { ...out, PATH, AWS_EC2_METADATA_DISABLED: "true", ...extra };
}

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
};
const dockerfile = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
const finalStage = dockerfile.stages.at(-1)!;

let tmp: string;
/** The clean copy the package is packed from. */
let src: string;
/** /opt/emissary of the image: the unpacked package with its locked production dependencies. */
let opt: string;
/** /usr/local/bin/emissary of the image. */
let bin: string;
/** A project that installed the tarball as any npm user would. */
let consumer: string;
let tarball: string;
let packed: string[];

/** The repository's files as a fresh clone has them (tracked and new, not ignored): no dist/. */
async function cleanCopy(to: string): Promise<void> {
  const ls = await run("git", ["-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { env: env() });
  if (ls.code !== 0) throw new Error(failed("git ls-files", ls));
  for (const f of ls.stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(ROOT, f))) continue; // deleted in the working tree
    mkdirSync(dirname(join(to, f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(to, f));
  }
  // The build needs the devDependencies `npm ci` installed (typescript); share them.
  symlinkSync(join(ROOT, "node_modules"), join(to, "node_modules"));
}

/** Every package `npm ci --omit=dev` must install: the lockfile's non-dev entries, by path. */
function lockedProduction(lockfile: string): Map<string, string> {
  const lock = JSON.parse(readFileSync(lockfile, "utf8")) as { packages: Record<string, { version?: string; dev?: boolean; link?: boolean }> };
  const out = new Map<string, string>();
  for (const [path, p] of Object.entries(lock.packages)) if (path !== "" && !p.dev && !p.link) out.set(path, p.version!);
  return out;
}

/** Every installed package under `root`/node_modules (nested ones too), by lockfile path. */
function installed(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (nm: string): void => {
    if (!existsSync(join(root, nm))) return;
    for (const name of readdirSync(join(root, nm))) {
      if (name.startsWith(".")) continue;
      const names = name.startsWith("@") ? readdirSync(join(root, nm, name)).map((n) => `${name}/${n}`) : [name];
      for (const n of names) {
        const path = `${nm}/${n}`;
        const pj = join(root, path, "package.json");
        if (!existsSync(pj)) continue;
        out.set(path, (JSON.parse(readFileSync(pj, "utf8")) as { version: string }).version);
        walk(`${path}/node_modules`);
      }
    }
  };
  walk("node_modules");
  return out;
}

beforeAll(async () => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), "emissary-image-")));
  const leftovers = (): string[] => readdirSync(ROOT).filter((f) => f.endsWith(".tgz")).sort();
  const before = leftovers();
  src = join(tmp, "src");
  await cleanCopy(src);
  expect(existsSync(join(src, "dist")), "the clean copy has no dist/").toBe(false);
  // Build stage: `npm pack --pack-destination /pkg` (prepack builds), then the tarball unpacked.
  const pkgDir = join(tmp, "pkg");
  mkdirSync(pkgDir);
  const pack = await run("npm", ["pack", "--json", "--pack-destination", pkgDir], { cwd: src, env: env() });
  if (pack.code !== 0) throw new Error(failed("npm pack", pack));
  const info = (JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  packed = info.files.map((f) => f.path);
  tarball = join(pkgDir, info.filename);
  expect(leftovers(), "packing leaves nothing in the repository").toEqual(before);
  const untar = await run("tar", ["-xzf", tarball, "-C", pkgDir]);
  if (untar.code !== 0) throw new Error(failed("tar", untar));

  // Runtime stage: WORKDIR /opt/emissary, COPY the package and the lockfile, npm ci --omit=dev.
  opt = join(tmp, "opt/emissary");
  mkdirSync(dirname(opt), { recursive: true });
  cpSync(join(pkgDir, "package"), opt, { recursive: true });
  copyFileSync(join(src, "package-lock.json"), join(opt, "package-lock.json"));
  const ci = await run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: opt, env: env() });
  if (ci.code !== 0) throw new Error(failed("npm ci --omit=dev", ci));
  chmodSync(join(opt, "dist/src/cli.js"), 0o755);
  bin = join(tmp, "usr/local/bin/emissary");
  mkdirSync(dirname(bin), { recursive: true });
  symlinkSync(join(opt, "dist/src/cli.js"), bin);
  // /node_modules/emissaryd -> /opt/emissary: here <tmp>/node_modules/emissaryd.
  mkdirSync(join(tmp, "node_modules"));
  symlinkSync(opt, join(tmp, "node_modules/emissaryd"));

  // An npm user's project: the tarball installed as a dependency.
  consumer = join(tmp, "consumer");
  mkdirSync(consumer);
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
  const install = await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], { cwd: consumer, env: env() });
  if (install.code !== 0) throw new Error(failed("npm install", install));
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("npm pack of a clean copy (prepack builds dist/)", () => {
  it("holds dist/, the type declarations, README and LICENSE — and no tests or TypeScript sources", () => {
    for (const f of ["package.json", "README.md", "LICENSE", "dist/src/cli.js", "dist/src/index.js", "dist/src/index.d.ts"]) expect(packed).toContain(f);
    for (const b of ["file", "env", "http", "awssm", "ssm", "vault"]) expect(packed).toContain(`dist/backends/${b}.js`);
    // Every export target ships, types included.
    for (const target of Object.values(pkg.exports).flatMap((t) => (typeof t === "string" ? [t] : Object.values(t)))) {
      expect(packed, `exports target ${target}`).toContain(target.replace(/^\.\//, ""));
    }
    for (const f of packed) {
      expect(f === "package.json" || f === "README.md" || f === "LICENSE" || f.startsWith("dist/src/") || f.startsWith("dist/backends/"), `unexpected file in the package: ${f}`).toBe(true);
      expect(f, `test file in the package: ${f}`).not.toMatch(/(^|\/)(test|tests|fakes|fixtures)\/|\.test\.|\.spec\./);
      expect(f.endsWith(".ts") && !f.endsWith(".d.ts"), `TypeScript source in the package: ${f}`).toBe(false);
    }
    // prepack built only what the sources hold: each .js has its source.
    for (const f of packed.filter((x) => x.endsWith(".js"))) expect(existsSync(join(src, f.replace(/^dist\//, "").replace(/\.js$/, ".ts"))), `${f} has no source`).toBe(true);
  });
});

describe("an npm user installing the tarball", () => {
  it("`npx emissary --version` prints the package version", async () => {
    const npx = await run("npx", ["--no", "--", "emissary", "--version"], { cwd: consumer, env: env() });
    expect(npx.code, failed("npx emissary --version", npx)).toBe(0);
    expect(npx.stdout).toContain(pkg.version);
  });

  it('imports "emissaryd" and "emissaryd/testing"', async () => {
    const code = `
      const m = await import("emissaryd");
      const t = await import("emissaryd/testing");
      console.log(JSON.stringify({ createEmissary: typeof m.createEmissary, SecretNotFoundError: typeof m.SecretNotFoundError, assertBackendConformance: typeof t.assertBackendConformance }));`;
    const r = await run(process.execPath, ["--input-type=module", "-e", code], { cwd: consumer, env: env() });
    expect(r.code, failed("node -e import", r)).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ createEmissary: "function", SecretNotFoundError: "function", assertBackendConformance: "function" });
  });

  it('type-checks `import { createEmissary } from "emissaryd"` under moduleResolution nodenext', async () => {
    writeFileSync(
      join(consumer, "consumer.mts"),
      `import { createEmissary, type Backend, SecretNotFoundError, TransientError, FatalError } from "emissaryd";
import { assertBackendConformance } from "emissaryd/testing";

const consul: Backend = {
  name: "consul",
  async fetch(ref, { signal }) {
    if (signal.aborted) throw new TransientError("aborted");
    if (ref.id === "denied") throw new FatalError("permission denied");
    if (ref.id === "app/db") return { value: "v", version: "1" };
    throw new SecretNotFoundError(\`\${ref.id}: not found\`);
  },
};
const emissary = await createEmissary({ templates: "/etc/emissary", backends: [consul] });
emissary.on("render", (e) => console.log(e.template, e.dest));
await emissary.start();
await emissary.stop();
export const check: typeof assertBackendConformance = assertBackendConformance;
// @ts-expect-error the types are real: a Backend needs fetch
export const broken: Backend = { name: "x" };
`,
    );
    writeFileSync(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ["node"],
          typeRoots: [join(ROOT, "node_modules/@types")],
        },
        files: ["consumer.mts"],
      }),
    );
    const r = await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", consumer], { cwd: consumer, env: env() });
    expect(r.code, failed("tsc", r)).toBe(0);
  });
});

describe("the image's install step (the package + package-lock.json, npm ci --omit=dev)", () => {
  it("installs exactly the lockfile's production dependencies, at the locked versions, and no devDependency", () => {
    const want = lockedProduction(join(src, "package-lock.json"));
    const have = installed(opt);
    expect(want.size).toBeGreaterThan(10);
    expect([...have.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [path, version] of want) expect(have.get(path), path).toBe(version);
    for (const dev of Object.keys(pkg.devDependencies)) expect(existsSync(join(opt, "node_modules", dev)), `devDependency ${dev} was installed`).toBe(false);
    expect(existsSync(join(opt, "dist/src/index.d.ts"))).toBe(true);
    expect(existsSync(join(opt, "test"))).toBe(false);
    expect(existsSync(join(opt, "src"))).toBe(false);
    expect(readFileSync(join(opt, "dist/src/cli.js"), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it("negative check: npm ci refuses a lockfile that does not match package.json", async () => {
    const bad = join(tmp, "bad-lock");
    cpSync(join(tmp, "pkg/package"), bad, { recursive: true });
    const lock = JSON.parse(readFileSync(join(src, "package-lock.json"), "utf8")) as { packages: Record<string, { dependencies?: Record<string, string> }> };
    delete lock.packages[""]!.dependencies!.yaml;
    delete lock.packages["node_modules/yaml"];
    writeFileSync(join(bad, "package-lock.json"), JSON.stringify(lock));
    const r = await run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: bad, env: env() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/in sync|package-lock/i);
  });

  it("`emissary --version` (the /usr/local/bin link) prints the package version", async () => {
    const direct = await run(bin, ["--version"], { cwd: "/", env: env() });
    expect(direct.code, failed("emissary --version", direct)).toBe(0);
    expect(direct.stdout).toContain(pkg.version);
  });

  it("runs the image's ENTRYPOINT + CMD on a template: renders, runs the reload command through /bin/sh, stops cleanly on SIGTERM", async () => {
    const entry = [...execForm(finalStage, "ENTRYPOINT"), ...execForm(finalStage, "CMD")];
    expect(entry.slice(0, 3)).toEqual(["/sbin/tini", "--", "emissary"]);
    const imageEnv = Object.fromEntries(keyValues(finalStage, "ENV"));
    const work = join(tmp, "entrypoint");
    const tpl = join(work, "templates");
    mkdirSync(tpl, { recursive: true });
    const secret = canary("image");
    const dest = join(work, "out/app.conf");
    const marker = join(work, "reloaded");
    writeFileSync(
      join(tpl, "app.tpl"),
      ["---", `dest: ${dest}`, "mode: 0640", `command: ["/bin/sh", "-c", "echo reloaded >> ${marker}"]`, "secrets:", "  password: env:APP_PASSWORD", "---", "password={{password}}", ""].join("\n"),
    );
    // tini is PID 1 in the image; here emissary runs directly, with the image's environment.
    const daemon = run(bin, entry.slice(3), { cwd: "/", env: env({ ...imageEnv, EMISSARY_TPL_DIR: tpl, APP_PASSWORD: secret }), scan: true, timeoutMs: 120_000 });
    try {
      const text = await waitFor("the rendered file", () => (existsSync(dest) ? readFileSync(dest, "utf8") : undefined));
      expect(text).toBe(`password=${secret}\n`);
      expect(statSync(dest).mode & 0o777).toBe(0o640);
      await waitFor("the reload command", () => (existsSync(marker) ? true : undefined));
    } finally {
      daemon.kill("SIGTERM");
    }
    const r = await daemon;
    expect(r.code, failed("emissary run", r)).toBe(0);
    const logs = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.some((l) => l.template === join(tpl, "app.tpl") && l.dest === dest)).toBe(true);
  });

  it("loads a custom backend module that imports emissaryd (the Consul KV example)", async () => {
    // Compile the example against the installed package, as a user's module would be.
    // A module outside the package finds "emissaryd" through <tmp>/node_modules (/node_modules in the image).
    const modules = join(tmp, "etc/emissary/modules");
    const tsc = await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "examples/custom-backend"), "--outDir", modules], { cwd: ROOT, env: env() });
    expect(tsc.code, failed("tsc", tsc)).toBe(0);
    const secret = canary("consul");
    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith("/v1/kv/app/db?") && req.headers["x-consul-token"] === "consul-acl-token") {
        res.writeHead(200, { "X-Consul-Index": "42" }).end(JSON.stringify({ password: secret }));
      } else res.writeHead(req.headers["x-consul-token"] ? 404 : 403).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const work = join(tmp, "custom");
      const tpl = join(work, "templates");
      mkdirSync(tpl, { recursive: true });
      const dest = join(work, "out/db.conf");
      writeFileSync(join(tpl, "db.tpl"), ["---", `dest: ${dest}`, "secrets:", "  password: consul:app/db#password", "---", "db_password = {{password}}", ""].join("\n"));
      const r = await run(bin, ["once", "--templates", tpl, "--timeout", "60s", "--backend-module", join(modules, "consul-kv.js")], {
        cwd: work,
        env: env({ CONSUL_HTTP_ADDR: `127.0.0.1:${(server.address() as AddressInfo).port}`, CONSUL_HTTP_TOKEN: "consul-acl-token" }),
        scan: true,
      });
      expect(r.code, failed("emissary once", r)).toBe(0);
      expect(readFileSync(dest, "utf8")).toBe(`db_password = ${secret}\n`);
      expect(r.stdout + r.stderr).not.toContain("consul-acl-token");
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
