/**
 * What the container image would hold, without a container engine: the Dockerfile's own steps
 * in a temporary directory — `npm pack`, then the tarball installed with production dependencies
 * only into an empty directory — and the image's entrypoint command run on a template. Also the
 * npm side of the same tarball: `npx emissary --version`, a custom backend module importing
 * "emissaryd", and `import { createEmissary } from "emissaryd"` type-checked under nodenext.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
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
let opt: string;
let bin: string;
let packed: string[];

beforeAll(async () => {
  if (!existsSync(join(ROOT, "dist/src/cli.js"))) throw new Error("dist/src/cli.js is missing: run `npm run build` first (npm test does)");
  tmp = realpathSync(mkdtempSync(join(tmpdir(), "emissary-image-")));
  // What `npm pack` could leave behind in the repository (other files may come and go meanwhile).
  const leftovers = (): string[] => readdirSync(ROOT).filter((f) => f.endsWith(".tgz")).sort();
  const before = leftovers();
  // Build stage: `npm pack --pack-destination /pkg`.
  mkdirSync(join(tmp, "pkg"));
  const pack = await run("npm", ["pack", "--json", "--pack-destination", join(tmp, "pkg")], { cwd: ROOT, env: env() });
  if (pack.code !== 0) throw new Error(failed("npm pack", pack));
  const info = (JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  packed = info.files.map((f) => f.path);
  // The pack must leave nothing behind in the repository.
  expect(leftovers()).toEqual(before);
  // Runtime stage: the tarball installed into an empty directory, production dependencies only.
  opt = join(tmp, "opt/emissary");
  mkdirSync(opt, { recursive: true });
  const install = await run(
    "npm",
    ["install", "--prefix", opt, "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--no-package-lock", "--prefer-offline", join(tmp, "pkg", info.filename)],
    { cwd: opt, env: env() },
  );
  if (install.code !== 0) throw new Error(failed("npm install", install));
  bin = join(opt, "node_modules/.bin/emissary");
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("npm pack", () => {
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
  });
});

describe("the image's install step (npm install --omit=dev of the tarball)", () => {
  it("installs every production dependency and no devDependency", () => {
    const nm = join(opt, "node_modules");
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(nm, dep, "package.json")), `dependency ${dep}`).toBe(true);
    for (const dev of Object.keys(pkg.devDependencies)) expect(existsSync(join(nm, dev)), `devDependency ${dev} was installed`).toBe(false);
    const installed = join(nm, pkg.name);
    expect(existsSync(join(installed, "dist/src/index.d.ts"))).toBe(true);
    expect(existsSync(join(installed, "test"))).toBe(false);
    expect(existsSync(join(installed, "src"))).toBe(false);
    // The Dockerfile links /usr/local/bin/emissary to this file; npm makes it executable.
    expect(statSync(join(installed, "dist/src/cli.js")).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(installed, "dist/src/cli.js"), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it("`emissary --version` and `npx emissary --version` print the package version", async () => {
    const direct = await run(bin, ["--version"], { cwd: opt, env: env() });
    expect(direct.code, failed("emissary --version", direct)).toBe(0);
    expect(direct.stdout).toContain(pkg.version);
    const npx = await run("npx", ["--no", "--", "emissary", "--version"], { cwd: opt, env: env() });
    expect(npx.code, failed("npx emissary --version", npx)).toBe(0);
    expect(npx.stdout).toContain(pkg.version);
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
    const modules = join(opt, "modules");
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

  it('type-checks `import { createEmissary } from "emissaryd"` under moduleResolution nodenext', async () => {
    writeFileSync(
      join(opt, "consumer.mts"),
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
      join(opt, "tsconfig.json"),
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
    const r = await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", opt], { cwd: opt, env: env() });
    expect(r.code, failed("tsc", r)).toBe(0);
  });
});
