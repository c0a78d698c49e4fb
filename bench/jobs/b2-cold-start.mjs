// @ts-check
/**
 * B2 cold start: N templates over N file secrets, destinations absent. Each tool runs its
 * one-shot mode (`emissary once`, `consul-template -once`) under GNU time: wall time from exec to
 * exit (so: start, read every secret, render, write every file atomically, exit) and peak RSS.
 * Every destination is checked afterwards. Repeated `runs` times; the median wall time and the
 * largest peak RSS are reported.
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
  for (const tool of [ctx.tools.emissary, ctx.tools.consulTemplate, ctx.tools.original]) {
    if (!tool.available) {
      results.push({ tool: tool.name, na: tool.reason });
      continue;
    }
    if (tool === ctx.tools.original) {
      results.push({ tool: tool.name, na: "installed but not driven: its only backends are awssm and insecure (HTTP), not files; add an HTTP variant of B2 to compare it" });
      continue;
    }
    results.push(await measure(ctx, tool, n, runs));
  }
  return { params: { templates: n, secrets: n, runs }, results };
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 * @param {import("../lib/tools.mjs").ToolInfo} tool
 * @param {number} n
 * @param {number} runs
 */
async function measure(ctx, tool, n, runs) {
  const isEmissary = tool === ctx.tools.emissary;
  const dir = freshDir(join(ctx.work, isEmissary ? "emissary" : "consul-template"));
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
      res = await timedRun({ cmd: process.execPath, args: [tool.bin ?? "", "once", "--templates", tpl, "--timeout", "5m"], cwd: dir, logFile });
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
    samples.push({ wallS: res.wallS, peakRssMB: Number(res.peakRssMB.toFixed(1)), cpuS: Number((res.userS + res.sysS).toFixed(2)), files, code: res.code });
    ctx.log(`B2 ${tool.name} run ${r + 1}/${runs}: ${res.wallS} s, peak RSS ${res.peakRssMB.toFixed(1)} MB, ${files}/${n} files, exit ${res.code}`);
  }
  const ok = samples.filter((s) => s.code === 0 && s.files === n);
  return {
    tool: tool.name,
    wallS: ok.length ? median(ok.map((s) => s.wallS)) : NaN,
    peakRssMB: ok.length ? Math.max(...ok.map((s) => s.peakRssMB)) : NaN,
    cpuS: ok.length ? median(ok.map((s) => s.cpuS)) : NaN,
    okRuns: ok.length,
    samples,
    ...(ok.length < samples.length ? { error: `${samples.length - ok.length} run(s) failed or wrote wrong files; see ${dir}/run-*.log` } : {}),
  };
}
