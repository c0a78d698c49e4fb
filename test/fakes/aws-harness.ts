/**
 * Test harness for the awssm backend: builds it with a logger whose lines are captured, so tests
 * can assert on warnings and on the absence of secret values. Captured lines are also copied into
 * the suite's output directory, where the global teardown searches them for CANARY values.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import createAwsSmBackend, { type AwsSmBackend } from "../../backends/awssm.js";
import { createLogger, type FetchContext, type Logger, type Secret } from "../../src/index.js";

/** Log lines captured from a backend. */
export class CapturedLog {
  readonly lines: string[] = [];
  readonly logger: Logger;
  readonly #label: string;

  constructor(label: string) {
    this.#label = label;
    const stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) this.lines.push(line);
        cb();
      },
    });
    this.logger = createLogger({ level: "debug", destination: stream as unknown as pino.DestinationStream });
  }

  /** Parsed lines. */
  entries(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Lines whose `msg` contains `text`. */
  find(text: string): Record<string, unknown>[] {
    return this.entries().filter((e) => typeof e.msg === "string" && e.msg.includes(text));
  }

  /** Copies the lines into EMISSARY_TEST_OUTPUT_DIR for the global canary scan. */
  flush(): void {
    const dir = process.env.EMISSARY_TEST_OUTPUT_DIR;
    if (!dir || this.lines.length === 0) return;
    appendFileSync(join(dir, `${this.#label}-${process.pid}.log`), this.lines.join("\n") + "\n");
  }
}

/** Builds an awssm backend with `config` and `env`, logging into `log`. */
export function makeAwsSm(log: CapturedLog, config: Record<string, unknown>, env: Record<string, string | undefined> = {}): AwsSmBackend {
  return createAwsSmBackend({ config, env, logger: log.logger });
}

/** A fetch context with a fresh signal. */
export function fetchCtx(log: CapturedLog, previous?: Secret, signal?: AbortSignal): FetchContext {
  return { signal: signal ?? new AbortController().signal, logger: log.logger, ...(previous ? { previous } : {}) };
}
