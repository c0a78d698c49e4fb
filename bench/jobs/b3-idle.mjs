// @ts-check
/**
 * B3 idle: N templates over N file secrets; once every destination is written, nothing changes
 * for `seconds`, after `settle` seconds (default 5) for start-up work to end. Reported: CPU seconds the tool used during that idle window (user + system, all
 * threads, from /proc/<pid>/stat), RSS at the end and the highest RSS sampled each second.
 * The tools run side by side (each its own process and files), since an idle process barely
 * disturbs another and this halves the wall time. emissary runs under each Node runtime, and
 * beside it an idle `node` process of the same runtime (a timer and nothing else) is sampled over
 * a window of the same length: the floor any Node daemon starts from.
 * @module
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { nodeOf } from "../lib/tools.mjs";
import { freshDir, writeConsulTemplateConfig, writeEmissaryTemplates } from "../lib/fixtures.mjs";
import { pidOf, procStats, startTool, stopTool, waitFor } from "../lib/proc.mjs";

export const id = "b3";
export const title = "B3 idle";

/**
 * @param {import("../run.mjs").JobContext} ctx
 */
export async function run(ctx) {
  const { templates: n, seconds } = ctx.params;
  /** @type {any[]} */
  const results = [];
  const running = [];
  for (const tool of [...ctx.tools.emissaries, ctx.tools.consulTemplate, ctx.tools.original]) {
    if (tool === ctx.tools.original) {
      // Inherent to the tool, installable or not.
      results.push({ tool: tool.name, na: "it renders once and exits; it has no idle state" });
      continue;
    }
    if (!tool.available) {
      results.push({ tool: tool.name, ...nodeOf(tool), na: tool.reason });
      continue;
    }
    running.push(measure(ctx, tool, n, seconds));
  }
  for (const em of ctx.tools.emissaries) if (em.available) running.push(measureIdleNode(ctx, em, seconds));
  results.unshift(...(await Promise.all(running)));
  return { params: { templates: n, secrets: n, seconds, settle: ctx.params.settle ?? 5, backend: "file" }, results };
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 * @param {import("../lib/tools.mjs").ToolInfo} tool
 * @param {number} n
 * @param {number} seconds
 */
async function measure(ctx, tool, n, seconds) {
  const isEmissary = tool.name === "emissary";
  const dir = freshDir(join(ctx.work, isEmissary ? `emissary-node${tool.nodeKey}` : "consul-template"));
  const secrets = join(dir, "secrets");
  const tpl = join(dir, "tpl");
  const out = join(dir, "out");
  for (const d of [secrets, tpl, out]) mkdirSync(d);
  for (let i = 0; i < n; i++) writeFileSync(join(secrets, `s${i}`), `secret-value-${i}`);
  const logFile = join(dir, "tool.log");
  let child;
  if (isEmissary) {
    writeEmissaryTemplates(
      tpl,
      Array.from({ length: n }, (_, i) => ({ file: `t${i}.tpl`, dest: join(out, `t${i}.conf`), secrets: { s: `file:${join(secrets, `s${i}`)}` }, body: `key = "{{s}}"\n` })),
    );
    child = startTool({ cmd: tool.node ?? process.execPath, args: [tool.bin ?? "", "run", "--templates", tpl], cwd: dir, logFile });
  } else {
    const templates = [];
    for (let i = 0; i < n; i++) {
      const source = join(tpl, `t${i}.ctmpl`);
      writeFileSync(source, `key = "{{ file ${JSON.stringify(join(secrets, `s${i}`))} }}"\n`);
      templates.push({ source, dest: join(out, `t${i}.conf`) });
    }
    writeConsulTemplateConfig(join(dir, "config.hcl"), { templates });
    child = startTool({ cmd: tool.bin ?? "", args: ["-config", join(dir, "config.hcl")], cwd: dir, logFile });
  }
  const pid = pidOf(child);
  try {
    await waitFor(() => existsSync(join(out, `t${n - 1}.conf`)) && Array.from({ length: n }, (_, i) => existsSync(join(out, `t${i}.conf`))).every(Boolean), {
      timeoutMs: 120_000,
      intervalMs: 100,
      what: `${tool.name} to write ${n} files`,
    });
    // Let start-up work (JIT, GC, a first poll cycle) finish before the window opens.
    await sleep(1000 * (ctx.params.settle ?? 5));
    const w = await idleWindow(tool.name, pid, seconds);
    ctx.log(`B3 ${tool.name}${tool.nodeVersion ? ` (node ${tool.nodeVersion})` : ""}: ${w.cpuS.toFixed(2)} CPU s in ${w.windowS.toFixed(0)} s idle, RSS ${w.rssMB.toFixed(1)} MB`);
    return { tool: tool.name, ...nodeOf(tool), ...w };
  } catch (err) {
    return { tool: tool.name, ...nodeOf(tool), error: /** @type {Error} */ (err).message };
  } finally {
    await stopTool(child);
  }
}

/**
 * An idle Node process of the runtime that runs `em`: one long timer, nothing loaded. Sampled
 * like the tools, after the same settling time (`settle`, seconds; 5 unless set).
 * @param {import("../run.mjs").JobContext} ctx
 * @param {import("../lib/tools.mjs").ToolInfo} em
 * @param {number} seconds
 */
async function measureIdleNode(ctx, em, seconds) {
  const dir = freshDir(join(ctx.work, `node${em.nodeKey}-idle`));
  const child = startTool({ cmd: em.node ?? process.execPath, args: ["-e", "setInterval(() => {}, 2 ** 30)"], cwd: dir, logFile: join(dir, "node.log") });
  const pid = pidOf(child);
  try {
    await sleep(1000 * (ctx.params.settle ?? 5));
    const w = await idleWindow("node", pid, seconds);
    ctx.log(`B3 idle node ${em.nodeVersion}: ${w.cpuS.toFixed(2)} CPU s in ${w.windowS.toFixed(0)} s, RSS ${w.rssMB.toFixed(1)} MB`);
    return { tool: "node", what: "idle node", ...nodeOf(em), ...w };
  } catch (err) {
    return { tool: "node", what: "idle node", ...nodeOf(em), error: /** @type {Error} */ (err).message };
  } finally {
    await stopTool(child);
  }
}

/**
 * Samples a live process once a second for `seconds`: CPU used in the window, RSS at the end,
 * the highest RSS sampled, and the kernel's high-water mark.
 * @param {string} name - for errors
 * @param {number} pid
 * @param {number} seconds
 */
async function idleWindow(name, pid, seconds) {
  const start = procStats(pid);
  if (!start) throw new Error(`${name} exited before the idle window`);
  let maxRss = start.rssMB;
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(1000);
    const s = procStats(pid);
    if (!s) throw new Error(`${name} exited during the idle window`);
    maxRss = Math.max(maxRss, s.rssMB);
  }
  const end = procStats(pid);
  if (!end) throw new Error(`${name} exited during the idle window`);
  const windowS = (Date.now() - t0) / 1000;
  const cpuS = end.cpuS - start.cpuS;
  return {
    windowS: Number(windowS.toFixed(1)),
    cpuS: Number(cpuS.toFixed(2)),
    cpuPercent: Number(((100 * cpuS) / windowS).toFixed(3)),
    cpuSPerMin: Number(((60 * cpuS) / windowS).toFixed(3)),
    cpuAtStartS: Number(start.cpuS.toFixed(2)),
    rssMB: Number(end.rssMB.toFixed(1)),
    maxRssMB: Number(maxRss.toFixed(1)),
    peakRssMB: Number(end.hwmMB.toFixed(1)),
  };
}
