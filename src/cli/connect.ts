/**
 * `emissary check --connect [--read] [--json] [--timeout D]`: validate every template as `check`
 * does, then log in to every backend in use and check every unique reference without printing a
 * value (SPEC "Operator control"). Each backend's checks share one deadline (`--timeout`, 10s by
 * default), so a dead endpoint cannot hang the command.
 *
 * Exit codes: 0 every reference ok; 1 any reference not ok; 2 a configuration or template error.
 * @module
 */
import { basename } from "node:path";
import type { Logger } from "pino";
import type { Backend, CheckResult, CheckStatus, SecretRef } from "../api/backend.js";
import { classifyError } from "../api/errors.js";
import { formatDuration } from "../api/duration.js";
import { clearLongTimeout, setLongTimeout, type LongTimeout } from "../api/timer.js";
import { globToRegExp } from "../config/glob.js";
import type { ResolvedConfig } from "../config/resolve.js";
import { fetchErrorMessage } from "../observe/status-model.js";
import { BackendRegistry } from "../sources/registry.js";
import { bindTemplate } from "../templates/bind.js";
import { readTemplateDir } from "../templates/template-dir.js";
import { setupError, type CheckError } from "./check.js";
import { formatTable } from "./table.js";

/** Version of the `check --connect --json` document. */
export const CONNECT_SCHEMA_VERSION = 1;
/** Deadline of each backend's checks when `--timeout` is not given. */
export const CONNECT_DEFAULT_TIMEOUT_MS = 10_000;
/** Checks in flight at once per backend. */
const CONCURRENCY = 8;

/** One reference's check. */
export interface ConnectEntry {
  /** Reference key (`vault:secret/nomad`). */
  readonly ref: string;
  readonly backend: string;
  /** The references as templates write them (`vault:secret/nomad#token`). */
  readonly written: readonly string[];
  readonly templates: readonly string[];
  readonly status: CheckStatus;
  readonly reason: string;
  readonly durationMs: number;
}

/** The `check --connect --json` document. */
export interface ConnectReport {
  readonly schemaVersion: typeof CONNECT_SCHEMA_VERSION;
  /** Every reference ok and no configuration error. */
  readonly ok: boolean;
  readonly timeoutMs: number;
  readonly read: boolean;
  readonly summary: Readonly<Record<CheckStatus, number>> & { readonly references: number };
  /** Configuration and template errors (exit code 2). */
  readonly errors: readonly CheckError[];
  readonly references: readonly ConnectEntry[];
}

/** Options for {@link buildConnectReport}. */
export interface ConnectOptions {
  readonly read?: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

interface Planned {
  readonly ref: SecretRef;
  readonly backend: Backend;
  readonly written: string[];
  readonly templates: string[];
}

/** How a failed fetch (backends without `check`) or a thrown check reads. */
function fromError(err: unknown, thrownByCheck: boolean): CheckResult {
  const reason = fetchErrorMessage(err instanceof Error ? err : new Error(String(err))) ?? "error";
  if (thrownByCheck) return { status: "unreachable", reason };
  const cls = classifyError(err);
  return { status: cls === "not_found" ? "not_set" : cls === "transient" ? "unreachable" : "denied", reason };
}

async function checkOne(p: Planned, signal: AbortSignal, logger: Logger, read: boolean): Promise<CheckResult> {
  if (p.backend.check) {
    try {
      const r = await p.backend.check(p.ref, { signal, logger, read });
      return { status: r.status, reason: fetchErrorMessage(new Error(r.reason)) ?? "" };
    } catch (err) {
      return fromError(err, true);
    }
  }
  try {
    await p.backend.fetch(p.ref, { signal, logger });
    return { status: "ok", reason: `the backend has no check: fetched (value discarded)` };
  } catch (err) {
    return fromError(err, false);
  }
}

/** Checks one backend's references under one deadline; what is not done by then is `unreachable`. */
async function checkBackend(refs: readonly Planned[], timeoutMs: number, logger: Logger, read: boolean): Promise<Map<Planned, { r: CheckResult; ms: number }>> {
  const out = new Map<Planned, { r: CheckResult; ms: number }>();
  const abort = new AbortController();
  let timer: LongTimeout | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setLongTimeout(() => {
      abort.abort();
      resolve("deadline");
    }, timeoutMs);
  });
  const late: CheckResult = { status: "unreachable", reason: `no answer within ${formatDuration(timeoutMs)} (--timeout)` };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < refs.length) {
      const p = refs[next++]!;
      const started = performance.now();
      const r = await Promise.race([checkOne(p, abort.signal, logger, read), deadline]);
      out.set(p, { r: r === "deadline" || abort.signal.aborted ? late : r, ms: Math.round(performance.now() - started) });
    }
  };
  await Promise.race([Promise.all(Array.from({ length: Math.min(CONCURRENCY, refs.length) }, worker)), deadline]);
  clearLongTimeout(timer);
  abort.abort();
  for (const p of refs) if (!out.has(p)) out.set(p, { r: late, ms: timeoutMs });
  return out;
}

/** Builds the report: binds every template, then checks every unique reference per backend. */
export async function buildConnectReport(config: ResolvedConfig, logger: Logger, opts: ConnectOptions = {}): Promise<ConnectReport> {
  const timeoutMs = config.timeoutMs ?? CONNECT_DEFAULT_TIMEOUT_MS;
  const read = opts.read ?? false;
  const errors: CheckError[] = [];
  const planned = new Map<string, Planned>();
  const registry = new BackendRegistry({
    settings: config.backends,
    env: opts.env ?? process.env,
    logger,
    modules: config.modules,
    ...(config.configFile ? { configFile: config.configFile } : {}),
  });
  const entries: ConnectEntry[] = [];
  try {
    await registry.init();
    const files = await readTemplateDir(config.templates, globToRegExp(config.pattern));
    if (!files) errors.push({ message: `template directory ${config.templates} does not exist`, code: "NO_TEMPLATE_DIR", file: config.templates });
    for (const f of files ?? []) {
      const e = await bindTemplate(f, { registry, config, cwd: opts.cwd ?? process.cwd() });
      if (!e.template) {
        const err = e.error as { message: string; line?: number; column?: number; field?: string };
        errors.push({ message: err.message, code: "TEMPLATE", file: f.file, ...(err.line ? { line: err.line } : {}), ...(err.column ? { column: err.column } : {}), ...(err.field ? { field: err.field } : {}) });
        continue;
      }
      for (const b of e.bindings) {
        let p = planned.get(b.key);
        if (!p) planned.set(b.key, (p = { ref: e.refs!.get(b.key)!, backend: e.backends!.get(b.key)!, written: [], templates: [] }));
        if (!p.written.includes(b.label)) p.written.push(b.label);
        if (!p.templates.includes(f.file)) p.templates.push(f.file);
      }
    }
    const byBackend = new Map<Backend, Planned[]>();
    for (const p of planned.values()) byBackend.set(p.backend, [...(byBackend.get(p.backend) ?? []), p]);
    const results = await Promise.all([...byBackend.values()].map((refs) => checkBackend(refs, timeoutMs, logger, read)));
    const all = new Map(results.flatMap((m) => [...m]));
    for (const [key, p] of planned) {
      const { r, ms } = all.get(p)!;
      entries.push({ ref: key, backend: p.backend.name, written: p.written, templates: p.templates, status: r.status, reason: r.reason, durationMs: ms });
    }
  } catch (err) {
    errors.push(setupError(err));
  } finally {
    await registry.close().catch(() => undefined);
  }
  const count = (s: CheckStatus): number => entries.filter((e) => e.status === s).length;
  return {
    schemaVersion: CONNECT_SCHEMA_VERSION,
    ok: errors.length === 0 && entries.every((e) => e.status === "ok"),
    timeoutMs,
    read,
    summary: { references: entries.length, ok: count("ok"), not_set: count("not_set"), denied: count("denied"), unreachable: count("unreachable"), invalid: count("invalid") },
    errors,
    references: entries,
  };
}

/** How a status is printed. */
export function statusLabel(s: CheckStatus): string {
  return s === "not_set" ? "not set yet" : s;
}

/** `emissary check --connect`. Resolves with the exit code. */
export async function runConnect(config: ResolvedConfig, logger: Logger, opts: { json: boolean; read: boolean }, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const report = await buildConnectReport(config, logger, { read: opts.read });
  if (opts.json) out(JSON.stringify(report, null, 2) + "\n");
  else {
    for (const e of report.errors) out(`error  ${e.message}\n`);
    const rows = report.references.map((e) => [statusLabel(e.status), e.backend, e.ref, e.templates.map((t) => basename(t)).join(", "), e.reason]);
    if (rows.length > 0) out(formatTable(["STATUS", "BACKEND", "REFERENCE", "TEMPLATES", "REASON"], rows));
    const s = report.summary;
    const parts = (["ok", "not_set", "denied", "unreachable", "invalid"] as const).filter((k) => s[k] > 0).map((k) => `${s[k]} ${statusLabel(k)}`);
    out(`${s.references} reference(s)${parts.length ? `: ${parts.join(", ")}` : ""}; ${report.errors.length} configuration error(s)\n`);
  }
  if (report.errors.length > 0) return 2;
  return report.ok ? 0 : 1;
}
