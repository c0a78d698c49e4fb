import { resolve } from "node:path";
import type { Logger } from "pino";
import { bindTemplate } from "../templates/bind.js";
import type { ResolvedConfig } from "../config/resolve.js";
import { formatDuration } from "../api/duration.js";
import { readFailure, readRegularFile } from "../api/safe-read.js";
import { TEMPLATE_MAX_BYTES } from "../templates/template-dir.js";
import { clearLongTimeout, setLongTimeout } from "../api/timer.js";
import type { ResolvedValue } from "../api/refs.js";
import { resolveValues } from "../templates/entry.js";
import { BackendRegistry } from "../sources/registry.js";
import { Scheduler } from "../sources/scheduler.js";
import { StateDir } from "../sources/state.js";
import { SecretStore } from "../sources/store.js";
import { renderOutput } from "../templates/render.js";
import { TemplateError } from "../api/errors.js";
import { fetchErrorMessage } from "../observe/status-model.js";
import { WHY } from "./once.js";

/**
 * `emissary render FILE`: resolve one template and print it to stdout; no write, no command. It
 * never issues anything: an issued secret (a Vault write) comes from the state directory, read
 * only; when nothing valid is kept there, render exits 1 naming what it would issue.
 */
export async function runRender(file: string, config: ResolvedConfig, logger: Logger): Promise<number> {
  const path = resolve(file);
  let source: string;
  try {
    source = (await readRegularFile(path, { maxBytes: TEMPLATE_MAX_BYTES })).toString("utf8");
  } catch (err) {
    process.stderr.write(`emissary render: cannot read ${path} (${readFailure(err)})\n`);
    return 2;
  }
  const state = new StateDir({ dir: config.stateDir, logger, readOnly: true });
  const registry = new BackendRegistry({
    settings: config.backends,
    env: process.env,
    logger,
    modules: config.modules,
    state: (name) => state.forBackend(name),
    ...(config.configFile ? { configFile: config.configFile } : {}),
  });
  await registry.init();
  const entry = await bindTemplate({ file: path, source }, { registry, config, cwd: process.cwd() });
  if (!entry.template) {
    process.stderr.write(`emissary render: ${entry.error?.message}\n`);
    await registry.close();
    return 2;
  }
  const t = entry.template;
  const store = new SecretStore();
  const values = (): { values: Map<string, ResolvedValue>; missing: string[]; invalid: Error[] } => resolveValues(entry.bindings, store);
  let wake: () => void = () => undefined;
  const wouldIssue = new Set<string>();
  /** Reference key → how its last fetch failed (other than "not set yet"), for a timeout's report. */
  const failing = new Map<string, string>();
  const scheduler = new Scheduler({
    store,
    logger,
    retryMs: config.defaults.retryMs,
    state: state.refs,
    issue: false,
    // One render and exit: only a reference still waited for needs its change notices.
    watchResolved: false,
    onFetch: (o) => {
      const ref = (o.error as { code?: unknown; ref?: unknown } | undefined)?.code === "WOULD_ISSUE" ? (o.error as { ref?: unknown }).ref : undefined;
      if (typeof ref === "string") wouldIssue.add(ref);
      if (o.outcome === "ok" || o.outcome === "not_found") failing.delete(o.key);
      else {
        const reason = fetchErrorMessage(o.error);
        failing.set(o.key, `${WHY[o.outcome]}${reason ? `: ${reason}` : ""}`);
      }
      wake();
    },
  });
  for (const b of entry.bindings) scheduler.ensure(entry.refs!.get(b.key)!, entry.backends!.get(b.key)!, t.refreshMs ?? 3_600_000, b.label);
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let timedOut = false;
  const timer = config.timeoutMs !== undefined ? setLongTimeout(() => ((timedOut = true), wake()), config.timeoutMs) : undefined;
  try {
    for (;;) {
      const { values: v, missing, invalid } = values();
      if (invalid.length > 0) {
        process.stderr.write(`emissary render: ${path}: ${invalid.map((e) => e.message).join("; ")}\n`);
        return 1;
      }
      if (missing.length === 0) {
        let out: string | Uint8Array;
        try {
          out = renderOutput(t, v);
        } catch (err) {
          // Our own errors name secrets and references, never values.
          process.stderr.write(`emissary render: ${err instanceof TemplateError ? err.message : `${path}: rendering failed (${(err as Error).name})`}\n`);
          return 1;
        }
        process.stdout.write(out);
        return 0;
      }
      if (wouldIssue.size > 0) {
        const where = config.stateDir === "" ? "the state directory is off" : `nothing valid is kept for it in ${config.stateDir}`;
        process.stderr.write(`emissary render: ${path} would issue ${[...wouldIssue].join(", ")} (${where}); render never issues: run emissary (or emissary once) to issue it\n`);
        return 1;
      }
      if (timedOut) {
        process.stderr.write(`emissary render: timed out after ${formatDuration(config.timeoutMs!)}\npending: ${path} waits for ${missing.join(", ")}\n`);
        for (const [key, why] of failing) process.stderr.write(`  ${key}: ${why}\n`);
        return 1;
      }
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    clearLongTimeout(timer);
    clearInterval(keepAlive);
    scheduler.stop();
    await registry.close();
  }
}
