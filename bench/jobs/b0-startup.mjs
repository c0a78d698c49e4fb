// @ts-check
/**
 * B0 start-up: how long a short-lived command takes from exec to exit, against the floor of the
 * runtime it is written in, in the same run:
 *
 * - under each Node runtime: `node -e 0` (the floor), `emissary --version`, `emissary --help`,
 *   and `emissary once` on one template over one file secret;
 * - `consul-template -once` on the same one template (`{{ file }}`), and `consul-template -version`;
 * - the original Go emissary (when `EMISSARY_ORIGINAL_BIN` is set) on one template; its only
 *   sources are AWS and HTTP (`insecure`), so its secret comes from an HTTP server on 127.0.0.1
 *   in this process, and with no template at all (it has no --version or --help flag);
 * - `/bin/true`, the cost of the harness itself (spawning `nice` and GNU time).
 *
 * Every command runs `warmup` times unmeasured, then `runs` times; the commands take turns in a
 * shuffled order each round, so a burst of load on the shared machine hits them all alike. Wall
 * time is measured here (monotonic clock, spawn to exit); peak RSS and CPU come from GNU time.
 * Every run of a one-template command must have written the expected file.
 * @module
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { freshDir, writeConsulTemplateConfig, writeEmissaryTemplates } from "../lib/fixtures.mjs";
import { timedRun } from "../lib/proc.mjs";
import { median, summarize } from "../lib/stats.mjs";

export const id = "b0";
export const title = "B0 start-up";

/**
 * @typedef {object} Case
 * @property {string} tool - "node", "emissary", "consul-template", "emissary (original, Go)", "/bin/true"
 * @property {string} what - "node -e 0", "--version", "--help", "once", "-version", "no templates", "true"
 * @property {string} [node] - the Node version running it
 * @property {string} cmd
 * @property {string[]} args
 * @property {NodeJS.ProcessEnv} [env]
 * @property {string} [dest] - a destination the run must write
 * @property {string} [expect] - its content
 */

/**
 * @param {import("../run.mjs").JobContext} ctx
 */
export async function run(ctx) {
  const { runs, warmup } = ctx.params;
  const dir = freshDir(ctx.work);
  const secret = join(dir, "secret");
  writeFileSync(secret, "b0-secret-value");
  const expect = 'key = "b0-secret-value"\n';
  /** @type {Case[]} */
  const cases = [{ tool: "/bin/true", what: "true", cmd: "/bin/true", args: [] }];
  /** @type {any[]} */
  const na = [];

  for (const em of ctx.tools.emissaries) {
    if (!em.available) {
      na.push({ tool: em.name, node: em.nodeVersion ?? `node ${em.nodeKey}`, what: "once", na: em.reason });
      continue;
    }
    const node = em.node ?? process.execPath;
    const tag = `node${em.nodeKey}`;
    const tpl = join(dir, `emissary-${tag}`, "tpl");
    const dest = join(dir, `emissary-${tag}`, "out", "one.conf");
    writeEmissaryTemplates(tpl, [{ file: "one.tpl", dest, secrets: { s: `file:${secret}` }, body: 'key = "{{s}}"\n' }]);
    cases.push(
      { tool: "node", what: "node -e 0", node: em.nodeVersion, cmd: node, args: ["-e", "0"] },
      { tool: "emissary", what: "--version", node: em.nodeVersion, cmd: node, args: [em.bin ?? "", "--version"] },
      { tool: "emissary", what: "--help", node: em.nodeVersion, cmd: node, args: [em.bin ?? "", "--help"] },
      { tool: "emissary", what: "once", node: em.nodeVersion, cmd: node, args: [em.bin ?? "", "once", "--templates", tpl], dest, expect },
    );
  }

  const ct = ctx.tools.consulTemplate;
  if (ct.available) {
    const ctDir = join(dir, "consul-template");
    mkdirSync(ctDir, { recursive: true });
    const source = join(ctDir, "one.ctmpl");
    const dest = join(ctDir, "out", "one.conf");
    writeFileSync(source, `key = "{{ file ${JSON.stringify(secret)} }}"\n`);
    writeConsulTemplateConfig(join(ctDir, "config.hcl"), { templates: [{ source, dest }] });
    cases.push(
      { tool: ct.name, what: "-version", cmd: ct.bin ?? "", args: ["-version"] },
      { tool: ct.name, what: "once", cmd: ct.bin ?? "", args: ["-once", "-config", join(ctDir, "config.hcl")], dest, expect },
    );
  } else {
    na.push({ tool: ct.name, what: "once", na: ct.reason });
  }

  const orig = ctx.tools.original;
  /** @type {import("node:http").Server | undefined} */
  let server;
  if (orig.available) {
    // Its `insecure` source GETs <base>/<id>; answer the one secret, from loopback only.
    server = createServer((req, res) => {
      if (req.url === "/b0") res.end("b0-secret-value\n");
      else res.writeHead(404).end();
    });
    await new Promise((resolve) => server?.listen(0, "127.0.0.1", () => resolve(undefined)));
    const addr = /** @type {import("node:net").AddressInfo} */ (server.address());
    const oDir = join(dir, "original");
    const tplDir = join(oDir, "tpl");
    const empty = join(oDir, "empty");
    mkdirSync(tplDir, { recursive: true });
    mkdirSync(empty, { recursive: true });
    const dest = join(oDir, "out", "one.conf");
    writeFileSync(join(tplDir, "one.tpl"), `---\nmode: 0600\ndest: ${dest}\n---\nkey = "{{poll "insecure" "b0"}}"\n`);
    writeFileSync(join(oDir, "urlfile"), `http://127.0.0.1:${addr.port}/\n`);
    // AWS_EC2_METADATA_DISABLED: its awssm source asks the EC2 metadata service for a region at
    // start-up; that address is not on this machine, so the SDK is told not to.
    const env = { ...process.env, EMISSARY_INSECURE_URLFILE: join(oDir, "urlfile"), AWS_EC2_METADATA_DISABLED: "true", AWS_REGION: "us-east-1" };
    cases.push(
      { tool: orig.name, what: "no templates", cmd: orig.bin ?? "", args: [], env: { ...env, EMISSARY_TPL_DIR: empty } },
      { tool: orig.name, what: "once", cmd: orig.bin ?? "", args: [], env: { ...env, EMISSARY_TPL_DIR: tplDir }, dest, expect: expect.trimEnd() },
    );
  } else {
    na.push({ tool: orig.name, what: "once", na: orig.reason });
  }

  /** @type {Map<Case, { wallMs: number, peakRssMB: number, cpuMs: number, ok: boolean }[]>} */
  const samples = new Map(cases.map((c) => [c, []]));
  try {
    for (let round = 0; round < warmup + runs; round++) {
      for (const c of shuffled(cases)) {
        if (c.dest) rmSync(c.dest, { force: true });
        const logFile = join(dir, `${c.tool.replace(/[^\w.-]+/g, "_")}-${c.node ?? "go"}-${c.what.replace(/[^\w]+/g, "_")}.log`);
        const r = await timedRun({ cmd: c.cmd, args: c.args, cwd: dir, env: c.env ?? process.env, logFile, timeoutMs: 60_000 });
        let ok = r.code === 0;
        if (ok && c.dest) {
          try {
            ok = readFileSync(c.dest, "utf8").trimEnd() === (c.expect ?? "").trimEnd();
          } catch {
            ok = false;
          }
        }
        if (round >= warmup) samples.get(c)?.push({ wallMs: r.wallMs, peakRssMB: r.peakRssMB, cpuMs: (r.userS + r.sysS) * 1000, ok });
      }
    }
  } finally {
    await new Promise((resolve) => (server ? server.close(() => resolve(undefined)) : resolve(undefined)));
  }

  const results = cases.map((c) => {
    const all = samples.get(c) ?? [];
    const ok = all.filter((s) => s.ok);
    const wall = summarize(ok.map((s) => s.wallMs), 1);
    const out = {
      tool: c.tool,
      what: c.what,
      ...(c.node ? { node: c.node } : {}),
      wallMs: wall,
      peakRssMB: ok.length ? Number(median(ok.map((s) => s.peakRssMB)).toFixed(1)) : NaN,
      cpuMs: ok.length ? Math.round(median(ok.map((s) => s.cpuMs))) : NaN,
      okRuns: ok.length,
      runs: all.length,
      ...(ok.length < all.length ? { error: `${all.length - ok.length} of ${all.length} runs failed or wrote a wrong file; see ${dir}` } : {}),
    };
    ctx.log(`B0 ${c.tool}${c.node ? ` (node ${c.node})` : ""} ${c.what}: p50 ${wall.p50} ms, peak RSS ${out.peakRssMB} MB (${ok.length}/${all.length} ok)`);
    return out;
  });
  return { params: { runs, warmup }, results: [...results, ...na] };
}

/**
 * A copy of `xs` in random order (Fisher–Yates).
 * @template T
 * @param {readonly T[]} xs
 * @returns {T[]}
 */
function shuffled(xs) {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
