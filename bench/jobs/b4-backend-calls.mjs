// @ts-check
/**
 * B4 backend calls: T templates over S secrets (each template names two different secrets, so
 * every secret is used by 2T/S templates), for `seconds`, with one refresh interval R for every
 * tool. Counted at the server:
 * - Vault: emissary and consul-template against ONE counting Vault API (KV v2 at `secret/`),
 *   told apart by their tokens. consul-template re-reads a KV v2 secret (no lease) after
 *   `default_lease_duration` × (0.9 ± 0.05), so that is set to R; emissary's `backends.vault.refresh` is R.
 * - AWS Secrets Manager: emissary against a counting AWS fake (`backends.awssm.refresh` = R).
 *   The original Go emissary is counted from its source where it cannot be run (see the report).
 *
 * Everything runs side by side from the same start; the window is the whole run.
 * @module
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FakeAwsSm } from "../lib/fake-awssm.mjs";
import { FakeVault } from "../lib/fake-vault.mjs";
import { freshDir, writeConsulTemplateConfig, writeEmissaryTemplates } from "../lib/fixtures.mjs";
import { startTool, stopTool, waitFor } from "../lib/proc.mjs";
import { duplicateRequests } from "../lib/stats.mjs";

export const id = "b4";
export const title = "B4 backend calls";

/** Go-style duration ("30s", "5m", "1h") to ms. */
export function durationMs(/** @type {string} */ d) {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d.trim());
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[/** @type {"ms"|"s"|"m"|"h"} */ (m[2])];
}

/** The two secrets template i names: different for every i. */
export function secretsOf(/** @type {number} */ i, /** @type {number} */ s) {
  return [i % s, (i * 7 + 3) % s];
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 */
export async function run(ctx) {
  const { templates: T, secrets: S, seconds, refresh } = ctx.params;
  const R = durationMs(refresh);
  const vault = await FakeVault.start();
  const aws = await FakeAwsSm.start();
  for (let i = 0; i < S; i++) {
    vault.put(`app${i}`, { password: `vault-pass-${i}`, user: `u${i}` });
    aws.put(`app${i}`, JSON.stringify({ password: `aws-pass-${i}`, user: `u${i}` }));
  }
  const hasVault = existsSync(join(ctx.root, "dist/backends/vault.js"));
  /** @type {{ key: string, tool: string, node?: string, backend: string, token?: string, start: () => Promise<import("node:child_process").ChildProcess>, out: string }[]} */
  const runs = [];
  /** @type {any[]} */
  const results = [];
  const { emissary: em, consulTemplate: ct, original } = ctx.tools;

  if (hasVault) {
    runs.push({ key: "emissary-vault", tool: em.name, node: em.nodeVersion, backend: "vault", token: "emissary-token", out: "", start: async () => startEmissary(ctx, "vault", { vault }) });
  } else {
    results.push({ tool: em.name, backend: "vault", na: "dist/backends/vault.js is not built: the vault backend is not in this checkout yet" });
  }
  if (ct.available) runs.push({ key: "ct-vault", tool: ct.name, backend: "vault", token: "ct-token", out: "", start: async () => startConsulTemplate(ctx, vault) });
  else results.push({ tool: ct.name, backend: "vault", na: ct.reason });
  runs.push({ key: "emissary-awssm", tool: em.name, node: em.nodeVersion, backend: "awssm", out: "", start: async () => startEmissary(ctx, "awssm", { aws }) });
  results.push({ tool: ct.name, backend: "awssm", na: "consul-template has no AWS Secrets Manager source" });

  const t0 = Date.now();
  /** @type {Map<string, import("node:child_process").ChildProcess>} */
  const children = new Map();
  try {
    for (const r of runs) {
      r.out = join(ctx.work, r.key, "out");
      children.set(r.key, await r.start());
    }
    // Every destination written (or the tool died): then sit out the rest of the window.
    const firstPass = new Map();
    await Promise.all(
      runs.map(async (r) => {
        try {
          await waitFor(() => existsSync(join(r.out, `t${T - 1}.conf`)) && Array.from({ length: T }, (_, i) => existsSync(join(r.out, `t${i}.conf`))).every(Boolean), {
            timeoutMs: Math.max(60_000, seconds * 1000),
            intervalMs: 200,
            what: `${r.key} to write ${T} files`,
          });
          firstPass.set(r.key, (Date.now() - t0) / 1000);
        } catch (err) {
          firstPass.set(r.key, /** @type {Error} */ (err).message);
        }
      }),
    );
    const left = seconds * 1000 - (Date.now() - t0);
    ctx.log(`B4: first pass done (${JSON.stringify(Object.fromEntries(firstPass))}); counting for ${Math.round(left / 1000)} s more`);
    if (left > 0) await sleep(left);
    const windowS = (Date.now() - t0) / 1000;

    for (const r of runs) {
      const fp = firstPass.get(r.key);
      const base = { tool: r.tool, ...(r.node ? { node: r.node } : {}), backend: r.backend, windowS: Number(windowS.toFixed(1)), ...(typeof fp === "string" ? { error: fp } : { firstPassS: Number(fp.toFixed(1)) }) };
      if (r.backend === "vault") {
        const calls = vault.calls.filter((c) => c.token === r.token);
        /** @type {Map<string, number[]>} */
        const byKey = new Map();
        for (const c of calls) if (c.kind === "read") byKey.set(c.path, [...(byKey.get(c.path) ?? []), c.t]);
        const kinds = count(calls.map((c) => c.kind));
        results.push({ ...base, requests: calls.length, byKind: kinds, ...readStats(byKey, calls.filter((c) => c.t < t0 + R / 2).length, S, R, windowS, r.tool === ct.name) });
      } else {
        /** @type {Map<string, number[]>} */
        const byKey = new Map();
        for (const c of aws.calls) for (const sid of c.secretIds) byKey.set(sid, [...(byKey.get(sid) ?? []), c.t]);
        const kinds = count(aws.calls.map((c) => c.op));
        results.push({ ...base, requests: aws.calls.length, byKind: kinds, ...readStats(byKey, aws.calls.filter((c) => c.t < t0 + R / 2).length, S, R, windowS, false) });
      }
    }
  } finally {
    await Promise.all([...children.values()].map((c) => stopTool(c)));
    await vault.close();
    await aws.close();
  }
  results.push({
    tool: original.name,
    backend: "awssm",
    na: original.available ? "built (EMISSARY_ORIGINAL_BIN) but not run here: its aws-sdk-go v1.30 client reads no endpoint override from the environment, so it cannot be pointed at the loopback fake without changing its code" : original.reason,
    fromSource: {
      requestsPerPass: 2 * T,
      note: `not run. Its source (pkg/tmpl, pkg/secret/awssm) calls GetSecretValue once for every {{poll}} in every template, with no cache and no refresh: ${2 * T} requests for ${T} templates × 2 references, each time it runs`,
    },
  });
  for (const r of results) if (r.requests !== undefined) ctx.log(`B4 ${r.tool}/${r.backend}: ${r.requests} requests ${JSON.stringify(r.byKind)}, ${r.duplicates} duplicate(s)`);
  return { params: { templates: T, secrets: S, seconds, refresh, referencesPerTemplate: 2 }, results };
}

/**
 * @param {Map<string, number[]>} byKey - request times per secret
 * @param {number} firstPass - requests in the first R/2
 * @param {number} S
 * @param {number} R - refresh, ms
 * @param {number} windowS
 * @param {boolean} ctStyle - consul-template re-reads at 0.85–0.95 R, emissary at 0.9–1.1 R
 */
function readStats(byKey, firstPass, S, R, windowS, ctStyle) {
  const d = duplicateRequests(byKey, R / 2);
  const [lo, hi] = ctStyle ? [0.85, 0.95] : [0.9, 1.1];
  const w = windowS * 1000;
  return {
    secretsRead: d.keys,
    requestsPerSecretMin: d.perKeyMin,
    requestsPerSecretMax: d.perKeyMax,
    duplicates: d.duplicates,
    firstPassRequests: firstPass,
    // One request per unique secret per refresh: 1 + the refreshes that fit in the window.
    expectedPerSecret: [1 + Math.floor(w / (hi * R)), 1 + Math.floor(w / (lo * R))],
    uniqueSecrets: S,
  };
}

/** @param {string[]} xs */
function count(xs) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 * @param {"vault" | "awssm"} backend
 * @param {{ vault?: FakeVault, aws?: FakeAwsSm }} fakes
 */
function startEmissary(ctx, backend, fakes) {
  const { templates: T, secrets: S, refresh } = ctx.params;
  const dir = freshDir(join(ctx.work, `emissary-${backend}`));
  const tpl = join(dir, "tpl");
  const out = join(dir, "out");
  mkdirSync(out);
  writeEmissaryTemplates(
    tpl,
    Array.from({ length: T }, (_, i) => {
      const [a, b] = secretsOf(i, S);
      return { file: `t${i}.tpl`, dest: join(out, `t${i}.conf`), secrets: { a: `${backend}:${backend === "vault" ? "secret/" : ""}app${a}#password`, b: `${backend}:${backend === "vault" ? "secret/" : ""}app${b}#password` }, body: `a = "{{a}}"\nb = "{{b}}"\n` };
    }),
  );
  const config = join(dir, "emissary.yaml");
  const section =
    backend === "vault"
      ? `  vault:\n    address: ${JSON.stringify(fakes.vault?.address)}\n    auth: { method: token, token: emissary-token, renew: false }\n    refresh: ${refresh}\n`
      : `  awssm:\n    region: us-east-1\n    endpoint: ${JSON.stringify(fakes.aws?.endpoint)}\n    refresh: ${refresh}\n`;
  writeFileSync(config, `templates: ${JSON.stringify(tpl)}\nbackends:\n${section}`);
  const env = { ...process.env, AWS_ACCESS_KEY_ID: "AKIDBENCH", AWS_SECRET_ACCESS_KEY: "bench-not-a-secret", AWS_EC2_METADATA_DISABLED: "true" };
  delete env.VAULT_TOKEN;
  delete env.VAULT_ADDR;
  return startTool({ cmd: ctx.tools.emissary.node ?? process.execPath, args: [ctx.tools.emissary.bin ?? "", "run", "--config", config], cwd: dir, env, logFile: join(dir, "tool.log") });
}

/**
 * @param {import("../run.mjs").JobContext} ctx
 * @param {FakeVault} vault
 */
function startConsulTemplate(ctx, vault) {
  const { templates: T, secrets: S, refresh } = ctx.params;
  const dir = freshDir(join(ctx.work, "ct-vault"));
  const tpl = join(dir, "tpl");
  const out = join(dir, "out");
  mkdirSync(tpl);
  mkdirSync(out);
  const templates = [];
  for (let i = 0; i < T; i++) {
    const [a, b] = secretsOf(i, S);
    const source = join(tpl, `t${i}.ctmpl`);
    writeFileSync(source, `a = "{{ with secret "secret/app${a}" }}{{ .Data.data.password }}{{ end }}"\nb = "{{ with secret "secret/app${b}" }}{{ .Data.data.password }}{{ end }}"\n`);
    templates.push({ source, dest: join(out, `t${i}.conf`) });
  }
  writeConsulTemplateConfig(join(dir, "config.hcl"), { templates, vault: { address: vault.address, token: "ct-token", defaultLeaseDuration: refresh } });
  const env = { ...process.env };
  for (const k of ["VAULT_TOKEN", "VAULT_ADDR", "CONSUL_HTTP_ADDR"]) delete env[k];
  return startTool({ cmd: ctx.tools.consulTemplate.bin ?? "", args: ["-config", join(dir, "config.hcl")], cwd: dir, env, logFile: join(dir, "tool.log") });
}
