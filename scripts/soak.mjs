#!/usr/bin/env node
/**
 * Soak test for emissary (not part of `npm test`): runs the built daemon for a long time with many
 * templates and a secret rotation every second, and reports RSS, heap, CPU and file-descriptor
 * drift, and writes and commands counted against what was expected.
 *
 *   npm run build && node scripts/soak.mjs --duration 30m --templates 200 --report docs/soak-30m.md
 *
 * Setup: N templates in G groups of 10. Each group has its own file secret and its own reload
 * command (shared by the group's templates, so it runs once per rotation); every template also
 * uses one http secret (served here, re-fetched every 10s) that never changes. Every `--interval`
 * the next group's secret rotates (round robin), so each rotation must cause exactly 10 writes
 * and 1 command. Every value contains "CANARY"; the daemon's output is searched for it.
 *
 * Options: --duration (Go duration, default 30m), --templates (default 200, a multiple of 10),
 * --interval (default 1s), --sample (default 10s), --report FILE (markdown; stdout otherwise),
 * --keep (keep the work directory), --no-commands (templates without a command: to tell the
 * daemon's own memory from what running a process a second costs).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "dist/src/cli.js");

// ---------- arguments ----------
function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
}
function ms(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`bad duration ${text} (use e.g. 90s, 5m, 1h)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
}
const DURATION = ms(arg("duration", "30m"));
const N = Number(arg("templates", "200"));
const INTERVAL = ms(arg("interval", "1s"));
const SAMPLE = ms(arg("sample", "10s"));
const REPORT = arg("report", undefined);
const KEEP = process.argv.includes("--keep");
const COMMANDS = !process.argv.includes("--no-commands");
const GROUP = 10;
if (!Number.isInteger(N) || N <= 0 || N % GROUP !== 0) throw new Error("--templates must be a positive multiple of 10");
const GROUPS = N / GROUP;
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);

const canary = (label) => `${label}-CANARY-${randomBytes(6).toString("hex")}`;
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// ---------- setup ----------
const work = mkdtempSync(join(tmpdir(), "emissary-soak-"));
for (const d of ["tpl", "secrets", "out", "runs"]) mkdirSync(join(work, d));
const groupValue = [];
function writeSecret(g) {
  const v = canary(`g${g}`);
  writeFileSync(join(work, "secrets", `g${g}.next`), v);
  renameSync(join(work, "secrets", `g${g}.next`), join(work, "secrets", `g${g}`));
  groupValue[g] = v;
}
for (let g = 0; g < GROUPS; g++) writeSecret(g);
const sharedValue = canary("shared");
let httpHits = 0;
const http = createServer((req, res) => {
  httpHits++;
  if (req.url === "/shared") res.writeHead(200, { "content-type": "text/plain" }).end(sharedValue);
  else res.writeHead(404).end();
});
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const httpUrl = `http://127.0.0.1:${http.address().port}`;
for (let i = 0; i < N; i++) {
  const g = i % GROUPS;
  writeFileSync(
    join(work, "tpl", `t${String(i).padStart(4, "0")}.tpl`),
    `---\ndest: ${join(work, "out", `t${i}.conf`)}\nrefresh: 10s\n${COMMANDS ? `command: ["/bin/sh", "-c", "echo 1 >> ${join(work, "runs", `g${g}`)}"]\n` : ""}secrets:\n  s: file:../secrets/g${g}\n  h: http:shared\n---\ngroup=${g}\nindex=${i}\nsecret={{s}}\nshared={{h}}\n`,
  );
}
const expected = (i) => `group=${i % GROUPS}\nindex=${i}\nsecret=${groupValue[i % GROUPS]}\nshared=${sharedValue}\n`;
const statusPort = await new Promise((r) => {
  const s = createNetServer();
  s.listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => r(p));
  });
});

// ---------- daemon ----------
const logFile = join(work, "emissary.log");
const log = createWriteStream(logFile);
const counts = { writes: 0, commandsOk: 0, commandsFailed: 0, warn: 0, error: 0, canaryLines: 0, lines: 0 };
const daemon = spawn(process.execPath, [CLI, "run", "--templates", join(work, "tpl"), "--status-addr", `127.0.0.1:${statusPort}`], {
  env: { ...process.env, EMISSARY_HTTP_URL: httpUrl, EMISSARY_LOG_LEVEL: "info" },
  stdio: ["ignore", "pipe", "pipe"],
});
let buf = "";
const onLine = (line) => {
  counts.lines++;
  log.write(line + "\n");
  if (line.includes("CANARY")) counts.canaryLines++;
  let l;
  try {
    l = JSON.parse(line);
  } catch {
    return;
  }
  if (l.level === 40) counts.warn++;
  if (l.level >= 50) counts.error++;
  if (l.msg === "wrote destination") {
    counts.writes++;
    if (l.commandRan) counts.commandsOk++;
  } else if (l.msg === "wrote destination; command failed") {
    counts.writes++;
    counts.commandsFailed++;
  }
};
for (const stream of [daemon.stdout, daemon.stderr]) {
  stream.setEncoding("utf8");
  stream.on("data", (c) => {
    buf += c;
    const parts = buf.split("\n");
    buf = parts.pop();
    for (const p of parts) onLine(p);
  });
}
const exited = new Promise((r) => daemon.on("exit", (code, signal) => r({ code, signal })));
// Whatever happens to this script, the daemon does not outlive it.
process.on("exit", () => {
  if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGKILL");
});

// ---------- sampling ----------
const CLK_TCK = 100; // Linux USER_HZ
function procSample() {
  const stat = readFileSync(`/proc/${daemon.pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSec = (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.pid}/status`, "utf8"))[1]);
  const fds = readdirSync(`/proc/${daemon.pid}/fd`).length;
  return { cpuSec, rssMiB: rssKiB / 1024, fds };
}
/** V8 heap used and committed, and memory outside the heap (Buffers), from the daemon's /metrics. */
async function heapMiB() {
  try {
    const text = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
    const get = (name) => {
      const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
      return m ? Number(m[1]) / 2 ** 20 : undefined;
    };
    return { heapMiB: get("nodejs_heap_size_used_bytes"), heapTotalMiB: get("nodejs_heap_size_total_bytes"), externalMiB: get("nodejs_external_memory_bytes") };
  } catch {
    return {};
  }
}

async function waitFor(cond, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
const read = (p) => (existsSync(p) ? readFileSync(p, "utf8") : undefined);
const allCorrect = () => [...Array(N).keys()].every((i) => read(join(work, "out", `t${i}.conf`)) === expected(i));
const runsOf = () => [...Array(GROUPS).keys()].reduce((a, g) => a + (read(join(work, "runs", `g${g}`)) ?? "").split("\n").filter(Boolean).length, 0);

process.stderr.write(`soak: ${N} templates, ${GROUPS} groups, a rotation every ${INTERVAL}ms for ${DURATION / 1000}s; work dir ${work}\n`);
await waitFor(allCorrect, 120_000, "first render of every template");
if (COMMANDS) await waitFor(() => runsOf() >= GROUPS, 60_000, "first commands");
await sleep(3000);
const base = { writes: counts.writes, commands: runsOf(), logged: counts.commandsOk };
const samples = [];
const t0 = Date.now();
const takeSample = async () => {
  const p = procSample();
  samples.push({ t: (Date.now() - t0) / 1000, ...p, ...(await heapMiB()) });
};
await takeSample();

// ---------- rotation loop ----------
let rotations = 0;
let nextSample = t0 + SAMPLE;
let next = t0 + INTERVAL;
while (Date.now() - t0 < DURATION) {
  writeSecret(rotations % GROUPS);
  rotations++;
  if (Date.now() >= nextSample) {
    await takeSample();
    nextSample += SAMPLE;
    const s = samples.at(-1);
    process.stderr.write(`  t=${s.t.toFixed(0)}s rss=${s.rssMiB.toFixed(1)}MiB heap=${s.heapMiB?.toFixed(1)}/${s.heapTotalMiB?.toFixed(1)}MiB ext=${s.externalMiB?.toFixed(1)}MiB cpu=${s.cpuSec.toFixed(1)}s fds=${s.fds} rotations=${rotations} writes=${counts.writes - base.writes}\n`);
  }
  await sleep(Math.max(0, next - Date.now()));
  next += INTERVAL;
}
const rotatedFor = (Date.now() - t0) / 1000;
// Let the last rotations land, then stop.
await waitFor(allCorrect, 60_000, "the last rotations rendered").catch((e) => process.stderr.write(`${e.message}\n`));
await waitFor(() => runsOf() - base.commands >= (COMMANDS ? rotations : 0), 60_000, "the last commands").catch((e) => process.stderr.write(`${e.message}\n`));
await sleep(3000);
await takeSample();
const final = allCorrect();
daemon.kill("SIGTERM");
const exit = await exited;
log.end();
http.close();

// ---------- report ----------
const writes = counts.writes - base.writes;
const commands = runsOf() - base.commands;
const fit = (key) => {
  // Least-squares slope per hour over the samples after the first minute (warm-up excluded).
  const pts = samples.filter((s) => s.t >= Math.min(60, rotatedFor / 4) && s[key] !== undefined);
  if (pts.length < 2) return NaN;
  const mx = pts.reduce((a, s) => a + s.t, 0) / pts.length;
  const my = pts.reduce((a, s) => a + s[key], 0) / pts.length;
  const num = pts.reduce((a, s) => a + (s.t - mx) * (s[key] - my), 0);
  const den = pts.reduce((a, s) => a + (s.t - mx) ** 2, 0);
  return (num / den) * 3600;
};
const window = (from, to) => samples.filter((s) => s.t >= from && s.t <= to);
const cpuPct = (w) => (w.length < 2 ? NaN : ((w.at(-1).cpuSec - w[0].cpuSec) / (w.at(-1).t - w[0].t)) * 100);
const span = Math.min(300, rotatedFor / 3);
const first = window(0, span);
const last = window(rotatedFor - span, Infinity);
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const rss = samples.map((s) => s.rssMiB);
// RSS over time, for the report: every tenth sample.
const curve = samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 10)) === 0 || i === samples.length - 1).map((s) => `${(s.t / 60).toFixed(1)}m ${s.rssMiB.toFixed(0)}`).join(" · ");
const heaps = samples.map((s) => s.heapMiB).filter((h) => h !== undefined);
const expectedCommands = COMMANDS ? rotations : 0;
const ok = final && writes === rotations * GROUP && commands === expectedCommands && counts.commandsFailed === 0 && counts.canaryLines === 0 && exit.code === 0;

const report = `## Soak run: ${new Date(t0).toISOString()}

Command: \`node scripts/soak.mjs --duration ${arg("duration", "30m")} --templates ${N} --interval ${arg("interval", "1s")}${COMMANDS ? "" : " --no-commands"}\` (Node ${process.version}, ${process.platform}/${process.arch})

| | expected | counted |
|---|---|---|
| rotations (one every ${INTERVAL / 1000}s for ${rotatedFor.toFixed(0)}s) | | ${rotations} |
| writes (10 per rotation) | ${rotations * GROUP} | ${writes} |
| commands run (${COMMANDS ? "1 per rotation" : "none: --no-commands"}; counted by the commands themselves) | ${expectedCommands} | ${commands} |
| commands logged as failed | 0 | ${counts.commandsFailed} |
| every destination correct at the end | yes | ${final ? "yes" : "NO"} |
| log lines containing a secret value (CANARY) | 0 | ${counts.canaryLines} (of ${counts.lines}) |
| warnings / errors logged | | ${counts.warn} / ${counts.error} |
| http fetches of the shared secret (refresh 10s) | ~${Math.round(rotatedFor / 10)} | ${httpHits} |
| exit on SIGTERM | 0 | ${exit.code ?? exit.signal} |

| resource | start | end | min | max | drift (least squares, after warm-up) |
|---|---|---|---|---|---|
| RSS (MiB) | ${f1(rss[0])} | ${f1(rss.at(-1))} | ${f1(Math.min(...rss))} | ${f1(Math.max(...rss))} | ${f1(fit("rssMiB"))} MiB/hour |
| V8 heap used (MiB) | ${f1(heaps[0])} | ${f1(heaps.at(-1))} | ${f1(Math.min(...heaps))} | ${f1(Math.max(...heaps))} | ${f1(fit("heapMiB"))} MiB/hour |
| V8 heap committed (MiB) | ${f1(samples[0].heapTotalMiB)} | ${f1(samples.at(-1).heapTotalMiB)} | | | ${f1(fit("heapTotalMiB"))} MiB/hour |
| memory outside the V8 heap (MiB) | ${f1(samples[0].externalMiB)} | ${f1(samples.at(-1).externalMiB)} | | | ${f1(fit("externalMiB"))} MiB/hour |
| open file descriptors | ${samples[0].fds} | ${samples.at(-1).fds} | ${Math.min(...samples.map((s) => s.fds))} | ${Math.max(...samples.map((s) => s.fds))} | ${f1(fit("fds"))} /hour |
| CPU (% of one core) | ${f1(cpuPct(first))} (first ${span.toFixed(0)}s) | ${f1(cpuPct(last))} (last ${span.toFixed(0)}s) | | | ${f1(cpuPct(last) - cpuPct(first))} points |

RSS (MiB) over time: ${curve}

CPU time used in total: ${f1(samples.at(-1).cpuSec - samples[0].cpuSec)}s over ${rotatedFor.toFixed(0)}s. Samples every ${SAMPLE / 1000}s: ${samples.length}.

Result: **${ok ? "PASS" : "FAIL"}**
`;
if (REPORT) writeFileSync(REPORT, report);
process.stdout.write(report);
if (!KEEP) rmSync(work, { recursive: true, force: true });
else process.stderr.write(`work directory kept: ${work}\n`);
process.exitCode = ok ? 0 : 1;
