import type { Logger } from "pino";
import { formatDuration } from "../api/duration.js";
import { sleep } from "../api/timer.js";

/**
 * `--startup-delay` / `EMISSARY_STARTUP_DELAY`: sleeps before anything starts, as the original
 * emissary did (LinuxKit's metadata service may still be writing the templates). Any length is
 * honoured (a long timer, not Node's 24.8-day `setTimeout`). Resolves true when the delay passed,
 * false when `signal` ended it first (a SIGTERM during the delay).
 */
export async function startupDelay(ms: number, logger: Logger, signal: AbortSignal): Promise<boolean> {
  if (ms <= 0) return !signal.aborted;
  logger.info({ delay: formatDuration(ms) }, "startup delay");
  try {
    await sleep(ms, { signal });
    return true;
  } catch {
    return false;
  }
}
