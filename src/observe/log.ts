import { pino, type DestinationStream, type Logger, stdSerializers } from "pino";
import { createRequire } from "node:module";
import { LOG_FORMATS, LOG_LEVELS, REDACT_PATHS, safeError, silentLogger, type LogFormat, type LogLevel, type SafeError } from "../api/log.js";

export { LOG_FORMATS, LOG_LEVELS, REDACT_PATHS, safeError, silentLogger, type LogFormat, type LogLevel, type SafeError, type Logger };

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** @defaultValue "info" */
  level?: LogLevel;
  /** @defaultValue "json" */
  format?: LogFormat;
  /** Where lines go. @defaultValue stdout */
  destination?: DestinationStream;
}

/** Creates the emissary logger: pino JSON (or pretty) with redaction and the safe error serializer. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? "info",
    base: { name: "emissary" },
    redact: { paths: [...REDACT_PATHS], censor: "[redacted]" },
    serializers: { err: safeError, error: safeError, cause: safeError, req: stdSerializers.req },
  };
  if (opts.format === "pretty") {
    // Loaded only for `--log-format pretty`: the JSON default never pays for it (~20 ms at start-up).
    const pretty = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
    const stream = pretty({ sync: true, colorize: false, destination: 1 });
    return pino(options, opts.destination ?? stream);
  }
  return pino(options, opts.destination ?? pino.destination({ dest: 1, sync: true }));
}

