#!/usr/bin/env node
// @ts-check
/**
 * Start-up and memory profiles of emissary — the instrument behind bench/FINDINGS.md "Baseline
 * profile". Each mode prints markdown tables and writes JSON to bench/.work/profile/<mode>.json.
 * Nothing here changes src/; experiments that need another build (a bundle) happen in a
 * temporary directory.
 *
 *   node bench/profile.mjs imports [--runs 9]        # import cost of each dependency and module, fresh process each
 *   node bench/profile.mjs modules                   # files loaded per package by --version, once and the daemon
 *   node bench/profile.mjs cpu [--seconds 60]        # --cpu-prof of --version, once (1 template), the idle daemon (100 templates)
 *   node bench/profile.mjs memory [--seconds 60] [--replicas 2] [--cli OTHER/dist/src/cli.js]   # idle daemon (100 templates)
 *                                                    # under V8 / malloc settings, side by side (PROFILE_VARIANTS="defaults,…" picks some)
 *   node bench/profile.mjs cache [--runs 15]         # NODE_COMPILE_CACHE (Node ≥ 22) on --version, --help, once
 *   node bench/profile.mjs bundle [--runs 15]        # esbuild bundle of dist/src/cli.js (ESBUILD_BIN=path/to/esbuild)
 *   node bench/profile.mjs compare --cli OTHER/dist/src/cli.js [--cli …]   # this build against others: start-up, idle RSS, 1,000-template once
 *
 * --nodes 20,24 chooses the runtimes (as in bench/run.mjs). NODE_EXTRA_CA_CERTS and NODE_OPTIONS
 * are removed from the environment of the measured processes, as bench/run.mjs does.
 * @module
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { nodeRuntimes, parseNodes, majorOf } from "./lib/runtimes.mjs";
import { freshDir, writeEmissaryTemplates } from "./lib/fixtures.mjs";
import { pidOf, procStats, startTool, stopTool, timedRun, waitFor } from "./lib/proc.mjs";
import { median } from "./lib/stats.mjs";
import { summarizeProfile } from "./lib/cpuprofile.mjs";
import { table } from "./lib/report.mjs";
import { fmt } from "./lib/stats.mjs";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const CLI = join(ROOT, "dist/src/cli.js");
const WORK = join(BENCH, ".work", "profile");

/** The dependencies and modules whose import cost is measured, in the order the CLI meets them. */
const IMPORTS = [
  "pino",
  "pino-pretty",
  "yaml",
  "zod",
  "mustache",
  "prom-client",
  "@aws-sdk/client-secrets-manager",
  "@aws-sdk/credential-provider-node",
  "@aws-sdk/ec2-metadata-service",
  "@smithy/signature-v4",
  "@aws-crypto/sha256-js",
  "dist/src/cli/args.js",
  "dist/src/cli/help.js",
  "dist/src/errors.js",
  "dist/src/log.js",
  "dist/src/config.js",
  "dist/src/emissary.js",
  "dist/src/cli/once.js",
  "dist/src/daemon.js",
  "dist/src/status.js",
  "dist/backends/file.js",
  "dist/backends/http.js",
  "dist/backends/vault.js",
  "dist/backends/awssm.js",
];

/** What `emissary --version` loads before it prints (cli.ts's static imports), cumulatively. */
const VERSION_CHAIN = ["dist/src/cli/args.js", "dist/src/cli/help.js", "dist/src/errors.js", "pino", "pino-pretty", "dist/src/log.js", "yaml", "zod", "mustache", "dist/src/config.js"];

const log = (/** @type {string} */ m) => process.stderr.write(`[profile ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      nodes: { type: "string", default: "20,24" },
      runs: { type: "string" },
      seconds: { type: "string" },
      cli: { type: "string", multiple: true },
      replicas: { type: "string" },
    },
  });
  const mode = positionals[0] ?? "";
  const modes = { imports, modules, cpu, memory, cache, bundle, compare };
  if (!(mode in modes)) {
    const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
    process.stdout.write(lines.slice(3, lines.findIndex((l) => l.includes("@module"))).join("\n").replace(/^ \* ?/gm, "") + "\n");
    process.exit(mode ? 2 : 0);
  }
  for (const k of ["NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_COMPILE_CACHE", "NODE_DEBUG"]) delete process.env[k];
  const runtimes = (await nodeRuntimes(ROOT, parseNodes(values.nodes ?? "20,24"), log)).filter((r) => r.available);
  mkdirSync(WORK, { recursive: true });
  const out = await modes[/** @type {keyof typeof modes} */ (mode)](runtimes, { runs: Number(values.runs ?? 0) || undefined, seconds: Number(values.seconds ?? 0) || undefined, clis: values.cli, replicas: Number(values.replicas ?? 0) || undefined });
  writeFileSync(join(WORK, `${mode}.json`), JSON.stringify({ date: new Date().toISOString(), mode, runtimes, ...out }, null, 2) + "\n");
  log(`wrote ${join(WORK, `${mode}.json`)}`);
}

/**
 * @typedef {import("./lib/runtimes.mjs").NodeRuntime} NodeRuntime
 * @typedef {{ runs?: number, seconds?: number, clis?: string[], replicas?: number }} Opts
 */

/** A specifier for the import script: bare package names as they are, repository files as file URLs. */
function specOf(/** @type {string} */ s) {
  return s.startsWith("dist/") ? pathToFileURL(join(ROOT, s)).href : s;
}

/**
 * One fresh process: initializes the ESM loader with an empty module (so the first measured
 * import does not pay for it), imports `specs` in order, timing each (wall and the process's CPU,
 * all threads), then GCs and reports memory.
 * @param {string} node
 * @param {string[]} specs
 * @returns {{ ms: number[], cpuMs: number[], rssMB: number, heapUsedMB: number }}
 */
function importOnce(node, specs) {
  const script = `
    await import("data:text/javascript,export default 0");
    const specs = JSON.parse(process.env.PROFILE_SPECS);
    const ms = [], cpuMs = [];
    for (const s of specs) {
      const c0 = process.cpuUsage(), t0 = performance.now();
      await import(s);
      const t1 = performance.now(), c1 = process.cpuUsage(c0);
      ms.push(t1 - t0); cpuMs.push((c1.user + c1.system) / 1000);
    }
    globalThis.gc?.(); globalThis.gc?.();
    const m = process.memoryUsage();
    process.stdout.write(JSON.stringify({ ms, cpuMs, rssMB: m.rss / 2 ** 20, heapUsedMB: m.heapUsed / 2 ** 20 }));`;
  const outText = execFileSync("nice", ["-n", "5", node, "--expose-gc", "--input-type=module", "-e", script], {
    cwd: ROOT,
    env: { ...process.env, PROFILE_SPECS: JSON.stringify(specs.map(specOf)) },
    encoding: "utf8",
  });
  return JSON.parse(outText);
}

/** @param {NodeRuntime[]} runtimes @param {Opts} o */
async function imports(runtimes, o) {
  const runs = o.runs ?? 9;
  const results = [];
  const min = (/** @type {number[]} */ xs) => Math.min(...xs);
  for (const rt of runtimes) {
    const node = rt.bin ?? process.execPath;
    const base = Array.from({ length: runs }, () => importOnce(node, []));
    const baseRss = median(base.map((b) => b.rssMB));
    const baseHeap = median(base.map((b) => b.heapUsedMB));
    /** @type {{ spec: string, minMs: number, ms: number, cpuMs: number, rssMB: number, heapMB: number }[]} */
    const alone = [];
    for (const spec of IMPORTS) {
      const rs = Array.from({ length: runs }, () => importOnce(node, [spec]));
      alone.push({
        spec,
        minMs: min(rs.map((r) => r.ms[0])),
        ms: median(rs.map((r) => r.ms[0])),
        cpuMs: min(rs.map((r) => r.cpuMs[0])),
        rssMB: median(rs.map((r) => r.rssMB)) - baseRss,
        heapMB: median(rs.map((r) => r.heapUsedMB)) - baseHeap,
      });
      log(`node ${rt.version} import ${spec}: min ${alone.at(-1)?.minMs.toFixed(1)} ms`);
    }
    const chainRuns = Array.from({ length: runs }, () => importOnce(node, VERSION_CHAIN));
    const chain = VERSION_CHAIN.map((spec, i) => ({ spec, minMs: min(chainRuns.map((r) => r.ms[i])), ms: median(chainRuns.map((r) => r.ms[i])), cpuMs: min(chainRuns.map((r) => r.cpuMs[i])) }));
    const chainTotal = min(chainRuns.map((r) => r.ms.reduce((a, b) => a + b, 0)));
    const chainRss = median(chainRuns.map((r) => r.rssMB)) - baseRss;
    results.push({ node: rt.version, runs, baseline: { rssMB: baseRss, heapUsedMB: baseHeap }, alone, chain, chainTotalMinMs: chainTotal, chainRssMB: chainRss });
    process.stdout.write(
      `\n### Import cost, node ${rt.version} (${runs} fresh processes each; wall min and median, CPU min (all threads); RSS/heap after GC over an empty process: ${fmt(baseRss, 1)} MB RSS)\n\n`,
    );
    process.stdout.write(
      table(["Module (alone, with its dependencies)", "wall ms (min)", "wall ms (median)", "CPU ms (min)", "+RSS MB", "+heap MB"], [...alone].sort((a, b) => b.minMs - a.minMs).map((a) => [a.spec, fmt(a.minMs), fmt(a.ms), fmt(a.cpuMs), fmt(a.rssMB, 1), fmt(a.heapMB, 1)])) + "\n",
    );
    process.stdout.write(`\nWhat \`--version\` loads (cli.ts's static imports), in order, in one process: marginal cost of each (total ${fmt(chainTotal)} ms at best, +${fmt(chainRss, 1)} MB RSS after GC):\n\n`);
    process.stdout.write(table(["Module", "wall ms (min)", "wall ms (median)", "CPU ms (min)"], chain.map((c) => [c.spec, fmt(c.minMs), fmt(c.ms), fmt(c.cpuMs)])) + "\n");
  }
  return { results };
}

/**
 * A preload that counts, at exit, the files the process loaded per package: every module through
 * `module.registerHooks` where Node has it (≥ 22.15; ESM and CommonJS), else CommonJS files from
 * the require cache only. Written to PROFILE_MODULES_OUT as JSON.
 */
const MODULE_COUNTER = `
import module, { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
const seen = new Set();
const hooks = typeof module.registerHooks === "function";
if (hooks) module.registerHooks({ load(url, ctx, next) { seen.add(url); return next(url, ctx); } });
const req = createRequire(import.meta.url);
process.on("exit", () => {
  const files = hooks ? [...seen] : Object.keys(req.cache);
  const by = {};
  for (const f of files) {
    if (f.startsWith("node:")) continue;
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f);
    const k = m ? m[1] : /\\/dist\\//.test(f) ? "emissary (dist)" : "other";
    by[k] = (by[k] ?? 0) + 1;
  }
  writeFileSync(process.env.PROFILE_MODULES_OUT, JSON.stringify({ scope: hooks ? "all modules" : "CommonJS only", by }));
});
`;

/** @param {NodeRuntime[]} runtimes */
async function modules(runtimes) {
  const results = [];
  for (const rt of runtimes) {
    const node = rt.bin ?? process.execPath;
    const dir = freshDir(join(WORK, `modules-node${rt.key}`));
    const pre = join(dir, "count.mjs");
    writeFileSync(pre, MODULE_COUNTER);
    const tpl1 = oneTemplate(join(dir, "one"));
    /** @type {Record<string, any>} */
    const counts = {};
    for (const [what, args] of /** @type {[string, string[]][]} */ ([["--version", ["--version"]], ["--help", ["--help"]], ["once", ["once", "--templates", tpl1]]])) {
      const out = join(dir, `${what.replace(/\W/g, "")}.json`);
      execFileSync(node, ["--import", pathToFileURL(pre).href, CLI, ...args], { cwd: dir, env: { ...process.env, PROFILE_MODULES_OUT: out }, stdio: "ignore" });
      counts[what] = JSON.parse(readFileSync(out, "utf8"));
    }
    const w = idleWorkload(join(dir, "daemon"));
    const out = join(dir, "daemon.json");
    const child = startTool({ cmd: node, args: ["--import", pathToFileURL(pre).href, CLI, "run", "--templates", w.tpl], cwd: dir, env: { ...process.env, PROFILE_MODULES_OUT: out }, logFile: join(dir, "daemon.log") });
    await waitFor(() => Array.from({ length: w.n }, (_, i) => existsSync(join(w.out, `t${i}.conf`))).every(Boolean), { timeoutMs: 120_000, intervalMs: 50, what: "100 files" });
    await sleep(2000);
    await stopTool(child);
    counts["run (100 templates)"] = JSON.parse(readFileSync(out, "utf8"));
    results.push({ node: rt.version, counts });
    const pkgs = [...new Set(Object.values(counts).flatMap((c) => Object.keys(c.by)))].sort((a, b) => (counts.once.by[b] ?? 0) - (counts.once.by[a] ?? 0));
    const whats = Object.keys(counts);
    process.stdout.write(`\n### Files loaded per package, node ${rt.version} (${counts.once.scope})\n\n`);
    process.stdout.write(
      table(
        ["Package", ...whats],
        [...pkgs.map((p) => [p, ...whats.map((w) => counts[w].by[p] ?? "")]), ["total", ...whats.map((w) => Object.values(counts[w].by).reduce((a, b) => a + b, 0))]],
      ) + "\n",
    );
  }
  return { results };
}

/** 100 templates over 100 file secrets in `dir`, as B3 has. */
function idleWorkload(/** @type {string} */ dir, n = 100) {
  freshDir(dir);
  for (const d of ["secrets", "tpl", "out"]) mkdirSync(join(dir, d));
  for (let i = 0; i < n; i++) writeFileSync(join(dir, "secrets", `s${i}`), `secret-value-${i}`);
  writeEmissaryTemplates(
    join(dir, "tpl"),
    Array.from({ length: n }, (_, i) => ({ file: `t${i}.tpl`, dest: join(dir, "out", `t${i}.conf`), secrets: { s: `file:${join(dir, "secrets", `s${i}`)}` }, body: `key = "{{s}}"\n` })),
  );
  return { tpl: join(dir, "tpl"), out: join(dir, "out"), n };
}

/** One template over one file secret, as B0 has; its destination is `<dir>/out/one.conf`. */
function oneTemplate(/** @type {string} */ dir) {
  freshDir(dir);
  writeFileSync(join(dir, "secret"), "profile-secret");
  writeEmissaryTemplates(join(dir, "tpl"), [{ file: "one.tpl", dest: join(dir, "out", "one.conf"), secrets: { s: `file:${join(dir, "secret")}` }, body: 'key = "{{s}}"\n' }]);
  return join(dir, "tpl");
}

/** The destination of {@link oneTemplate}'s template, given its tpl directory. */
function destOf(/** @type {string} */ tpl) {
  return join(dirname(tpl), "out", "one.conf");
}

/** Reads the newest .cpuprofile in `dir`. */
function readProfile(/** @type {string} */ dir) {
  const f = readdirSync(dir).filter((x) => x.endsWith(".cpuprofile")).sort().at(-1);
  if (!f) throw new Error(`no .cpuprofile in ${dir}`);
  return JSON.parse(readFileSync(join(dir, f), "utf8"));
}

/** Prints a profile summary. */
function printSummary(/** @type {string} */ title, /** @type {ReturnType<typeof summarizeProfile>} */ s) {
  process.stdout.write(`\n### ${title} — ${fmt(s.totalMs)} ms sampled of ${fmt(s.windowMs)} ms\n\n`);
  process.stdout.write(table(["Category (self time)", "ms", "share"], s.byCategory.map((c) => [c.category, fmt(c.ms), `${(100 * c.share).toFixed(1)} %`])) + "\n\n");
  process.stdout.write(table(["Function (self time)", "category", "ms"], s.topFunctions.map((f) => [f.fn, f.category, fmt(f.ms)])) + "\n");
}

/** @param {NodeRuntime[]} runtimes @param {Opts} o */
async function cpu(runtimes, o) {
  const seconds = o.seconds ?? 60;
  const results = [];
  for (const rt of runtimes) {
    const node = rt.bin ?? process.execPath;
    const tag = `node${rt.key}`;
    const tpl1 = oneTemplate(join(WORK, `cpu-${tag}-one`));
    for (const [what, args] of /** @type {[string, string[]][]} */ ([["--version", ["--version"]], ["--help", ["--help"]], ["once", ["once", "--templates", tpl1]]])) {
      const dir = freshDir(join(WORK, `cpu-${tag}-${what.replace(/\W/g, "")}`));
      execFileSync(node, ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "100", CLI, ...args], { cwd: dir, env: process.env, stdio: "ignore" });
      const s = summarizeProfile(readProfile(dir));
      results.push({ node: rt.version, what, ...s });
      printSummary(`node ${rt.version}: emissary ${what}`, s);
    }
    // The daemon: start-up until every file is written, then the idle window.
    const dir = join(WORK, `cpu-${tag}-daemon`);
    const w = idleWorkload(dir);
    const profDir = join(dir, "prof");
    mkdirSync(profDir);
    const t0 = Date.now();
    const child = startTool({ cmd: node, args: ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "1000", CLI, "run", "--templates", w.tpl], cwd: dir, logFile: join(dir, "tool.log") });
    await waitFor(() => Array.from({ length: w.n }, (_, i) => existsSync(join(w.out, `t${i}.conf`))).every(Boolean), { timeoutMs: 120_000, intervalMs: 50, what: "100 files" });
    const readyMs = Date.now() - t0;
    await sleep(seconds * 1000 + 5000);
    await stopTool(child);
    const prof = readProfile(profDir);
    const startup = summarizeProfile(prof, { toMs: readyMs });
    const idle = summarizeProfile(prof, { fromMs: readyMs + 5000, toMs: readyMs + 5000 + seconds * 1000 });
    results.push({ node: rt.version, what: "daemon start-up", readyMs, ...startup }, { node: rt.version, what: `daemon idle ${seconds} s`, ...idle });
    printSummary(`node ${rt.version}: daemon start-up (100 templates, all written after ${readyMs} ms)`, startup);
    printSummary(`node ${rt.version}: daemon idle, ${seconds} s after start-up + 5 s (1 ms sampling)`, idle);
  }
  return { results };
}

/** Memory of a live process from /proc: RSS split into anonymous and file-backed, and its thread count. */
function smaps(/** @type {number} */ pid) {
  try {
    const r = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (/** @type {string} */ k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(r)?.[1] ?? NaN) / 1024;
    const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
    return { rssMB: kb("Rss"), anonMB: kb("Anonymous"), fileMB: kb("Rss") - kb("Anonymous"), threads };
  } catch {
    return undefined;
  }
}

/**
 * The settings tried on the idle daemon. `preload` is a module run first with --import.
 * @type {{ name: string, flags: string[], env: Record<string, string>, preload?: string }[]}
 */
const MEMORY_VARIANTS = [
  { name: "defaults", flags: [], env: {} },
  { name: "--max-semi-space-size=1", flags: ["--max-semi-space-size=1"], env: {} },
  { name: "--optimize-for-size", flags: ["--optimize-for-size"], env: {} },
  { name: "--single-threaded", flags: ["--single-threaded"], env: {} },
  { name: "--v8-pool-size=1", flags: ["--v8-pool-size=1"], env: {} },
  { name: "--lite-mode", flags: ["--lite-mode"], env: {} },
  { name: "--jitless", flags: ["--jitless"], env: {} },
  { name: "MALLOC_ARENA_MAX=2", flags: [], env: { MALLOC_ARENA_MAX: "2" } },
  { name: "semi-space 1 + v8-pool-size 1 + MALLOC_ARENA_MAX=2", flags: ["--max-semi-space-size=1", "--v8-pool-size=1"], env: { MALLOC_ARENA_MAX: "2" } },
  { name: "semi-space 1 + --lite-mode", flags: ["--max-semi-space-size=1", "--lite-mode"], env: {} },
  { name: "semi-space 1 + --no-opt --no-maglev", flags: ["--max-semi-space-size=1", "--no-opt", "--no-maglev"], env: {} },
  { name: "v8.setFlagsFromString(semi-space 1) at start (--import)", flags: [], env: {}, preload: 'import { setFlagsFromString } from "node:v8"; setFlagsFromString("--max-semi-space-size=1");' },
];

/** @param {NodeRuntime[]} runtimes @param {Opts} o */
async function memory(runtimes, o) {
  const seconds = o.seconds ?? 60;
  const jobs = [];
  // --cli points the variants at another build (e.g. a prototype in a temporary directory);
  // PROFILE_VARIANTS="defaults,--max-semi-space-size=1" picks variants; --replicas N runs each N times.
  const cli = o.clis?.[0] ?? CLI;
  const pick = (process.env.PROFILE_VARIANTS ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  const variants = pick.length ? MEMORY_VARIANTS.filter((v) => pick.includes(v.name)) : MEMORY_VARIANTS;
  for (const rt of runtimes) {
    for (const v of variants) for (let k = 1; k <= (o.replicas ?? 1); k++) jobs.push(idleDaemon(rt, (o.replicas ?? 1) > 1 ? { ...v, name: `${v.name} #${k}` } : v, seconds, cli));
    jobs.push(idleBare(rt, seconds));
  }
  /** @type {any[]} */
  const results = await Promise.all(jobs);
  for (const rt of runtimes) {
    const rs = results.filter((r) => r.node === rt.version);
    process.stdout.write(`\n### Idle daemon, 100 templates, node ${rt.version}: ${seconds} s window after start-up + 5 s, side by side${cli === CLI ? "" : ` (${cli})`}\n\n`);
    process.stdout.write(
      table(
        ["Variant", "RSS MB (end)", "anon MB", "file MB", "max RSS MB", "threads", "idle CPU s/min", "start-up CPU s", "ready s"],
        rs.map((r) => [r.variant + (r.error ? ` (failed: ${r.error})` : ""), fmt(r.rssMB, 1), fmt(r.anonMB, 1), fmt(r.fileMB, 1), fmt(r.maxRssMB, 1), r.threads ?? "n/a", fmt(r.cpuSPerMin, 3), fmt(r.startCpuS), fmt(r.readyS)]),
      ) + "\n",
    );
  }
  return { seconds, results };
}

/**
 * @param {NodeRuntime} rt
 * @param {{ name: string, flags: string[], env: Record<string, string>, preload?: string }} v
 * @param {number} seconds
 * @param {string} [cli] - the emissary entry point
 */
async function idleDaemon(rt, v, seconds, cli = CLI) {
  const dir = join(WORK, `mem-node${rt.key}-${v.name.replace(/[^\w]+/g, "_").slice(0, 40)}`);
  const w = idleWorkload(dir);
  const flags = [...v.flags];
  if (v.preload) {
    writeFileSync(join(dir, "preload.mjs"), v.preload + "\n");
    flags.push("--import", pathToFileURL(join(dir, "preload.mjs")).href);
  }
  const t0 = Date.now();
  const child = startTool({ cmd: rt.bin ?? process.execPath, args: [...flags, cli, "run", "--templates", w.tpl], cwd: dir, env: { ...process.env, ...v.env }, logFile: join(dir, "tool.log") });
  try {
    await waitFor(() => Array.from({ length: w.n }, (_, i) => existsSync(join(w.out, `t${i}.conf`))).every(Boolean), { timeoutMs: 180_000, intervalMs: 100, what: `${v.name}: 100 files` });
    const readyS = (Date.now() - t0) / 1000;
    return { node: rt.version, variant: v.name, readyS, ...(await idleSample(pidOf(child), seconds)) };
  } catch (err) {
    return { node: rt.version, variant: v.name, error: /** @type {Error} */ (err).message };
  } finally {
    await stopTool(child);
  }
}

/** An idle `node` with nothing loaded, for comparison. */
async function idleBare(/** @type {NodeRuntime} */ rt, /** @type {number} */ seconds) {
  const dir = freshDir(join(WORK, `mem-node${rt.key}-bare`));
  const child = startTool({ cmd: rt.bin ?? process.execPath, args: ["-e", "setInterval(() => {}, 2 ** 30)"], cwd: dir, logFile: join(dir, "node.log") });
  try {
    return { node: rt.version, variant: "(idle node, nothing loaded)", readyS: 0, ...(await idleSample(pidOf(child), seconds)) };
  } finally {
    await stopTool(child);
  }
}

/** 5 s settling, then `seconds` of sampling. */
async function idleSample(/** @type {number} */ pid, /** @type {number} */ seconds) {
  await sleep(5000);
  const a = procStats(pid);
  if (!a) throw new Error("exited");
  let maxRss = a.rssMB;
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    maxRss = Math.max(maxRss, procStats(pid)?.rssMB ?? 0);
  }
  const b = procStats(pid);
  const m = smaps(pid);
  if (!b || !m) throw new Error("exited");
  const windowS = (Date.now() - t0) / 1000;
  return { startCpuS: a.cpuS, cpuSPerMin: (60 * (b.cpuS - a.cpuS)) / windowS, maxRssMB: maxRss, ...m };
}

/**
 * Medians of `runs` interleaved runs of each command, as B0 measures them.
 * @param {{ name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv, cwd?: string, dest?: string }[]} cmds
 * @param {number} runs
 * @param {string} dir
 */
async function interleaved(cmds, runs, dir) {
  /** @type {Map<string, { ms: number[], cpu: number[], rss: number[], ok: number }>} */
  const acc = new Map(cmds.map((c) => [c.name, { ms: [], cpu: [], rss: [], ok: 0 }]));
  for (let r = 0; r < runs + 1; r++) {
    for (const c of cmds) {
      if (c.dest) rmSync(c.dest, { force: true });
      const res = await timedRun({ cmd: c.cmd, args: c.args, env: c.env ?? process.env, cwd: c.cwd ?? dir, logFile: join(dir, `${c.name.replace(/\W+/g, "_")}.log`) });
      const a = acc.get(c.name);
      if (r === 0 || !a) continue; // the first round warms the page cache (and fills a compile cache)
      if (res.code === 0 && (!c.dest || readFileSync(c.dest, { encoding: "utf8", flag: "r" }).includes("profile-secret"))) {
        a.ok++;
        a.ms.push(res.wallMs);
        a.cpu.push((res.userS + res.sysS) * 1000);
        a.rss.push(res.peakRssMB);
      }
    }
  }
  return cmds.map((c) => {
    const a = acc.get(c.name) ?? { ms: [], cpu: [], rss: [], ok: 0 };
    return { name: c.name, p50Ms: median(a.ms), minMs: Math.min(...a.ms), cpuMs: median(a.cpu), rssMB: median(a.rss), ok: a.ok, runs };
  });
}

/** @param {NodeRuntime[]} runtimes @param {Opts} o */
async function cache(runtimes, o) {
  const runs = o.runs ?? 15;
  const results = [];
  for (const rt of runtimes) {
    const node = rt.bin ?? process.execPath;
    const dir = freshDir(join(WORK, `cache-node${rt.key}`));
    const tpl = oneTemplate(join(dir, "one"));
    if (majorOf(rt.version ?? "") < 22) {
      results.push({ node: rt.version, na: "NODE_COMPILE_CACHE / module.enableCompileCache() need Node ≥ 22.1" });
      process.stdout.write(`\nnode ${rt.version}: compile cache not available (Node ≥ 22.1)\n`);
      continue;
    }
    const cacheDir = join(dir, "compile-cache");
    const withCache = { ...process.env, NODE_COMPILE_CACHE: cacheDir };
    const cmds = [];
    for (const [what, args] of /** @type {[string, string[]][]} */ ([["node -e 0", ["-e", "0"]], ["--version", [CLI, "--version"]], ["--help", [CLI, "--help"]], ["once", [CLI, "once", "--templates", tpl]]])) {
      const dest = what === "once" ? destOf(tpl) : undefined;
      cmds.push({ name: `${what}`, cmd: node, args, dest }, { name: `${what} + NODE_COMPILE_CACHE`, cmd: node, args, env: withCache, dest });
    }
    const rs = await interleaved(cmds, runs, dir);
    results.push({ node: rt.version, results: rs });
    process.stdout.write(`\n### Compile cache, node ${rt.version} (${runs} interleaved runs after one that fills the cache)\n\n`);
    process.stdout.write(table(["Command", "wall p50 ms", "wall min ms", "CPU ms (p50)", "peak RSS MB", "ok"], rs.map((r) => [r.name, fmt(r.p50Ms), fmt(r.minMs), fmt(r.cpuMs, 0), fmt(r.rssMB, 1), `${r.ok}/${r.runs}`])) + "\n");
  }
  return { results };
}

/** @param {NodeRuntime[]} runtimes @param {Opts} o */
async function bundle(runtimes, o) {
  const runs = o.runs ?? 15;
  const esbuild = process.env.ESBUILD_BIN;
  if (!esbuild || !existsSync(esbuild)) throw new Error("set ESBUILD_BIN to an esbuild binary (e.g. npm install --prefix /tmp/esb esbuild; ESBUILD_BIN=/tmp/esb/node_modules/.bin/esbuild)");
  // A copy of the package in a temporary directory: package.json (read by --version) and node_modules by link.
  const tmp = join(tmpdir(), `emissary-bundle-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  /** @type {Record<string, string>} */
  const clis = { "dist (tsc output)": CLI };
  for (const [name, extra] of /** @type {[string, string[]][]} */ ([["bundle", []], ["bundle, minified", ["--minify"]]])) {
    const root = join(tmp, name.replace(/\W+/g, "-"));
    mkdirSync(root, { recursive: true });
    cpSync(join(ROOT, "package.json"), join(root, "package.json"));
    symlinkSync(join(ROOT, "node_modules"), join(root, "node_modules"));
    const args = [
      CLI,
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--splitting",
      `--outdir=${join(root, "dist/src")}`,
      "--chunk-names=chunks/[name]-[hash]",
      // CommonJS dependencies call require(); an ESM bundle needs one.
      "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      "--log-level=warning",
      ...extra,
    ];
    execFileSync(esbuild, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
    clis[name] = join(root, "dist/src/cli.js");
  }
  const results = await compareClis(runtimes, clis, { runs, seconds: o.seconds ?? 30, tag: "bundle", cache: true });
  const sizes = Object.fromEntries(Object.entries(clis).map(([k, f]) => [k, readdirSync(dirname(f), { recursive: true }).length]));
  rmSync(tmp, { recursive: true, force: true });
  return { esbuild: execFileSync(esbuild, ["--version"], { encoding: "utf8" }).trim(), files: sizes, results };
}

/**
 * `--version`, `--help` and `once` (one template) from each build, interleaved, then the idle
 * daemon (100 templates) from each build side by side, then `once` over 1,000 templates (B2's
 * workload) from each build.
 * @param {NodeRuntime[]} runtimes
 * @param {Record<string, string>} clis - name → cli.js
 * @param {{ runs: number, seconds: number, tag: string, cache?: boolean }} o - cache: add NODE_COMPILE_CACHE variants (Node ≥ 22) for all but the first build
 */
async function compareClis(runtimes, clis, o) {
  const results = [];
  const first = Object.keys(clis)[0];
  for (const rt of runtimes) {
    const node = rt.bin ?? process.execPath;
    const dir = freshDir(join(WORK, `${o.tag}-node${rt.key}`));
    const tpl = oneTemplate(join(dir, "one"));
    /** @type {{ name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv, dest?: string }[]} */
    const cmds = [{ name: "node -e 0", cmd: node, args: ["-e", "0"] }];
    for (const [name, cli] of Object.entries(clis)) {
      for (const [what, args] of /** @type {[string, string[]][]} */ ([["--version", ["--version"]], ["--help", ["--help"]], ["once", ["once", "--templates", tpl]]])) {
        const dest = what === "once" ? destOf(tpl) : undefined;
        cmds.push({ name: `${name}: ${what}`, cmd: node, args: [cli, ...args], dest });
        if (o.cache && majorOf(rt.version ?? "") >= 22 && name !== first) cmds.push({ name: `${name} + NODE_COMPILE_CACHE: ${what}`, cmd: node, args: [cli, ...args], env: { ...process.env, NODE_COMPILE_CACHE: join(dir, "cc") }, dest });
      }
    }
    const rs = await interleaved(cmds, o.runs, dir);
    const floor = rs[0].p50Ms;
    /** @type {any[]} */
    const idle = await Promise.all(Object.entries(clis).map(([name, cli]) => idleDaemon(rt, { name: `${o.tag} ${name}`, flags: [], env: {} }, o.seconds, cli)));
    /** @type {{ name: string, wallS: number, peakRssMB: number, ok: boolean }[]} */
    const many = [];
    const w = manyTemplates(join(dir, "b2"), 1000);
    for (let r = 0; r < 3; r++) {
      for (const [name, cli] of Object.entries(clis)) {
        rmSync(w.out, { recursive: true, force: true });
        const res = await timedRun({ cmd: node, args: [cli, "once", "--templates", w.tpl, "--timeout", "5m"], cwd: dir, logFile: join(dir, "b2.log") });
        const files = existsSync(w.out) ? readdirSync(w.out).length : 0;
        many.push({ name, wallS: res.wallMs / 1000, peakRssMB: res.peakRssMB, ok: res.code === 0 && files === w.n });
      }
    }
    const b2 = Object.keys(clis).map((name) => {
      const ok = many.filter((m) => m.name === name && m.ok);
      return { name, wallS: median(ok.map((m) => m.wallS)), peakRssMB: Math.max(...ok.map((m) => m.peakRssMB)), ok: ok.length };
    });
    results.push({ node: rt.version, startup: rs, idle, b2 });
    process.stdout.write(`\n### ${o.tag}: start-up, node ${rt.version} (${o.runs} interleaved runs after one warm-up; ratio to node -e 0)\n\n`);
    const floorCpu = rs[0].cpuMs;
    process.stdout.write(
      table(
        ["Command", "wall p50 ms", "wall min ms", "× node -e 0 (p50)", "CPU ms (p50)", "CPU × node -e 0", "peak RSS MB", "ok"],
        rs.map((r) => [r.name, fmt(r.p50Ms), fmt(r.minMs), `${(r.p50Ms / floor).toFixed(2)}×`, fmt(r.cpuMs, 0), floorCpu > 0 ? `${(r.cpuMs / floorCpu).toFixed(2)}×` : "n/a", fmt(r.rssMB, 1), `${r.ok}/${r.runs}`]),
      ) + "\n",
    );
    process.stdout.write(`\n### ${o.tag}: idle daemon (100 templates, ${o.seconds} s, side by side), node ${rt.version}\n\n`);
    process.stdout.write(table(["Build", "RSS MB (end)", "anon MB", "file MB", "idle CPU s/min", "ready s", "error"], idle.map((r) => [r.variant, fmt(r.rssMB, 1), fmt(r.anonMB, 1), fmt(r.fileMB, 1), fmt(r.cpuSPerMin, 3), fmt(r.readyS), r.error ?? ""])) + "\n");
    process.stdout.write(`\n### ${o.tag}: once over 1,000 templates (B2's workload, 3 runs each), node ${rt.version}\n\n`);
    process.stdout.write(table(["Build", "wall s (median)", "peak RSS MB (max)", "ok"], b2.map((r) => [r.name, fmt(r.wallS), fmt(r.peakRssMB, 1), `${r.ok}/3`])) + "\n");
  }
  return results;
}

/** N templates over N file secrets (B2's workload). */
function manyTemplates(/** @type {string} */ dir, /** @type {number} */ n) {
  const w = idleWorkload(dir, n);
  return w;
}

/** @param {NodeRuntime[]} runtimes @param {Opts & { clis?: string[] }} o */
async function compare(runtimes, o) {
  const list = o.clis ?? [];
  if (list.length === 0) throw new Error("compare: give one or more --cli path/to/dist/src/cli.js (this checkout's build is always first)");
  /** @type {Record<string, string>} */
  const clis = { "this checkout": CLI };
  for (const c of list) clis[c] = c;
  return { results: await compareClis(runtimes, clis, { runs: o.runs ?? 15, seconds: o.seconds ?? 30, tag: "compare" }) };
}

main().catch((err) => {
  process.stderr.write(`profile: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
