import type { Logger } from "pino";
import type { FlagValues, ResolvedConfig } from "../config/resolve.js";
import { createEmissary, type Emissary } from "../emissary.js";
import { safeError } from "../api/log.js";
import type { StatusServer } from "../observe/status-server.js";
import { startupDelay } from "./startup-delay.js";

/** Options for {@link runDaemon}. */
export interface DaemonOptions {
  readonly config: ResolvedConfig;
  readonly logger: Logger;
  /** The command-line flags, so SIGHUP re-reads the config file and environment with them. */
  readonly flags?: FlagValues;
}

/**
 * `emissary run`: the long-running daemon. Installs the only signal handlers of the program:
 * SIGHUP reloads, SIGUSR1 fetches every reference now (`emissary refresh` without names),
 * SIGTERM/SIGINT stop gracefully, a second one forces. Resolves with the exit code.
 * Nothing else ends it: not a bad template, a failing command or an unreachable backend.
 */
export async function runDaemon({ config, logger, flags }: DaemonOptions): Promise<number> {
  let emissary: Emissary | undefined;
  let status: StatusServer | undefined;
  let stopping: Promise<number> | undefined;
  const delayAbort = new AbortController();
  let done: (code: number) => void = () => undefined;
  const finished = new Promise<number>((r) => (done = r));

  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, "second signal: forcing stop");
      void emissary?.stop({ force: true });
      setTimeout(() => done(1), 2000).unref();
      return;
    }
    logger.info({ signal }, "stopping gracefully");
    delayAbort.abort();
    stopping = (async () => {
      // Stop emissary first so /healthz answers 503 while it winds down, then close the server.
      await emissary?.stop();
      await status?.close();
      return 0;
    })();
    void stopping.then(done, () => done(1));
  };
  const onTerm = (): void => stop("SIGTERM");
  const onInt = (): void => stop("SIGINT");
  const onHup = (): void => {
    if (!emissary || stopping) return;
    logger.info({ signal: "SIGHUP" }, "reload requested");
    void emissary.reload();
  };
  const onUsr1 = (): void => {
    if (!emissary || stopping) return;
    // refresh() logs what it did; a failure here is only "not running yet".
    emissary.refresh({ source: "SIGUSR1" }).catch((err: unknown) => logger.warn({ signal: "SIGUSR1", err: safeError(err) }, "refresh not possible now"));
  };
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  process.on("SIGHUP", onHup);
  process.on("SIGUSR1", onUsr1);
  // A bug must not take every machine's secrets down with it: log it and keep running.
  const onUncaught = (err: unknown): void => logger.error({ err: safeError(err) }, "internal error (please report); emissary keeps running");
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);

  try {
    if (!(await startupDelay(config.startupDelayMs, logger, delayAbort.signal)) || stopping) return await finished;
    emissary = await createEmissary({ resolved: config, logger, ...(flags ? { flags } : {}) });
    if (config.statusAddr) {
      // Loaded only when asked for: prom-client costs ~10 MB of RSS on every machine otherwise.
      const { startStatusServer } = await import("../observe/status-server.js");
      status = await startStatusServer({ emissary, address: config.statusAddr, logger, ...(config.controlTokenFile ? { controlTokenFile: config.controlTokenFile } : {}) });
    }
    await emissary.start();
    if (stopping) await emissary.stop();
    return await finished;
  } finally {
    process.off("SIGTERM", onTerm);
    process.off("SIGINT", onInt);
    process.off("SIGHUP", onHup);
    process.off("SIGUSR1", onUsr1);
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUncaught);
  }
}
