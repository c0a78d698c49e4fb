import type { Logger } from "pino";
import { CommandTiming, type CommandWait, type Random } from "./command-timing.js";
import { childEnv, runCommand, type CommandResult } from "./executor.js";
import { MIN_MASK_LENGTH, maskOutput, secretForms } from "./mask.js";

/** A command to run after a write. */
export interface CommandJob {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  /** Template files whose writes asked for it, in template order. */
  readonly templates: string[];
  /** Wait a random 0–splayMs before the run. @defaultValue 0 */
  readonly splayMs?: number;
  /** Start no sooner than this after the command's last start. @defaultValue 0 */
  readonly minIntervalMs?: number;
  /**
   * The secret values those templates rendered with: masked out of the command's output before
   * it is logged or reported, at any level.
   */
  readonly mask?: readonly string[];
}

/** What a finished command reports. */
export interface CommandEvent extends CommandResult {
  readonly command: readonly string[];
  readonly templates: readonly string[];
}

/** Options for {@link CommandQueue}. */
export interface CommandQueueOptions {
  readonly logger: Logger;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Names of variables a command must not inherit (read as `env:` secrets); asked at each run. */
  readonly hiddenEnv?: () => Iterable<string>;
  readonly onDone: (e: CommandEvent) => void;
  /** Called when the queue has drained. */
  readonly onIdle?: () => void;
  /** Called when a command is held for its splay or minimum interval. */
  readonly onWait?: (w: CommandWait) => void;
  /**
   * Every other secret value emissary holds (of any template), masked out of command output too:
   * a command run for one template may print another's file. Asked only when there is output.
   */
  readonly otherSecrets?: () => Iterable<string>;
  /** Randomness for splay (tests). @defaultValue Math.random */
  readonly random?: Random;
}

/** `job` with the templates (and values to mask) of `extra` added and the larger timeout, splay and interval. */
function merge(job: CommandJob, extra: CommandJob): CommandJob {
  const templates = [...job.templates];
  for (const t of extra.templates) if (!templates.includes(t)) templates.push(t);
  const max = (a?: number, b?: number): number => Math.max(a ?? 0, b ?? 0);
  const mask = [...(job.mask ?? []), ...(extra.mask ?? [])];
  return { ...job, templates, timeoutMs: Math.max(job.timeoutMs, extra.timeoutMs), splayMs: max(job.splayMs, extra.splayMs), minIntervalMs: max(job.minIntervalMs, extra.minIntervalMs), mask };
}

/**
 * Runs reload commands one at a time: commands never overlap. Identical commands submitted in
 * one pass run once (the caller dedupes a pass); an identical command that is queued and not yet
 * started — or waiting for its splay or minimum interval ({@link CommandTiming}) — absorbs a new
 * request instead of running twice.
 */
export class CommandQueue {
  readonly #queue: { key: string; job: CommandJob }[] = [];
  #running = false;
  #idleWaiters: (() => void)[] = [];
  readonly #abort = new AbortController();
  readonly #opts: CommandQueueOptions;
  readonly #timing: CommandTiming<CommandJob>;

  constructor(opts: CommandQueueOptions) {
    this.#opts = opts;
    this.#timing = new CommandTiming<CommandJob>({
      release: (key, job) => this.#push(key, job),
      ...(opts.random ? { random: opts.random } : {}),
    });
  }

  /** True when nothing is queued, waiting or running. */
  get idle(): boolean {
    return !this.#running && this.#queue.length === 0 && this.#timing.size === 0;
  }

  /** Commands waiting for their splay or minimum interval, soonest first. */
  waiting(): CommandWait[] {
    return this.#timing.waiting();
  }

  /** Queues jobs in order (a job with a splay or a minimum interval may wait first). */
  enqueue(jobs: readonly CommandJob[]): void {
    for (const job of jobs) {
      const key = JSON.stringify(job.argv);
      const held = this.#timing.held(key);
      if (held) {
        this.#timing.update(key, merge(held, job));
        continue;
      }
      if (this.#queue.some((q) => q.key === key)) {
        this.#push(key, job);
        continue;
      }
      const copy = { ...job, templates: [...job.templates] };
      if (this.#timing.hold(key, copy)) {
        const w = this.#timing.waiting().find((x) => JSON.stringify(x.command) === key);
        if (w) this.#opts.onWait?.(w);
        continue;
      }
      this.#push(key, copy);
    }
  }

  /** Queues one job now, or folds it into an identical queued one; starts draining. */
  #push(key: string, job: CommandJob): void {
    const queued = this.#queue.find((q) => q.key === key);
    if (queued) queued.job = merge(queued.job, job);
    else this.#queue.push({ key, job: { ...job, templates: [...job.templates] } });
    void this.#drain();
  }

  /**
   * What to mask in a job's output: its templates' values (a short one withholds the output) and
   * every other value emissary holds (long enough to mask).
   */
  #forms(job: CommandJob): string[] {
    const others = [...(this.#opts.otherSecrets?.() ?? [])].filter((v) => v.length >= MIN_MASK_LENGTH);
    return [...new Set([...secretForms(job.mask ?? []), ...secretForms(others)])].sort((a, b) => b.length - a.length);
  }

  /** Resolves when the queue is empty and no command runs. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /** Drops queued and waiting commands; a running command gets its timeout (or is ended when `force`). */
  async stop(force = false): Promise<void> {
    this.#queue.length = 0;
    this.#timing.stop();
    if (force) this.#abort.abort();
    await this.whenIdle();
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const { key, job } = this.#queue.shift()!;
        this.#timing.started(key);
        const log = this.#opts.logger.child({ templates: job.templates, command: job.argv[0] });
        log.debug({ argv: job.argv }, "running command");
        const result = await runCommand({
          argv: job.argv,
          timeoutMs: job.timeoutMs,
          env: childEnv(this.#opts.env, this.#opts.hiddenEnv?.() ?? []),
          signal: this.#abort.signal,
          ...(this.#opts.cwd ? { cwd: this.#opts.cwd } : {}),
        });
        // What the command printed may include secrets: every value its templates rendered with is
        // masked first — before the tail is cut, so no cut leaves half a secret — for the log line
        // and for listeners of the "command" event alike.
        const outputTail = result.outputTail ? maskOutput(result.outputTail, this.#forms(job)) : "";
        const fields = { exitCode: result.exitCode, signal: result.signal, durationMs: Math.round(result.durationMs), timedOut: result.timedOut };
        // The per-write line (runner) reports the outcome at info; this one is for debugging.
        if (result.ok) log.debug(fields, "command finished");
        else {
          log.warn({ ...fields, reason: result.error }, result.timedOut ? "command timed out and was killed" : "command failed");
          // Masked, and at debug (off by default) all the same.
          if (outputTail) log.debug({ outputTail: tail(outputTail) }, "output of the failed command");
        }
        this.#opts.onDone({ ...result, outputTail, command: job.argv, templates: job.templates });
      }
    } finally {
      this.#running = false;
      // A command still waiting for its splay or interval keeps the queue busy.
      if (this.idle) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const w of waiters) w();
        this.#opts.onIdle?.();
      }
    }
  }
}

/** The last few lines of a command's output, for a failure log line. */
function tail(text: string): string {
  const lines = text.trimEnd().split("\n");
  return lines.slice(-10).join("\n").slice(-1000);
}
