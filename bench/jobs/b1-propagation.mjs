// @ts-check
/**
 * B1 propagation: a file secret changes N times; each time, measure from the atomic rename of
 * the secret file until the command run after the write has copied the new destination
 * (so: detected, rendered, written, command finished). emissary uses `file:` (inotify);
 * consul-template `{{ file "…" }}` (which stats the file every 2 s).
 *
 * Between changes the job sleeps a random time, uniform in [0, gapMs], the same for every tool:
 * real changes arrive at random moments relative to a poller's cycle, and without the random gap
 * a poller would always be measured at the same phase.
 * @module
 */
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { nodeOf } from "../lib/tools.mjs";
import { freshDir, writeAtomic, writeEmissaryTemplates, writeConsulTemplateConfig } from "../lib/fixtures.mjs";
import { startTool, stopTool } from "../lib/proc.mjs";
import { summarize } from "../lib/stats.mjs";
import { FileWaiter } from "../lib/watch-file.mjs";
import { writeFileSync, mkdirSync } from "node:fs";

export const id = "b1";
export const title = "B1 propagation";

/**
 * @param {import("../run.mjs").JobContext} ctx
 */
export async function run(ctx) {
  const { changes, gapMs, timeoutMs } = ctx.params;
  const results = [];
  for (const tool of [...ctx.tools.emissaries, ctx.tools.consulTemplate, ctx.tools.original]) {
    if (tool === ctx.tools.original) {
      // Inherent to the tool, installable or not.
      results.push({ tool: tool.name, na: "it renders once and exits; it does not watch secrets, so there is no propagation to measure" });
      continue;
    }
    if (!tool.available) {
      results.push({ tool: tool.name, ...nodeOf(tool), na: tool.reason });
      continue;
    }
    ctx.log(`B1 ${tool.name}${tool.nodeVersion ? ` (node ${tool.nodeVersion})` : ""}: ${changes} changes`);
    results.push(await measure(ctx, tool, { changes, gapMs, timeoutMs }));
  }
  return { params: { changes, gapMs, timeoutMs }, results };
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 * @param {import("../lib/tools.mjs").ToolInfo} tool
 * @param {{ changes: number, gapMs: number, timeoutMs: number }} p
 */
async function measure(ctx, tool, p) {
  const isEmissary = tool.name === "emissary";
  const dir = freshDir(join(ctx.work, isEmissary ? `emissary-node${tool.nodeKey}` : "consul-template"));
  const secret = join(dir, "secrets", "b1-secret");
  const dest = join(dir, "out", "b1.conf");
  const done = join(dir, "done", "b1.conf");
  for (const d of ["secrets", "out", "done", "tpl"]) mkdirSync(join(dir, d), { recursive: true });
  writeAtomic(secret, "rev-0");
  const command = ["cp", dest, done];
  /** @type {import("node:child_process").ChildProcess} */
  let child;
  const logFile = join(dir, "tool.log");
  if (isEmissary) {
    writeEmissaryTemplates(join(dir, "tpl"), [{ file: "b1.tpl", dest, command, secrets: { s: `file:${secret}` }, body: "value={{s}}\n" }]);
    child = startTool({ cmd: tool.node ?? process.execPath, args: [tool.bin ?? "", "run", "--templates", join(dir, "tpl")], logFile, cwd: dir });
  } else {
    const source = join(dir, "tpl", "b1.ctmpl");
    writeFileSync(source, `value={{ file ${JSON.stringify(secret)} }}\n`);
    writeConsulTemplateConfig(join(dir, "config.hcl"), { templates: [{ source, dest, command }] });
    child = startTool({ cmd: tool.bin ?? "", args: ["-config", join(dir, "config.hcl")], logFile, cwd: dir });
  }
  const waiter = new FileWaiter(done);
  /** @type {number[]} */
  const latencies = [];
  let viaPoll = 0;
  let failures = 0;
  /** @type {string | undefined} */
  let error;
  try {
    await waiter.until("value=rev-0\n", 60_000);
    for (let i = 1; i <= p.changes; i++) {
      await sleep(Math.random() * p.gapMs);
      const value = `rev-${i}-${randomBytes(4).toString("hex")}`;
      const seen = waiter.until(`value=${value}\n`, p.timeoutMs);
      const t0 = performance.now();
      writeAtomic(secret, value);
      try {
        const r = await seen;
        latencies.push(r.t - t0);
        if (r.viaPoll) viaPoll++;
      } catch {
        failures++;
        if (failures >= 3) throw new Error(`${failures} changes were not propagated within ${p.timeoutMs} ms`);
      }
    }
  } catch (err) {
    error = /** @type {Error} */ (err).message;
  } finally {
    waiter.close();
    await stopTool(child);
  }
  const s = summarize(latencies);
  ctx.log(`B1 ${tool.name}${tool.nodeVersion ? ` (node ${tool.nodeVersion})` : ""}: p50 ${s.p50} ms, p99 ${s.p99} ms (${s.n} samples)`);
  return { tool: tool.name, ...nodeOf(tool), latencyMs: s, viaPoll, failures, ...(error ? { error } : {}), log: logFile };
}
