import { register as globalRegister } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Emissary } from "../../../src/emissary.js";
import { TypedEmitter, type EmissaryEventName, type Listener } from "../../../src/observe/events.js";
import { silentLogger } from "../../../src/observe/log.js";
import { commandOutcome, createMetrics } from "../../../src/observe/metrics.js";
import type { EmissaryStatus, TemplateStatus } from "../../../src/observe/status-model.js";

/** Just enough of an Emissary for the metrics: typed events and a settable status. */
function fakeEmissary(initial: Partial<EmissaryStatus> = {}) {
  const events = new TypedEmitter(() => silentLogger());
  let status: EmissaryStatus = { ready: false, phase: "running", waitingForTemplateDir: false, backends: [], templates: [], references: [], ...initial };
  const fake = {
    on<K extends EmissaryEventName>(e: K, fn: Listener<K>) {
      events.on(e, fn);
      return fake;
    },
    off<K extends EmissaryEventName>(e: K, fn: Listener<K>) {
      events.off(e, fn);
      return fake;
    },
    status: () => status,
  };
  return {
    emissary: fake as unknown as Emissary,
    emit: events.emit.bind(events) as TypedEmitter["emit"],
    setStatus: (s: Partial<EmissaryStatus>) => (status = { ...status, ...s }),
  };
}

type Sample = { value: number; labels: Record<string, string | number> };
async function samples(m: ReturnType<typeof createMetrics>, name: string): Promise<Sample[]> {
  const all = (await m.registry.getMetricsAsJSON()) as unknown as { name: string; values: Sample[] }[];
  return all.find((x) => x.name === name)?.values ?? [];
}
async function value(m: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const hit = (await samples(m, name)).find((s) => Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v) && Object.keys(s.labels).length >= Object.keys(labels).length);
  return hit?.value;
}

const tpl = (t: Partial<TemplateStatus> & { file: string }): TemplateStatus => ({ state: "pending", pending: [], ...t });

describe("createMetrics", () => {
  it("counts fetches by backend and outcome, observes their latency, counts changed values", async () => {
    const f = fakeEmissary();
    const m = createMetrics(f.emissary, { processMetrics: false });
    f.emit("fetch", { backend: "vault", ref: "vault:secret/a", outcome: "ok", changed: true, durationMs: 30 });
    f.emit("fetch", { backend: "vault", ref: "vault:secret/b", outcome: "ok", changed: false, durationMs: 10 });
    f.emit("fetch", { backend: "vault", ref: "vault:secret/c", outcome: "fatal", changed: false, durationMs: 5 });
    f.emit("fetch", { backend: "awssm", ref: "awssm:x", outcome: "not_found", changed: false, durationMs: 200 });
    expect(await value(m, "emissary_fetches_total", { backend: "vault", outcome: "ok" })).toBe(2);
    expect(await value(m, "emissary_fetches_total", { backend: "vault", outcome: "fatal" })).toBe(1);
    expect(await value(m, "emissary_fetches_total", { backend: "awssm", outcome: "not_found" })).toBe(1);
    expect(await value(m, "emissary_secret_changes_total", { backend: "vault" })).toBe(1);
    const hist = await samples(m, "emissary_fetch_duration_seconds");
    const count = hist.find((s) => (s as { metricName?: string }).metricName === "emissary_fetch_duration_seconds_count" && s.labels.backend === "vault" && s.labels.outcome === "ok");
    expect(count?.value).toBe(2);
    const sum = hist.find((s) => (s as { metricName?: string }).metricName === "emissary_fetch_duration_seconds_sum" && s.labels.backend === "vault" && s.labels.outcome === "ok");
    expect(sum?.value).toBeCloseTo(0.04, 5);
    // Fetch metrics carry backend-level labels only: no reference IDs.
    const text = await m.metrics();
    expect(text).not.toContain("secret/a");
    expect(text).not.toContain("awssm:x");
  });

  it("counts renders, writes, template errors, reloads and commands by outcome with their duration", async () => {
    const f = fakeEmissary({ templates: [tpl({ file: "/t/a.tpl", dest: "/out/a" }), tpl({ file: "/t/b.tpl", state: "invalid" })] });
    const m = createMetrics(f.emissary, { processMetrics: false });
    f.emit("render", { template: "/t/a.tpl", dest: "/out/a", changed: true });
    f.emit("render", { template: "/t/a.tpl", dest: "/out/a", changed: false });
    f.emit("write", { template: "/t/a.tpl", dest: "/out/a", inPlace: false });
    f.emit("error", { template: "/t/b.tpl", error: new Error("bad") });
    f.emit("error", { error: new Error("reload failed") });
    f.emit("reload", { templates: 2, invalid: 1 });
    const cmd = { command: ["true"], templates: ["/t/a.tpl"], signal: null, timedOut: false, outputTail: "" };
    f.emit("command", { ...cmd, ok: true, exitCode: 0, durationMs: 50 });
    f.emit("command", { ...cmd, ok: false, exitCode: 3, durationMs: 20 });
    f.emit("command", { ...cmd, ok: false, exitCode: null, signal: "SIGKILL", timedOut: true, durationMs: 30_000 });
    expect(await value(m, "emissary_renders_total", { template: "/t/a.tpl", dest: "/out/a", changed: "true" })).toBe(1);
    expect(await value(m, "emissary_renders_total", { template: "/t/a.tpl", dest: "/out/a", changed: "false" })).toBe(1);
    expect(await value(m, "emissary_writes_total", { template: "/t/a.tpl", dest: "/out/a" })).toBe(1);
    expect(await value(m, "emissary_template_errors_total", { template: "/t/b.tpl" })).toBe(1);
    expect(await value(m, "emissary_reloads_total")).toBe(1);
    expect(await value(m, "emissary_commands_total", { outcome: "ok" })).toBe(1);
    expect(await value(m, "emissary_commands_total", { outcome: "failed" })).toBe(1);
    expect(await value(m, "emissary_commands_total", { outcome: "timeout" })).toBe(1);
    const text = await m.metrics();
    expect(text).toMatch(/emissary_command_duration_seconds_count\{outcome="timeout"\} 1/);
    expect(text).toMatch(/emissary_command_duration_seconds_sum\{outcome="timeout"\} 30\b/);
  });

  it("maps command results to outcomes", () => {
    expect(commandOutcome({ ok: true, timedOut: false, exitCode: 0, signal: null })).toBe("ok");
    expect(commandOutcome({ ok: false, timedOut: false, exitCode: 1, signal: null })).toBe("failed");
    expect(commandOutcome({ ok: false, timedOut: true, exitCode: null, signal: "SIGTERM" })).toBe("timeout");
    expect(commandOutcome({ ok: false, timedOut: false, exitCode: null, signal: "SIGKILL" })).toBe("killed");
    expect(commandOutcome({ ok: false, timedOut: false, exitCode: null, signal: null })).toBe("not_started");
  });

  it("reports templates by state, every state present, from the status at scrape time", async () => {
    const f = fakeEmissary();
    const m = createMetrics(f.emissary, { processMetrics: false });
    f.setStatus({ templates: [tpl({ file: "a", dest: "/a", state: "rendered", lastRenderAt: 1 }), tpl({ file: "b", dest: "/b", pending: ["vault:x#y"] }), tpl({ file: "c", state: "invalid" })] });
    expect(await value(m, "emissary_templates", { state: "rendered" })).toBe(1);
    expect(await value(m, "emissary_templates", { state: "pending" })).toBe(1);
    expect(await value(m, "emissary_templates", { state: "invalid" })).toBe(1);
    expect(await value(m, "emissary_templates", { state: "error" })).toBe(0);
    expect(await value(m, "emissary_template_state", { template: "b", dest: "/b", state: "pending" })).toBe(1);
    expect(await value(m, "emissary_pending_references")).toBe(1);
    expect(await value(m, "emissary_ready")).toBe(0);
    f.setStatus({ ready: true, templates: [tpl({ file: "a", dest: "/a", state: "rendered", lastRenderAt: 1 })] });
    expect(await value(m, "emissary_templates", { state: "pending" })).toBe(0);
    expect(await value(m, "emissary_ready")).toBe(1);
    expect(await value(m, "emissary_pending_references")).toBe(0);
    // A template that is gone has no state series any more.
    expect(await value(m, "emissary_template_state", { template: "b" })).toBeUndefined();
  });

  it("computes seconds since each template last rendered when scraped, not when it rendered", async () => {
    let clock = 1_000_000;
    const f = fakeEmissary({ templates: [tpl({ file: "a.tpl", dest: "/out/a", state: "rendered", lastRenderAt: 1_000_000 - 5_000 }), tpl({ file: "b.tpl", dest: "/out/b" })] });
    const m = createMetrics(f.emissary, { processMetrics: false, now: () => clock });
    expect(await value(m, "emissary_template_seconds_since_last_render", { template: "a.tpl", dest: "/out/a" })).toBe(5);
    clock += 60_000;
    expect(await value(m, "emissary_template_seconds_since_last_render", { template: "a.tpl", dest: "/out/a" })).toBe(65);
    // Never rendered: no series (not a misleading 0).
    expect(await value(m, "emissary_template_seconds_since_last_render", { template: "b.tpl" })).toBeUndefined();
    expect(await value(m, "emissary_template_last_render_timestamp_seconds", { template: "a.tpl" })).toBe(995);
  });

  it("counts references by backend and last fetch outcome", async () => {
    const f = fakeEmissary({
      references: [
        { ref: "vault:secret/a", backend: "vault", lastOutcome: "ok", templates: ["a"] },
        { ref: "vault:secret/b", backend: "vault", lastOutcome: "fatal", error: "permission denied", templates: ["a"] },
        { ref: "file:/x", backend: "file", templates: ["a"] },
      ],
    });
    const m = createMetrics(f.emissary, { processMetrics: false });
    expect(await value(m, "emissary_references", { backend: "vault", outcome: "ok" })).toBe(1);
    expect(await value(m, "emissary_references", { backend: "vault", outcome: "fatal" })).toBe(1);
    expect(await value(m, "emissary_references", { backend: "file", outcome: "none" })).toBe(1);
    expect(await m.metrics()).not.toContain("permission denied");
  });

  it("drops the counters of templates that are gone on reload", async () => {
    const f = fakeEmissary({ templates: [tpl({ file: "a.tpl", dest: "/out/a" }), tpl({ file: "b.tpl", dest: "/out/b" })] });
    const m = createMetrics(f.emissary, { processMetrics: false });
    f.emit("render", { template: "a.tpl", dest: "/out/a", changed: true });
    f.emit("write", { template: "a.tpl", dest: "/out/a", inPlace: false });
    f.emit("render", { template: "b.tpl", dest: "/out/b", changed: true });
    f.emit("write", { template: "b.tpl", dest: "/out/b", inPlace: false });
    f.setStatus({ templates: [tpl({ file: "a.tpl", dest: "/out/a" })] });
    f.emit("reload", { templates: 1, invalid: 0 });
    expect(await value(m, "emissary_writes_total", { template: "a.tpl" })).toBe(1);
    expect(await value(m, "emissary_writes_total", { template: "b.tpl" })).toBeUndefined();
    expect(await value(m, "emissary_renders_total", { template: "b.tpl" })).toBeUndefined();
  });

  it("uses a private registry: two emissaries do not collide and the global registry stays empty", async () => {
    const a = fakeEmissary();
    const b = fakeEmissary();
    const ma = createMetrics(a.emissary);
    const mb = createMetrics(b.emissary);
    expect(ma.registry).not.toBe(mb.registry);
    a.emit("fetch", { backend: "env", ref: "env:X", outcome: "ok", changed: true, durationMs: 1 });
    expect(await value(ma, "emissary_fetches_total", { backend: "env" })).toBe(1);
    expect(await value(mb, "emissary_fetches_total", { backend: "env" })).toBeUndefined();
    expect(globalRegister.getSingleMetric("emissary_fetches_total")).toBeUndefined();
    // Process metrics by default, in the emissary's own registry.
    expect(await ma.metrics()).toContain("process_cpu_user_seconds_total");
    expect(ma.contentType).toMatch(/^text\/plain/);
  });

  it("leaves process metrics out when asked", async () => {
    const m = createMetrics(fakeEmissary().emissary, { processMetrics: false });
    expect(await m.metrics()).not.toContain("process_cpu_user_seconds_total");
  });

  it("stops counting after close()", async () => {
    const f = fakeEmissary();
    const m = createMetrics(f.emissary, { processMetrics: false });
    f.emit("fetch", { backend: "env", ref: "env:X", outcome: "ok", changed: false, durationMs: 1 });
    m.close();
    f.emit("fetch", { backend: "env", ref: "env:X", outcome: "ok", changed: false, durationMs: 1 });
    expect(await value(m, "emissary_fetches_total", { backend: "env", outcome: "ok" })).toBe(1);
  });

  it("escapes label values that contain quotes, backslashes and newlines", async () => {
    const f = fakeEmissary();
    const m = createMetrics(f.emissary, { processMetrics: false });
    f.emit("write", { template: 'we"ird\\name\n.tpl', dest: "/out/x", inPlace: false });
    const text = await m.metrics();
    expect(text).toContain('template="we\\"ird\\\\name\\n.tpl"');
    // Every sample line stays one line.
    for (const line of text.split("\n")) if (line.startsWith("emissary_writes_total{")) expect(line).toMatch(/ 1$/);
  });
});
