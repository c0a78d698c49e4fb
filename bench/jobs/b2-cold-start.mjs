// @ts-check
/**
 * B2 cold start: N templates over N file secrets, destinations absent. Each tool runs its
 * one-shot mode (`emissary once`, `consul-template -once`) under GNU time: wall time from exec to
 * exit (so: start, read every secret, render, write every file atomically, exit; measured with a
 * monotonic clock around the spawn) and peak RSS (GNU time). `node -e 0` is measured the same
 * way under each Node runtime, as the floor.
 * Every destination is checked afterwards. Repeated `runs` times; the median wall time and the
 * largest peak RSS are reported.
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nodeOf } from "../lib/tools.mjs";
import { freshDir, writeConsulTemplateConfig, writeEmissaryTemplates } from "../lib/fixtures.mjs";
import { timedRun } from "../lib/proc.mjs";
import { median } from "../lib/stats.mjs";

export const id = "b2";
export const title = "B2 cold start";

/**
 * @param {import("../run.mjs").JobContext} ctx
 */
export async function run(ctx) {
  const { templates: n, runs } = ctx.params;
  const results = [];
  for (const tool of [...ctx.tools.emissaries, ctx.tools.consulTemplate, ctx.tools.original]) {
    if (!tool.available) {
      results.push({ tool: tool.name, ...nodeOf(tool), na: tool.reason });
      continue;
    }
    if (tool === ctx.tools.original) {
      results.push({ tool: tool.name, na: "not driven in B2: its only sources are awssm and insecure (HTTP), not files (B0 runs it on one template over HTTP)" });
      continue;
    }
    results.push(await measure(ctx, tool, n, runs));
  }
  // The Node floor under GNU time, the same number of runs: what any Node program costs before it does anything.
  for (const em of ctx.tools.emissaries) {
    if (em.available) results.push(await nodeFloor(ctx, em, runs));
  }
  return { params: { templates: n, secrets: n, runs }, results };
}

/**
 * `node -e 0` under GNU time, `runs` times, with the Node that runs `em`.
 * @param {import("../run.mjs").JobContext} ctx
 * @param {import("../lib/tools.mjs").ToolInfo} em
 * @param {number} runs
 */
async function nodeFloor(ctx, em, runs) {
  const dir = freshDir(join(ctx.work, `node${em.nodeKey}`));
  const samples = [];
  for (let r = 0; r < runs; r++) {
    const res = await timedRun({ cmd: em.node ?? process.execPath, args: ["-e", "0"], cwd: dir, logFile: join(dir, "node.log") });
    samples.push({ wallS: Number((res.wallMs / 1000).toFixed(3)), peakRssMB: Number(res.peakRssMB.toFixed(1)), cpuS: Number((res.userS + res.sysS).toFixed(2)), code: res.code });
  }
  const ok = samples.filter((s) => s.code === 0);
  ctx.log(`B2 node -e 0 (node ${em.nodeVersion}): median ${median(ok.map((s) => s.wallS))} s, peak RSS ${Math.max(...ok.map((s) => s.peakRssMB))} MB`);
  return {
    tool: "node",
    what: "node -e 0",
    ...nodeOf(em),
    wallS: ok.length ? median(ok.map((s) => s.wallS)) : NaN,
    peakRssMB: ok.length ? Math.max(...ok.map((s) => s.peakRssMB)) : NaN,
    cpuS: ok.length ? median(ok.map((s) => s.cpuS)) : NaN,
    okRuns: ok.length,
    samples,
    ...(ok.length < samples.length ? { error: `${samples.length - ok.length} run(s) of node -e 0 failed` } : {}),
  };
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 * @param {import("../lib/tools.mjs").ToolInfo} tool
 * @param {number} n
 * @param {number} runs
 */
async function measure(ctx, tool, n, runs) {
  const isEmissary = tool.name === "emissary";
  const dir = freshDir(join(ctx.work, isEmissary ? `emissary-node${tool.nodeKey}` : "consul-template"));
  const secrets = join(dir, "secrets");
  const tpl = join(dir, "tpl");
  mkdirSync(secrets);
  mkdirSync(tpl);
  for (let i = 0; i < n; i++) writeFileSync(join(secrets, `s${i}`), `secret-value-${i}`);
  const destOf = (/** @type {number} */ i, /** @type {string} */ out) => join(out, `t${i}.conf`);
  /** @type {{ wallS: number, peakRssMB: number, cpuS: number, files: number, code: number | null }[]} */
  const samples = [];
  for (let r = 0; r < runs; r++) {
    const out = freshDir(join(dir, `out-${r}`));
    const logFile = join(dir, `run-${r}.log`);
    let res;
    if (isEmissary) {
      // Templates name a per-run destination directory, so every run starts with none of the files.
      freshDir(tpl);
      writeEmissaryTemplates(
        tpl,
        Array.from({ length: n }, (_, i) => ({ file: `t${i}.tpl`, dest: destOf(i, out), secrets: { s: `file:${join(secrets, `s${i}`)}` }, body: `key = "{{s}}"\n` })),
      );
      res = await timedRun({ cmd: tool.node ?? process.execPath, args: [tool.bin ?? "", "once", "--templates", tpl, "--timeout", "5m"], cwd: dir, logFile });
    } else {
      const templates = [];
      for (let i = 0; i < n; i++) {
        const source = join(tpl, `t${i}.ctmpl`);
        if (r === 0) writeFileSync(source, `key = "{{ file ${JSON.stringify(join(secrets, `s${i}`))} }}"\n`);
        templates.push({ source, dest: destOf(i, out) });
      }
      writeConsulTemplateConfig(join(dir, `config-${r}.hcl`), { templates });
      res = await timedRun({ cmd: tool.bin ?? "", args: ["-once", "-config", join(dir, `config-${r}.hcl`)], cwd: dir, logFile });
    }
    let files = 0;
    for (let i = 0; i < n; i++) {
      try {
        if (readFileSync(destOf(i, out), "utf8") === `key = "secret-value-${i}"\n`) files++;
      } catch {
        /* missing */
      }
    }
    samples.push({ wallS: Number((res.wallMs / 1000).toFixed(3)), peakRssMB: Number(res.peakRssMB.toFixed(1)), cpuS: Number((res.userS + res.sysS).toFixed(2)), files, code: res.code });
    ctx.log(`B2 ${tool.name}${tool.nodeVersion ? ` (node ${tool.nodeVersion})` : ""} run ${r + 1}/${runs}: ${res.wallS} s, peak RSS ${res.peakRssMB.toFixed(1)} MB, ${files}/${n} files, exit ${res.code}`);
  }
  const ok = samples.filter((s) => s.code === 0 && s.files === n);
  return {
    tool: tool.name,
    ...nodeOf(tool),
    wallS: ok.length ? median(ok.map((s) => s.wallS)) : NaN,
    peakRssMB: ok.length ? Math.max(...ok.map((s) => s.peakRssMB)) : NaN,
    cpuS: ok.length ? median(ok.map((s) => s.cpuS)) : NaN,
    okRuns: ok.length,
    samples,
    ...(ok.length < samples.length ? { error: `${samples.length - ok.length} run(s) failed or wrote wrong files; see ${dir}/run-*.log` } : {}),
  };
}
