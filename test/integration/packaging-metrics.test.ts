/**
 * What a Prometheus server scraping a running emissary sees: the built CLI runs with a status
 * server, /metrics is piped to the real `promtool check metrics` (Debian package `prometheus`),
 * the build is identified (`emissary_build_info`, `version` in /status), and a template that is
 * deleted takes its series with it.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { ROOT } from "./packaging-helpers.js";
import { requireTool } from "./packaging-tools.js";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

async function get(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

/** Feeds `text` to `promtool check metrics` on stdin; resolves with its exit code and output. */
function promtoolCheck(promtool: string, text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(promtool, ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

/** Starts `emissary run` on `dir` with a status server on a free port; returns its base URL. */
async function start(dir: string, env: Record<string, string>): Promise<string> {
  daemon = spawnEmissary(["run", "--templates", dir, "--status-addr", "127.0.0.1:0"], { env });
  const listening = await daemon.waitForLog((l) => l.msg === "status server listening", 15_000, "status server listening");
  return `http://${String(listening.address)}`;
}

describe("/metrics of a running emissary", () => {
  it("passes `promtool check metrics`, names the build, and drops a deleted invalid template's series", async (ctx) => {
    const promtool = requireTool("promtool", ctx, "apt-get install prometheus");
    const dir = tmpDir("emissary-metrics-");
    const secret = canary("metrics");
    writeFileSync(join(dir, "good.tpl"), `---\ndest: ${join(dir, "good.out")}\nsecrets:\n  a: env:APP_SECRET\n---\na={{a}}\n`);
    // Invalid: the body names a secret the front matter does not declare.
    writeFileSync(join(dir, "bad.tpl"), `---\ndest: ${join(dir, "bad.out")}\nsecrets:\n  a: env:APP_SECRET\n---\n{{nope}}\n`);
    const base = await start(dir, { APP_SECRET: secret });
    await waitFor(async () => (await get(`${base}/readyz`)).includes('"templates":2'), 15_000, "both templates loaded");
    await waitFor(() => existsSync(join(dir, "good.out")), 15_000, "good.tpl rendered");

    const text = await get(`${base}/metrics`);
    expect(text).not.toContain("CANARY");
    const check = await promtoolCheck(promtool, text);
    expect(check.out.trim(), "promtool check metrics printed problems").toBe("");
    expect(check.code, check.out).toBe(0);

    // The build: one constant series naming the package version and the Node it runs on.
    expect(text).toContain(`emissary_build_info{version="${pkg.version}",node="${process.version}"} 1`);
    expect(text).toMatch(/^# TYPE emissary_build_info gauge$/m);
    const status = JSON.parse(await get(`${base}/status`)) as { version?: string; templates: unknown[] };
    expect(status.version).toBe(pkg.version);
    expect(status.templates).toHaveLength(2);

    const badSeries = `emissary_template_errors_total{template="${join(dir, "bad.tpl")}"}`;
    expect(text).toContain(badSeries);

    // Delete the invalid template: once emissary has reloaded without it, its series is gone.
    rmSync(join(dir, "bad.tpl"));
    await waitFor(async () => (JSON.parse(await get(`${base}/status`)) as { templates: unknown[] }).templates.length === 1, 15_000, "bad.tpl dropped");
    const after = await get(`${base}/metrics`);
    expect(after).not.toContain(badSeries);
    expect(after).not.toContain(join(dir, "bad.tpl"));
    expect((await promtoolCheck(promtool, after)).code).toBe(0);
  });

  it("negative check: promtool rejects a gauge named *_total (what prom-client's nodejs_active_*_total were)", async (ctx) => {
    const promtool = requireTool("promtool", ctx, "apt-get install prometheus");
    const bad = "# HELP x_active_total Active things.\n# TYPE x_active_total gauge\nx_active_total 3\n";
    const r = await promtoolCheck(promtool, bad);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/x_active_total.*_total/);
  });
});
