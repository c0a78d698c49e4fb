#!/usr/bin/env node
// @ts-check
/**
 * `npm run bench`: builds (via the npm script), installs the peers at pinned versions, runs the
 * jobs B0–B5 on each tool, writes bench/results/<date>.json, bench/REPORT.md and bench/chart.svg.
 *
 *   node bench/run.mjs [--profile quick|full] [--jobs b0,b3] [--set b3.seconds=300] [--nodes 20,24]
 *   node bench/run.mjs --report-only [--from bench/results/<date>-full.json]
 *
 * emissary runs under each Node in --nodes (default: the machine's and 24, via .ci/node24.sh) in
 * B0–B3; B4 and B5 use the Node running this script. EMISSARY_ORIGINAL_BIN names a hand-built
 * original Go emissary to compare in B0.
 *
 * `quick` (the default) keeps the whole run to a few minutes on 2 cores; `full` uses the issue's
 * numbers (B3 idle 5 min, B4 10 min, B5 boot window 60 s, 200 changes in B1). Any parameter can be
 * overridden with `--set job.param=value` (or BENCH_SET="b3.seconds=300,b4.seconds=600").
 * Results go to bench/results/<date>.json (<date>-full.json for the full profile); jobs run the
 * same day with the same profile are merged into that file, so jobs can be run one by one.
 * @module
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync, statSync } from "node:fs";
import { cpus, totalmem, release, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { consulTemplateTool, emissaryTools, goVersion, originalEmissaryTool, PEERS } from "./lib/tools.mjs";
import { majorOf, nodeRuntimes, parseNodes } from "./lib/runtimes.mjs";
import { renderReport } from "./lib/report.mjs";
import { renderChart, chartPanels } from "./lib/svg.mjs";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);

/**
 * @typedef {object} JobContext
 * @property {string} root - repository root
 * @property {string} work - scratch directory of this job (bench/.work/<id>, gitignored)
 * @property {Record<string, any>} params - the job's parameters for this profile
 * @property {{ emissary: import("./lib/tools.mjs").ToolInfo, emissaries: import("./lib/tools.mjs").ToolInfo[], consulTemplate: import("./lib/tools.mjs").ToolInfo, original: import("./lib/tools.mjs").ToolInfo }} tools
 *   emissary: under the Node running the benchmark (B4, B5); emissaries: one per Node runtime (B0–B3)
 * @property {(msg: string) => void} log
 */

/** Parameters per profile. `full` is the issue's workload; `quick` is what `npm run bench` runs by default. */
export const PROFILES = {
  quick: {
    b0: { runs: 15, warmup: 2 },
    b1: { changes: 50, gapMs: 2000, timeoutMs: 30_000 },
    b2: { templates: 1000, runs: 3 },
    b3: { templates: 100, seconds: 60, settle: 5 },
    b4: { templates: 300, secrets: 100, seconds: 120, refresh: "30s" },
    b5: { agents: 1000, bootSeconds: 30, refresh: "30s", secretsPerAgent: 3, templatesPerAgent: 2 },
  },
  full: {
    b0: { runs: 40, warmup: 3 },
    b1: { changes: 200, gapMs: 2000, timeoutMs: 30_000 },
    b2: { templates: 1000, runs: 5 },
    b3: { templates: 100, seconds: 300, settle: 5 },
    b4: { templates: 300, secrets: 100, seconds: 600, refresh: "5m" },
    b5: { agents: 1000, bootSeconds: 60, refresh: "5m", secretsPerAgent: 3, templatesPerAgent: 2 },
  },
};

/** Environment variables that change how Node starts; unset for the measured processes unless BENCH_KEEP_NODE_ENV is set. */
const NODE_ENV_REMOVED = ["NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_COMPILE_CACHE", "NODE_DEBUG"];

const JOBS = ["b0", "b1", "b2", "b3", "b4", "b5"];

/** @param {string[]} sets */
function applySets(/** @type {Record<string, Record<string, any>>} */ params, sets) {
  for (const s of sets) {
    const m = /^(b\d)\.(\w+)=(.*)$/.exec(s.trim());
    if (!m) throw new Error(`--set ${s}: expected job.param=value, e.g. b3.seconds=300`);
    const [, job, key, raw] = m;
    if (!params[job] || !(key in params[job])) throw new Error(`--set ${s}: unknown parameter (known for ${job}: ${Object.keys(params[job] ?? {}).join(", ")})`);
    params[job][key] = typeof params[job][key] === "number" ? Number(raw) : raw;
  }
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

/** @param {string} msg */
function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Newest results file (by modification time), for --report-only. */
function latestResults() {
  const dir = join(BENCH, "results");
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}(-\w+)?\.json$/.test(f)) : [];
  files.sort((a, b) => statSync(join(dir, a)).mtimeMs - statSync(join(dir, b)).mtimeMs);
  return files.length ? join(dir, files.at(-1) ?? "") : undefined;
}

/** @param {any} results */
function writeReport(results) {
  writeFileSync(join(BENCH, "chart.svg"), renderChart(chartPanels(results)));
  const findings = join(BENCH, "FINDINGS.md");
  writeFileSync(join(BENCH, "REPORT.md"), renderReport(results, { chart: "chart.svg", ...(existsSync(findings) ? { findings: readFileSync(findings, "utf8") } : {}) }));
  log("wrote bench/REPORT.md and bench/chart.svg");
}

async function main() {
  const { values } = parseArgs({
    options: {
      profile: { type: "string", default: process.env.BENCH_PROFILE ?? "quick" },
      jobs: { type: "string", default: process.env.BENCH_JOBS ?? JOBS.join(",") },
      set: { type: "string", multiple: true, default: (process.env.BENCH_SET ?? "").split(",").filter(Boolean) },
      "report-only": { type: "boolean", default: false },
      from: { type: "string" },
      nodes: { type: "string", default: process.env.BENCH_NODES ?? `${majorOf(process.version)},24` },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n");
    process.stdout.write(lines.slice(3, lines.findIndex((l) => l.includes("@module"))).join("\n").replace(/^ \* ?/gm, "") + "\n");
    return;
  }
  if (values["report-only"]) {
    const f = values.from ? join(process.cwd(), values.from) : latestResults();
    if (!f) throw new Error("no bench/results/*.json yet");
    writeReport(JSON.parse(readFileSync(f, "utf8")));
    return;
  }
  const profile = /** @type {"quick" | "full"} */ (values.profile);
  if (!(profile in PROFILES)) throw new Error(`--profile ${profile}: expected quick or full`);
  /** @type {Record<string, Record<string, any>>} */
  const params = structuredClone(PROFILES[profile]);
  applySets(params, values.set ?? []);
  const jobs = (values.jobs ?? "").split(",").map((j) => j.trim().toLowerCase()).filter(Boolean);
  for (const j of jobs) if (!JOBS.includes(j)) throw new Error(`--jobs: unknown job ${j} (known: ${JOBS.join(", ")})`);

  const workRoot = join(BENCH, ".work");
  const binDir = join(workRoot, "bin");
  mkdirSync(binDir, { recursive: true });
  const runtimes = await nodeRuntimes(ROOT, parseNodes(values.nodes ?? ""), log);
  const emissaries = emissaryTools(ROOT, runtimes);
  const tools = {
    emissary: emissaries[0],
    emissaries,
    consulTemplate: await consulTemplateTool(binDir, log),
    original: await originalEmissaryTool(binDir, log),
  };
  // Node start-up settings of this machine's environment are not part of the workload: every
  // measured process (they inherit process.env) runs without them, and the report says so.
  const envRemoved = process.env.BENCH_KEEP_NODE_ENV ? [] : NODE_ENV_REMOVED.filter((k) => process.env[k] !== undefined);
  for (const k of envRemoved) delete process.env[k];
  if (envRemoved.length) log(`removed from the environment of the measured processes: ${envRemoved.join(", ")} (BENCH_KEEP_NODE_ENV=1 keeps them)`);
  for (const t of [...emissaries, tools.consulTemplate, tools.original]) log(`${t.name}: ${t.available ? t.version : `not available — ${t.reason}`}`);
  if (!tools.emissary.available) throw new Error(tools.emissary.reason);

  const resultsDir = join(BENCH, "results");
  mkdirSync(resultsDir, { recursive: true });
  // The default profile writes <date>.json; others <date>-<profile>.json, so a full run does not mix with a quick one.
  const file = join(resultsDir, profile === "quick" ? `${today()}.json` : `${today()}-${profile}.json`);
  const results = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { jobs: {} };
  // A note belongs to the run that wrote it (e.g. "Baseline …"); a new run of the day drops it.
  delete results.note;
  results.date = today();
  results.file = file.slice(BENCH.length + 1);
  results.profile = profile;
  results.machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memGB: Number((totalmem() / 2 ** 30).toFixed(1)),
    kernel: release(),
    node: process.version,
    go: (await goVersion()) ?? "none",
    envRemoved,
    shared: "2 cores shared with other engineers' agents running builds and tests at the same time; numbers are indicative, not lab-grade, and ratios measured in the same run (interleaved where the job allows) are more trustworthy than absolute times.",
  };
  const toolEntry = (/** @type {import("./lib/tools.mjs").ToolInfo} */ t) => ({ name: t.name, available: t.available, ...(t.version ? { version: t.version } : {}), ...(t.reason ? { reason: t.reason } : {}), ...(t.nodeVersion ? { node: t.nodeVersion } : {}) });
  // One entry per emissary runtime ("emissary" for the first, so older reports keep their key), then the peers.
  results.tools = {
    ...Object.fromEntries(emissaries.map((t, i) => [i === 0 ? "emissary" : `emissary-node${t.nodeKey}`, toolEntry(t)])),
    consulTemplate: toolEntry(tools.consulTemplate),
    original: toolEntry(tools.original),
  };
  results.nodes = runtimes.map((r) => ({ key: r.key, available: r.available, ...(r.version ? { version: r.version } : {}), ...(r.reason ? { reason: r.reason } : {}) }));
  results.peers = PEERS;
  results.profiles = PROFILES;

  for (const id of jobs) {
    const mod = await import(`./jobs/${readdirSync(join(BENCH, "jobs")).find((f) => f.startsWith(`${id}-`))}`);
    const work = join(workRoot, id);
    mkdirSync(work, { recursive: true });
    const started = Date.now();
    const load = loadavg()[0];
    log(`${mod.title}: starting (${profile}: ${JSON.stringify(params[id])})`);
    let out;
    try {
      out = await mod.run({ root: ROOT, work, params: params[id], tools, log });
    } catch (err) {
      log(`${mod.title} failed: ${/** @type {Error} */ (err).stack}`);
      out = { params: params[id], error: /** @type {Error} */ (err).message, results: [] };
    }
    results.jobs[id] = { title: mod.title, profile, ranAt: new Date(started).toISOString(), wallS: Math.round((Date.now() - started) / 1000), loadAvgBefore: Number(load.toFixed(2)), loadAvgAfter: Number(loadavg()[0].toFixed(2)), ...out };
    // Write after every job, so a long run that is interrupted keeps what it measured.
    writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
    log(`${mod.title}: done in ${results.jobs[id].wallS} s`);
  }
  writeReport(results);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
