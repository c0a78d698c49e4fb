/**
 * Prometheus metrics of one emissary, on a private prom-client registry (never the global one,
 * so two emissaries in one process, or an embedding program's own metrics, do not collide).
 *
 * Labels are template files, destination paths, backend names and outcomes — never a value, and
 * never a reference ID (fetch metrics are per backend, which keeps their cardinality bounded).
 * @packageDocumentation
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import type { CommandEvent } from "../output/commands.js";
import type { StatusSource } from "./status-model.js";
import type { EmissaryEvents, FetchEvent } from "./events.js";
import type { TemplateStateName } from "../templates/entry.js";

// prom-client through require, when this module loads (the status server loads it only when it
// is asked for): the CLI bundle (scripts/bundle-cli.mjs) leaves prom-client out, and an ES
// import of it would be hoisted to the bundle's start.
const { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } = createRequire(import.meta.url)("prom-client") as typeof import("prom-client");
type Registry = import("prom-client").Registry;

/** Options for {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * Also collect prom-client's process metrics (CPU, memory, file descriptors, event loop lag,
   * GC) into the same registry. They are collected from the moment they are enabled, and cannot
   * be turned off again; an embedding program that already exports them passes false.
   * @defaultValue true
   */
  readonly processMetrics?: boolean;
  /** A registry to register into instead of a new private one. @defaultValue a new Registry */
  readonly registry?: Registry;
  /** Clock for the scrape-time ages (tests). @defaultValue Date.now */
  readonly now?: () => number;
}

/** The metrics of one emissary. */
export interface EmissaryMetrics {
  /** The prom-client registry holding them. */
  readonly registry: Registry;
  /** The Content-Type of {@link EmissaryMetrics.metrics}' text. */
  readonly contentType: string;
  /** Renders every metric in the Prometheus text format (scrape-time values computed now). */
  metrics(): Promise<string>;
  /** Stops listening to the emissary's events. The registry keeps its last values. */
  close(): void;
}

/** Every template state, so `emissary_templates{state=…}` always has all of them. */
const STATES: readonly TemplateStateName[] = ["invalid", "pending", "rendered", "error"];

/** Seconds; fetches range from a local file read to a slow remote API. */
const FETCH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds; reload commands range from a signal to a service restart. */
const COMMAND_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

let cachedVersion: string | undefined;
/**
 * The emissaryd package version: the nearest package.json named `emissaryd` above this module
 * (found by walking up, so it holds wherever the module sits under dist/). "unknown" if none.
 */
export function emissaryVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "emissaryd" && typeof pkg.version === "string") return (cachedVersion = pkg.version);
    } catch {
      /* no readable package.json here: keep walking up */
    }
    if (dirname(dir) === dir) return (cachedVersion = "unknown");
  }
}

/**
 * prom-client's default metrics that are gauges named `*_total`, which Prometheus reserves for
 * counters (`promtool check metrics` rejects them). Each is the sum over the `type` label of
 * its unsuffixed twin (`nodejs_active_handles` …), so nothing is lost by dropping it.
 */
function dropTotalGauges(registry: Registry, before: ReadonlySet<string>): void {
  for (const m of registry.getMetricsAsArray()) {
    const { name } = m as unknown as { name: string };
    if (!before.has(name) && name.endsWith("_total") && m instanceof Gauge) registry.removeSingleMetric(name);
  }
}

/** Outcome label of a finished command. */
export function commandOutcome(e: Pick<CommandEvent, "ok" | "timedOut" | "exitCode" | "signal">): "ok" | "failed" | "timeout" | "killed" | "not_started" {
  if (e.ok) return "ok";
  if (e.timedOut) return "timeout";
  if (e.exitCode !== null) return "failed";
  if (e.signal !== null) return "killed";
  return "not_started";
}

/**
 * Creates the metrics of `emissary` and subscribes to its events. Create it before
 * `emissary.start()` so the first fetches are counted.
 *
 * Counters (from events): `emissary_fetches_total{backend,outcome}`,
 * `emissary_fetch_duration_seconds{backend,outcome}`, `emissary_secret_changes_total{backend}`,
 * `emissary_renders_total{template,dest,changed}`, `emissary_writes_total{template,dest}`,
 * `emissary_template_errors_total{template}`, `emissary_commands_total{outcome}`,
 * `emissary_command_duration_seconds{outcome}`, `emissary_reloads_total`.
 * Gauges computed at scrape time from `emissary.status()`: `emissary_ready`,
 * `emissary_templates{state}`, `emissary_template_state{template,dest,state}`,
 * `emissary_template_seconds_since_last_render{template,dest}`,
 * `emissary_template_last_render_timestamp_seconds{template,dest}`,
 * `emissary_pending_references`, `emissary_references{backend,outcome}`,
 * `emissary_certificate_expiry_timestamp_seconds{ref}` and
 * `emissary_certificate_renewal_timestamp_seconds{ref}` (per issued certificate, labelled with
 * its reference key as /status shows it: path and a hash of the params, never a value); and the
 * constant `emissary_build_info{version,node} 1`.
 */
export function createMetrics(emissary: StatusSource, opts: MetricsOptions = {}): EmissaryMetrics {
  const registry = opts.registry ?? new Registry();
  const now = opts.now ?? Date.now;
  const registers = [registry];

  const fetches = new Counter({ name: "emissary_fetches_total", help: "Secret fetches by backend and outcome (ok, not_found, transient, fatal).", labelNames: ["backend", "outcome"] as const, registers });
  const fetchSeconds = new Histogram({ name: "emissary_fetch_duration_seconds", help: "Secret fetch latency by backend and outcome.", labelNames: ["backend", "outcome"] as const, buckets: FETCH_BUCKETS, registers });
  const changes = new Counter({ name: "emissary_secret_changes_total", help: "Fetches that returned a value different from the stored one, by backend.", labelNames: ["backend"] as const, registers });
  const renders = new Counter({ name: "emissary_renders_total", help: "Successful renders by template; changed=false when the destination already held the same bytes, mode and owner.", labelNames: ["template", "dest", "changed"] as const, registers });
  const writes = new Counter({ name: "emissary_writes_total", help: "Destination files written, by template.", labelNames: ["template", "dest"] as const, registers });
  const templateErrors = new Counter({ name: "emissary_template_errors_total", help: "Template failures (invalid template, render or write error), by template.", labelNames: ["template"] as const, registers });
  const commands = new Counter({ name: "emissary_commands_total", help: "Reload commands run, by outcome (ok, failed, timeout, killed, not_started).", labelNames: ["outcome"] as const, registers });
  const commandSeconds = new Histogram({ name: "emissary_command_duration_seconds", help: "Reload command duration by outcome.", labelNames: ["outcome"] as const, buckets: COMMAND_BUCKETS, registers });
  const reloads = new Counter({ name: "emissary_reloads_total", help: "Times the template set was (re)loaded: start, template directory changes, SIGHUP.", registers });

  new Gauge({ name: "emissary_build_info", help: "Always 1; the labels name the emissaryd version and the Node.js version it runs on.", labelNames: ["version", "node"] as const, registers }).set(
    { version: emissaryVersion(), node: process.version },
    1,
  );

  // Scrape-time gauges: each collect() reads a fresh status snapshot (cheap: no I/O).
  const status = (): ReturnType<StatusSource["status"]> => emissary.status();
  new Gauge({
    name: "emissary_ready",
    help: "1 once every template has rendered at least once (what /readyz reports), else 0.",
    registers,
    collect() {
      this.set(status().ready ? 1 : 0);
    },
  });
  new Gauge({
    name: "emissary_templates",
    help: "Templates by state (invalid, pending, rendered, error).",
    labelNames: ["state"] as const,
    registers,
    collect() {
      const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const t of status().templates) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "emissary_template_state",
    help: "1 for each template's current state.",
    labelNames: ["template", "dest", "state"] as const,
    registers,
    collect() {
      this.reset();
      for (const t of status().templates) this.set({ template: t.file, dest: t.dest ?? "", state: t.state }, 1);
    },
  });
  new Gauge({
    name: "emissary_template_seconds_since_last_render",
    help: "Seconds since each template last rendered successfully (computed at scrape time); absent until its first render.",
    labelNames: ["template", "dest"] as const,
    registers,
    collect() {
      this.reset();
      const t0 = now();
      for (const t of status().templates) if (t.lastRenderAt !== undefined) this.set({ template: t.file, dest: t.dest ?? "" }, Math.max(0, (t0 - t.lastRenderAt) / 1000));
    },
  });
  new Gauge({
    name: "emissary_template_last_render_timestamp_seconds",
    help: "Unix time of each template's last successful render.",
    labelNames: ["template", "dest"] as const,
    registers,
    collect() {
      this.reset();
      for (const t of status().templates) if (t.lastRenderAt !== undefined) this.set({ template: t.file, dest: t.dest ?? "" }, t.lastRenderAt / 1000);
    },
  });
  new Gauge({
    name: "emissary_pending_references",
    help: "Unresolved references that hold at least one template back.",
    registers,
    collect() {
      const names = new Set<string>();
      for (const t of status().templates) for (const p of t.pending) names.add(p);
      this.set(names.size);
    },
  });
  new Gauge({
    name: "emissary_references",
    help: "Unique references by backend and last fetch outcome (none = not fetched yet).",
    labelNames: ["backend", "outcome"] as const,
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, { backend: string; outcome: string; n: number }>();
      for (const r of status().references) {
        const outcome = r.lastOutcome ?? "none";
        const k = `${r.backend}\u0000${outcome}`;
        const c = counts.get(k) ?? { backend: r.backend, outcome, n: 0 };
        c.n++;
        counts.set(k, c);
      }
      for (const c of counts.values()) this.set({ backend: c.backend, outcome: c.outcome }, c.n);
    },
  });

  new Gauge({
    name: "emissary_certificate_expiry_timestamp_seconds",
    help: "Unix time each issued certificate expires (its NotAfter), by reference key.",
    labelNames: ["ref"] as const,
    registers,
    collect() {
      this.reset();
      for (const r of status().references) if (r.certificate) this.set({ ref: r.ref }, r.certificate.notAfter / 1000);
    },
  });
  new Gauge({
    name: "emissary_certificate_renewal_timestamp_seconds",
    help: "Unix time each issued certificate is due to be re-issued, by reference key.",
    labelNames: ["ref"] as const,
    registers,
    collect() {
      this.reset();
      for (const r of status().references) if (r.certificate) this.set({ ref: r.ref }, r.certificate.renewAt / 1000);
    },
  });

  if (opts.processMetrics !== false) {
    const before = new Set(registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name));
    collectDefaultMetrics({ register: registry });
    dropTotalGauges(registry, before);
  }

  // Template-labelled counters of templates that no longer exist are dropped on reload.
  const seen = new Map<string, { template: string; dest: string }>();
  // Templates with an emissary_template_errors_total series (an invalid one never renders).
  const failed = new Set<string>();
  const remember = (template: string, dest: string): void => {
    seen.set(`${template}\u0000${dest}`, { template, dest });
  };

  const onFetch = (e: FetchEvent): void => {
    fetches.inc({ backend: e.backend, outcome: e.outcome });
    fetchSeconds.observe({ backend: e.backend, outcome: e.outcome }, e.durationMs / 1000);
    if (e.changed) changes.inc({ backend: e.backend });
  };
  const onRender = (e: EmissaryEvents["render"]): void => {
    remember(e.template, e.dest);
    renders.inc({ template: e.template, dest: e.dest, changed: String(e.changed) });
  };
  const onWrite = (e: EmissaryEvents["write"]): void => {
    remember(e.template, e.dest);
    writes.inc({ template: e.template, dest: e.dest });
  };
  const onError = (e: EmissaryEvents["error"]): void => {
    if (e.template === undefined) return;
    failed.add(e.template);
    templateErrors.inc({ template: e.template });
  };
  const onCommand = (e: CommandEvent): void => {
    const outcome = commandOutcome(e);
    commands.inc({ outcome });
    commandSeconds.observe({ outcome }, e.durationMs / 1000);
  };
  const onReload = (): void => {
    reloads.inc();
    const templates = emissary.status().templates;
    const current = new Set(templates.map((t) => `${t.file}\u0000${t.dest ?? ""}`));
    const files = new Set(templates.map((t) => t.file));
    for (const [k, l] of seen) {
      if (current.has(k)) continue;
      seen.delete(k);
      for (const changed of ["true", "false"]) renders.remove({ ...l, changed });
      writes.remove(l);
    }
    for (const template of failed) {
      if (files.has(template)) continue;
      failed.delete(template);
      templateErrors.remove({ template });
    }
  };

  emissary.on("fetch", onFetch).on("render", onRender).on("write", onWrite).on("error", onError).on("command", onCommand).on("reload", onReload);

  return {
    registry,
    contentType: registry.contentType,
    metrics: () => registry.metrics(),
    close() {
      emissary.off("fetch", onFetch).off("render", onRender).off("write", onWrite).off("error", onError).off("command", onCommand).off("reload", onReload);
    },
  };
}
