import type { Logger } from "pino";
import type { ResolvedConfig } from "../config/resolve.js";
import { createEmissary } from "../emissary.js";
import { formatDuration } from "../api/duration.js";
import { clearLongTimeout, setLongTimeout, type LongTimeout } from "../api/timer.js";
import { startupDelay } from "./startup-delay.js";
import type { EmissaryStatus } from "../observe/status-model.js";

/** How the last fetch of a reference a template waits for went, in words. */
export const WHY: Readonly<Record<"not_found" | "transient" | "fatal", string>> = {
  not_found: "not set yet",
  transient: "failing, retried",
  fatal: "refused (permission, authentication or a bad reference), retried at the cap",
};

/**
 * Prints which templates are still pending and on which references (to stderr); under each, a
 * reference whose last fetch failed other than "not set yet", with its sanitized reason.
 */
export function reportPending(status: EmissaryStatus, write: (s: string) => void): void {
  for (const t of status.templates) {
    if (t.state === "rendered" && (!t.lastCommand || t.lastCommand.ok)) continue;
    if (t.state === "pending") {
      write(`pending: ${t.file} waits for ${t.pending.join(", ") || "its first render"}\n`);
      for (const r of status.references) {
        if (!r.templates.includes(t.file) || r.lastOutcome === undefined || r.lastOutcome === "ok" || r.lastOutcome === "not_found") continue;
        write(`  ${r.ref}: ${WHY[r.lastOutcome]}${r.error ? `: ${r.error}` : ""}\n`);
      }
      continue;
    }
    if (t.state === "rendered") write(`failed: ${t.file}: command exited ${t.lastCommand?.exitCode ?? t.lastCommand?.signal ?? "abnormally"}${t.lastCommand?.error ? ` (${t.lastCommand.error})` : ""}\n`);
    else write(`failed: ${t.file}: ${t.error ?? t.state}\n`);
  }
  if (status.waitingForTemplateDir) write("pending: the template directory does not exist\n");
}

/**
 * `emissary once`: sleep the startup delay (as the original did), then render every template once
 * all its secrets resolve, run commands, exit 0 or 1. `--timeout` counts from the end of the delay.
 * A SIGTERM or SIGINT during the delay exits 1 at once: nothing was rendered.
 */
export async function runOnce(config: ResolvedConfig, logger: Logger): Promise<number> {
  if (config.startupDelayMs > 0) {
    const abort = new AbortController();
    const onDelaySignal = (): void => abort.abort();
    process.once("SIGTERM", onDelaySignal);
    process.once("SIGINT", onDelaySignal);
    const slept = await startupDelay(config.startupDelayMs, logger, abort.signal);
    process.off("SIGTERM", onDelaySignal);
    process.off("SIGINT", onDelaySignal);
    if (!slept) {
      logger.info("stopped during the startup delay; nothing was rendered");
      return 1;
    }
  }
  const emissary = await createEmissary({ resolved: config, logger, watch: false, once: true });
  await emissary.start();
  let timer: LongTimeout | undefined;
  const timeout = new Promise<"timeout">((r) => {
    if (config.timeoutMs !== undefined) timer = setLongTimeout(() => r("timeout"), config.timeoutMs);
  });
  const onSignal = (): void => void emissary.stop({ force: true }).then(() => process.exit(1));
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const result = await Promise.race([emissary.settled(), timeout]);
  clearLongTimeout(timer);
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  let code = 0;
  if (result === "timeout") {
    const status = emissary.status();
    logger.error({ timeout: formatDuration(config.timeoutMs!), pending: status.templates.filter((t) => t.state !== "rendered").map((t) => ({ template: t.file, references: t.pending })) }, "timed out");
    process.stderr.write(`emissary once: timed out after ${formatDuration(config.timeoutMs!)}\n`);
    reportPending(status, (s) => process.stderr.write(s));
    code = 1;
  } else if (!result.ok) {
    reportPending(result.status, (s) => process.stderr.write(s));
    code = 1;
  } else if (result.status.templates.length === 0) {
    logger.warn({ templatesDir: config.templates, pattern: config.pattern }, "no templates found");
  }
  await emissary.stop({ force: code !== 0 });
  return code;
}
