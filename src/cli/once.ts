import type { Logger } from "pino";
import type { ResolvedConfig } from "../config/resolve.js";
import { createEmissary } from "../emissary.js";
import { formatDuration } from "../api/duration.js";
import { sleep } from "./sleep.js";
import type { EmissaryStatus } from "../observe/status-model.js";

/** Prints which templates are still pending and on which references (to stderr). */
export function reportPending(status: EmissaryStatus, write: (s: string) => void): void {
  for (const t of status.templates) {
    if (t.state === "rendered" && (!t.lastCommand || t.lastCommand.ok)) continue;
    if (t.state === "pending") write(`pending: ${t.file} waits for ${t.pending.join(", ") || "its first render"}\n`);
    else if (t.state === "rendered") write(`failed: ${t.file}: command exited ${t.lastCommand?.exitCode ?? t.lastCommand?.signal ?? "abnormally"}${t.lastCommand?.error ? ` (${t.lastCommand.error})` : ""}\n`);
    else write(`failed: ${t.file}: ${t.error ?? t.state}\n`);
  }
  if (status.waitingForTemplateDir) write("pending: the template directory does not exist\n");
}

/**
 * Sleeps the startup delay (`--startup-delay`, `EMISSARY_STARTUP_DELAY`), as the original Go
 * emissary did before its one pass. Resolves false when SIGTERM or SIGINT came first.
 */
async function startupDelay(ms: number, logger: Logger): Promise<boolean> {
  if (ms <= 0) return true;
  logger.info({ delay: formatDuration(ms) }, "startup delay");
  const nap = sleep(ms);
  process.once("SIGTERM", nap.wake);
  process.once("SIGINT", nap.wake);
  const slept = await nap.done;
  process.off("SIGTERM", nap.wake);
  process.off("SIGINT", nap.wake);
  return slept;
}

/**
 * `emissary once`: after the startup delay, render every template once all its secrets resolve,
 * run commands, exit 0 or 1 (also 1 when stopped during the delay). `--timeout` counts from the
 * end of the delay.
 */
export async function runOnce(config: ResolvedConfig, logger: Logger): Promise<number> {
  if (!(await startupDelay(config.startupDelayMs, logger))) return 1;
  const emissary = await createEmissary({ resolved: config, logger, watch: false, once: true });
  await emissary.start();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((r) => {
    if (config.timeoutMs !== undefined) timer = setTimeout(() => r("timeout"), config.timeoutMs);
  });
  const onSignal = (): void => void emissary.stop({ force: true }).then(() => process.exit(1));
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const result = await Promise.race([emissary.settled(), timeout]);
  if (timer) clearTimeout(timer);
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
