// @ts-check
/**
 * B5 fleet: N agents (the real library, one process; see bench/lib/fleet-agents.mjs) boot at
 * uniformly random moments within `bootSeconds` against ONE AWS Secrets Manager fake. Each agent
 * has `templatesPerAgent` templates over `secretsPerAgent` secrets (the same secret names on
 * every agent, as in a fleet sharing one role). When every agent has written every file, one
 * secret used by every template is rotated; the job waits until every agent has rewritten its
 * files. Reported: requests per second at the fake (peak of 1 s buckets and mean, over the whole
 * run and over the boot window), requests per agent, and how long convergence took.
 *
 * Convergence is bounded by the refresh interval (each agent re-checks with DescribeSecret every
 * `refresh` ± 10%), so the job sets `backends.awssm.refresh` to `refresh` — with the default 1 h it
 * would take an hour.
 * @module
 */
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeAwsSm } from "../lib/fake-awssm.mjs";
import { freshDir, writeEmissaryTemplates } from "../lib/fixtures.mjs";
import { procStats, stopTool, waitFor } from "../lib/proc.mjs";
import { bucketCounts, peakAndMean, summarize } from "../lib/stats.mjs";
import { durationMs } from "./b4-backend-calls.mjs";

export const id = "b5";
export const title = "B5 fleet";

/**
 * @param {import("../run.mjs").JobContext} ctx
 */
export async function run(ctx) {
  const { agents: N, bootSeconds, refresh, secretsPerAgent: S, templatesPerAgent: T } = ctx.params;
  const R = durationMs(refresh);
  const params = { agents: N, bootSeconds, refresh, secretsPerAgent: S, templatesPerAgent: T };
  const aws = await FakeAwsSm.start();
  const names = Array.from({ length: S }, (_, k) => `fleet/s${k}`);
  for (const n of names) aws.put(n, JSON.stringify({ value: `${n}-v1` }));
  // Template j names secrets j and j+1 (mod S); secret 1 ("rotated") is in every template when S ≤ 3 and T ≤ 2.
  const rotated = names[1 % S];

  const work = freshDir(join(ctx.work, "agents"));
  for (let i = 0; i < N; i++) {
    const out = join(work, `a${i}`, "out");
    mkdirSync(out, { recursive: true });
    writeEmissaryTemplates(
      join(work, `a${i}`, "tpl"),
      Array.from({ length: T }, (_, j) => ({
        file: `t${j}.tpl`,
        dest: join(out, `t${j}.conf`),
        secrets: { a: `awssm:${names[j % S]}#value`, b: `awssm:${names[(j + 1) % S]}#value` },
        body: `a = "{{a}}"\nb = "{{b}}"\n`,
      })),
    );
  }
  const config = join(ctx.work, "fleet.yaml");
  writeFileSync(config, `backends:\n  awssm:\n    region: us-east-1\n    endpoint: ${JSON.stringify(aws.endpoint)}\n    refresh: ${refresh}\n`);

  const script = join(dirname(fileURLToPath(import.meta.url)), "../lib/fleet-agents.mjs");
  const env = { ...process.env, AWS_ACCESS_KEY_ID: "AKIDBENCH", AWS_SECRET_ACCESS_KEY: "bench-not-a-secret", AWS_EC2_METADATA_DISABLED: "true" };
  // The agents' own output (the AWS SDK's Node version notice, crashes) goes to a log file.
  const logFd = openSync(join(ctx.work, "agents.log"), "w");
  const child = spawn("nice", ["-n", "5", process.execPath, "--max-old-space-size=4096", script], { env, stdio: ["ignore", logFd, logFd, "ipc"] });
  closeSync(logFd);
  /** @type {Map<number, Map<string, number>>} */
  const writes = new Map();
  let started = 0;
  /** @type {string[]} */
  const errors = [];
  let rotatedAt = Infinity;
  /** @type {Map<number, Set<string>>} */
  const rewritten = new Map();
  /** @type {Map<number, number>} */
  const convergedAt = new Map();
  child.on("message", (/** @type {any} */ m) => {
    if (m.type === "started") started++;
    else if (m.type === "error") errors.push(`agent ${m.i}: ${m.message}`);
    else if (m.type === "write") {
      if (m.t >= rotatedAt) {
        const set = rewritten.get(m.i) ?? new Set();
        set.add(m.template);
        rewritten.set(m.i, set);
        if (set.size === T && !convergedAt.has(m.i)) convergedAt.set(m.i, m.t);
      } else {
        const w = writes.get(m.i) ?? new Map();
        w.set(m.template, m.t);
        writes.set(m.i, w);
      }
    }
  });
  const t0 = Date.now();
  child.send({ type: "go", agents: N, bootSeconds, root: ctx.root, work, config });
  let maxRss = 0;
  const sampler = setInterval(() => {
    const s = child.pid ? procStats(child.pid) : undefined;
    if (s) maxRss = Math.max(maxRss, s.rssMB);
  }, 1000);
  try {
    await waitFor(() => errors.length > 0 || [...writes.values()].filter((w) => w.size === T).length === N, {
      timeoutMs: (bootSeconds + 120) * 1000,
      intervalMs: 250,
      what: `${N} agents to write their files`,
    });
    if (errors.length) throw new Error(`${errors.length} agent(s) failed: ${errors[0]}`);
    const readyS = (Math.max(...[...writes.values()].flatMap((w) => [...w.values()])) - t0) / 1000;
    ctx.log(`B5: ${N} agents booted and wrote their files by ${readyS.toFixed(1)} s; ${aws.calls.length} requests so far`);
    await sleep(5_000);
    rotatedAt = Date.now();
    aws.put(rotated, JSON.stringify({ value: `${rotated}-v2` }));
    ctx.log(`B5: rotated ${rotated}; waiting for every agent to rewrite its files (refresh ${refresh})`);
    await waitFor(() => convergedAt.size === N, { timeoutMs: R * 1.1 + 120_000, intervalMs: 250, what: "every agent to converge after the rotation" });
    const tEnd = Date.now();
    const conv = [...convergedAt.values()].map((t) => (t - rotatedAt) / 1000);
    const times = aws.calls.map((c) => c.t);
    const whole = peakAndMean(bucketCounts(times, { startMs: t0, endMs: tEnd }));
    const boot = peakAndMean(bucketCounts(times, { startMs: t0, endMs: t0 + bootSeconds * 1000 }));
    const afterBoot = peakAndMean(bucketCounts(times, { startMs: t0 + bootSeconds * 1000, endMs: tEnd }));
    // At fleet rates of tens per second, 1 s buckets carry Poisson noise (σ ≈ √mean); 10 s buckets show the shape.
    const whole10 = peakAndMean(bucketCounts(times, { startMs: t0, endMs: tEnd, bucketMs: 10_000 }), 10_000);
    /** @type {Record<string, number>} */
    const byOp = {};
    for (const c of aws.calls) byOp[c.op] = (byOp[c.op] ?? 0) + 1;
    const cpu = child.pid ? procStats(child.pid)?.cpuS : undefined;
    const result = {
      tool: ctx.tools.emissary.name,
      node: process.version,
      started,
      readyS: Number(readyS.toFixed(1)),
      rotatedAtS: Number(((rotatedAt - t0) / 1000).toFixed(1)),
      windowS: Number(((tEnd - t0) / 1000).toFixed(1)),
      requests: aws.calls.length,
      byOp,
      requestsPerAgent: Number((aws.calls.length / N).toFixed(2)),
      rps: whole,
      rps10s: whole10,
      rpsBoot: boot,
      rpsAfterBoot: afterBoot,
      series: bucketCounts(times, { startMs: t0, endMs: tEnd }),
      convergeS: summarize(conv, 1),
      agentProcess: { maxRssMB: Number(maxRss.toFixed(0)), cpuS: cpu === undefined ? null : Number(cpu.toFixed(1)) },
    };
    ctx.log(`B5: converged in ${result.convergeS.max} s (p50 ${result.convergeS.p50} s); rps peak ${whole.peak}, mean ${whole.mean}`);
    return { params, results: [result] };
  } catch (err) {
    return { params, results: [{ tool: ctx.tools.emissary.name, error: /** @type {Error} */ (err).message, requests: aws.calls.length }] };
  } finally {
    clearInterval(sampler);
    if (child.connected) child.send({ type: "stop" });
    await stopTool(child, 30_000);
    await aws.close();
  }
}
