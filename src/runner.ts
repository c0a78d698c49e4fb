import type { Logger } from "pino";
import type { RunnerEvents } from "./observe/events.js";
import { resolveValues, type LastCommand, type TemplateEntry } from "./templates/entry.js";
import type { CommandJob, CommandQueue } from "./output/commands.js";
import { TemplateError, WriteError } from "./api/errors.js";
import { safeError } from "./api/log.js";
import { clearLongTimeout, setLongTimeout } from "./api/timer.js";
import type { SecretStore } from "./sources/store.js";
import type { Template } from "./templates/parse.js";
import { renderOutput } from "./templates/render.js";
import { resolveOwner, writeAtomic } from "./output/writer.js";
import { Quiescence } from "./output/quiescence.js";
import { valueTexts } from "./output/mask.js";
import { changedNames, fingerprints } from "./templates/changes.js";

/** How many templates of one pass are rendered and written at the same time. */
export const WRITE_CONCURRENCY = 16;

/**
 * Maps `items` through `fn` with at most `limit` calls in flight; results keep the input order.
 * Items with the same destination run one after the other, in order, so the last template
 * naming a file still wins as it would sequentially.
 */
async function mapLimit<T extends { t: Template }, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  const tails = new Map<string, Promise<unknown>>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const item = items[i]!;
      const before = tails.get(item.t.dest) ?? Promise.resolve();
      const run = before.then(() => fn(item)).then((r) => {
        results[i] = r;
      });
      tails.set(item.t.dest, run.catch(() => undefined));
      await run;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export { resolveValues, type Binding, type LastCommand, type TemplateEntry, type TemplateStateName } from "./templates/entry.js";
export type { RunnerEvents } from "./observe/events.js";

/** Options for {@link Runner}. */
export interface RunnerOptions {
  readonly store: SecretStore;
  readonly logger: Logger;
  readonly commands: CommandQueue;
  readonly retryMs: number;
  readonly emit: <K extends keyof RunnerEvents>(event: K, payload: RunnerEvents[K]) => void;
  /** Called after each pass (for settle checks). */
  readonly afterPass?: () => void;
  /** In `once` mode a write failure is final instead of retried. */
  readonly once?: boolean;
}

/**
 * One pass: render every dirty template whose secrets have all resolved, write the ones whose
 * bytes, mode or owner changed, then queue their commands — identical ones once, in template
 * order, after all the pass's writes.
 */
export class Runner {
  #entries: TemplateEntry[] = [];
  #byKey = new Map<string, TemplateEntry[]>();
  #passQueued = false;
  #passRunning = false;
  #rerun = false;
  #stopped = false;
  #passStartedAt: number | undefined;
  /** Writes whose command is queued or running, by template file (their log line waits for it). */
  readonly #awaitingCommand = new Map<string, { log: Logger; fields: Record<string, unknown>; command: string; writes: number }>();
  readonly #quiet: Quiescence;
  readonly #opts: RunnerOptions;

  constructor(opts: RunnerOptions) {
    this.#opts = opts;
    this.#quiet = new Quiescence(() => this.schedulePass());
  }

  /** Templates in order. */
  get entries(): readonly TemplateEntry[] {
    return this.#entries;
  }

  /** True while a pass is queued or running. */
  get busy(): boolean {
    return this.#passQueued || this.#passRunning;
  }

  /** Epoch ms when the pass now running started; undefined between passes (a liveness signal). */
  get passStartedAt(): number | undefined {
    return this.#passStartedAt;
  }

  /** Replaces the template set (ordered by file name); new and changed entries render at once. */
  setTemplates(entries: TemplateEntry[]): void {
    const keep = new Set(entries);
    for (const old of this.#entries) {
      if (!keep.has(old)) {
        clearLongTimeout(old.retryTimer);
        this.#quiet.forget(old.file);
      }
    }
    this.#entries = entries;
    this.#byKey.clear();
    for (const e of entries) {
      for (const b of e.bindings) {
        let list = this.#byKey.get(b.key);
        if (!list) this.#byKey.set(b.key, (list = []));
        if (!list.includes(e)) list.push(e);
      }
    }
    this.schedulePass();
  }

  /** A stored value changed: re-render the templates that use it. */
  keyChanged(key: string): void {
    for (const e of this.#byKey.get(key) ?? []) this.#markDirty(e);
    this.schedulePass();
  }

  /** Stops timers; no pass runs afterwards. */
  stop(): void {
    this.#stopped = true;
    this.#quiet.stop();
    for (const e of this.#entries) clearLongTimeout(e.retryTimer);
  }

  /** Queues a pass on the next tick (many changes in one tick make one pass). */
  schedulePass(): void {
    if (this.#stopped) return;
    if (this.#passRunning) {
      this.#rerun = true;
      return;
    }
    if (this.#passQueued) return;
    this.#passQueued = true;
    setImmediate(() => void this.#pass());
  }

  #markDirty(e: TemplateEntry): void {
    if (!e.template) return;
    if (e.hasRendered && e.template.wait) this.#quiet.touch(e.file, e.template.wait);
    e.dirty = true;
  }

  async #pass(): Promise<void> {
    this.#passQueued = false;
    if (this.#stopped) return;
    this.#passRunning = true;
    this.#passStartedAt = Date.now();
    const jobs = new Map<string, CommandJob>();
    try {
      const candidates: TemplateEntry[] = [];
      // Issued references (writes) of templates whose `wait` holds them back this pass.
      const held = new Set<string>();
      for (const e of this.#entries) {
        if (!e.dirty || !e.template || this.#stopped) continue;
        if (e.hasRendered && e.template.wait && !this.#quiet.ready(e.file)) {
          for (const b of e.bindings) if (b.spec.ref.params !== undefined) held.add(b.key);
          continue;
        }
        candidates.push(e);
      }
      // Every template of one issuance is written in the same pass (a certificate and its key
      // always match): one that shares an issued reference with a held template waits for it.
      // Values are read from the store now, for the whole pass, so a fetch that lands while the
      // pass writes cannot give one template the new certificate and its partner the old one.
      const ready: { e: TemplateEntry; t: Template; resolved: ReturnType<typeof resolveValues> }[] = [];
      for (const e of candidates) {
        if (held.size > 0 && e.bindings.some((b) => held.has(b.key))) continue;
        e.dirty = false;
        ready.push({ e, t: e.template!, resolved: resolveValues(e.bindings, this.#opts.store) });
      }
      // Writes run with bounded concurrency: one atomic write is a dozen sequential fs calls, and
      // the thread pool does them in parallel. Results are collected in template order.
      const results = await mapLimit(ready, WRITE_CONCURRENCY, ({ e, t, resolved }) => this.#renderOne(e, t, resolved));
      for (let i = 0; i < ready.length; i++) {
        const job = results[i];
        if (!job) continue;
        const key = JSON.stringify(job.argv);
        const same = jobs.get(key);
        // One run for the pass, with the longest splay and interval its templates ask for, and
        // every value its templates rendered with to mask.
        if (same) jobs.set(key, { ...same, templates: [...same.templates, ready[i]!.e.file], splayMs: Math.max(same.splayMs ?? 0, job.splayMs ?? 0), minIntervalMs: Math.max(same.minIntervalMs ?? 0, job.minIntervalMs ?? 0), mask: [...(same.mask ?? []), ...(job.mask ?? [])] });
        else jobs.set(key, job);
      }
    } finally {
      this.#passRunning = false;
      this.#passStartedAt = undefined;
    }
    // Commands go after every write of the pass, in template order.
    if (jobs.size > 0 && !this.#stopped) this.#opts.commands.enqueue([...jobs.values()]);
    if (this.#rerun) {
      this.#rerun = false;
      this.schedulePass();
    }
    this.#opts.afterPass?.();
  }

  async #renderOne(e: TemplateEntry, t: Template, resolved: ReturnType<typeof resolveValues>): Promise<CommandJob | undefined> {
    const log = this.#opts.logger.child({ template: e.file, dest: t.dest });
    const { values, missing, invalid } = resolved;
    if (invalid.length > 0) {
      // A value that is there but unusable (not base64 under decode: base64): the last good file stays.
      e.pending = [];
      this.#fail(e, log, new TemplateError(invalid.map((err) => err.message).join("; "), { file: e.file }), false);
      return undefined;
    }
    if (missing.length > 0) {
      const changedList = missing.join("\n") !== e.pending.join("\n");
      e.pending = missing;
      if (!e.hasRendered) e.state = "pending";
      if (changedList) {
        log.debug({ pending: missing }, "template waiting for secrets");
        this.#opts.emit("pending", { template: e.file, dest: t.dest, missing });
      }
      return undefined;
    }
    e.pending = [];
    let output: string | Uint8Array;
    try {
      output = renderOutput(t, values);
    } catch (err) {
      // Rendering errors never quote values: our own TemplateErrors name secrets and references
      // only; anything else is reported by the template and the error type.
      this.#fail(e, log, err instanceof TemplateError ? err : new TemplateError(`rendering failed (${(err as Error).name})`, { file: e.file }), false);
      return undefined;
    }
    try {
      if (!e.owner && (t.owner !== undefined || t.group !== undefined)) e.owner = await resolveOwner(t.owner, t.group);
      const res = await writeAtomic({ path: t.dest, content: output, mode: t.mode, ...(e.owner ?? {}), logger: log });
      const now = Date.now();
      e.lastRenderAt = now;
      e.hasRendered = true;
      e.state = "rendered";
      delete e.lastError;
      if (e.retryTimer) {
        clearLongTimeout(e.retryTimer);
        delete e.retryTimer;
      }
      this.#opts.emit("render", { template: e.file, dest: t.dest, changed: res.changed });
      // The destination now matches these values: the next write names what changed since.
      const fps = fingerprints(values);
      const changed = changedNames(e.fingerprints, fps);
      e.fingerprints = fps;
      if (!res.changed) {
        log.debug("rendered; destination unchanged");
        return undefined;
      }
      e.lastWriteAt = now;
      e.lastChanged = changed;
      this.#opts.emit("write", { template: e.file, dest: t.dest, inPlace: res.inPlace, ...(res.reason ? { reason: res.reason } : {}), changed });
      const fields = { ...(res.reason ? { reason: res.reason } : {}), inPlace: res.inPlace, changed };
      if (!t.command) {
        log.info({ ...fields, commandRan: false }, "wrote destination");
        return undefined;
      }
      // One line per write, naming the command's outcome: it is logged when the command finishes.
      // Writes that share one command run (a queued or waiting command) are logged as one line
      // naming every secret that changed in any of them.
      const waiting = this.#awaitingCommand.get(e.file);
      const all = waiting ? [...new Set([...(waiting.fields.changed as string[]), ...changed])] : changed;
      this.#awaitingCommand.set(e.file, { log, fields: { ...fields, changed: all }, command: t.command[0]!, writes: (waiting?.writes ?? 0) + 1 });
      // The values rendered: masked out of whatever the command prints before it is logged.
      const mask = [...values.values()].flatMap(valueTexts);
      // `once` honours splay (a fleet's boot) but not min_interval (it runs each command once anyway).
      return { argv: t.command, timeoutMs: t.commandTimeoutMs, templates: [e.file], splayMs: t.splayMs, minIntervalMs: this.#opts.once ? 0 : t.minIntervalMs, mask };
    } catch (err) {
      this.#fail(e, log, err instanceof Error ? err : new Error(String(err)), true);
      return undefined;
    }
  }

  #fail(e: TemplateEntry, log: Logger, err: Error, retry: boolean): void {
    e.state = "error";
    e.lastError = err.message;
    log.error({ err: safeError(err) }, err instanceof WriteError ? "cannot write destination; the last good file stays" : "template failed");
    this.#opts.emit("error", { template: e.file, error: err });
    if (this.#opts.once || !retry) {
      e.failed = true;
      return;
    }
    clearLongTimeout(e.retryTimer);
    e.retryTimer = setLongTimeout(
      () => {
        delete e.retryTimer;
        delete e.owner;
        e.dirty = true;
        this.schedulePass();
      },
      this.#opts.retryMs,
      { unref: true },
    );
  }

  /**
   * Records a finished command on the templates that asked for it, and logs the one line per
   * write: destination, whether the command ran, its exit code and duration.
   */
  commandDone(templates: readonly string[], result: LastCommand): void {
    for (const e of this.#entries) if (templates.includes(e.file)) e.lastCommand = result;
    for (const file of templates) {
      const w = this.#awaitingCommand.get(file);
      if (!w) continue;
      this.#awaitingCommand.delete(file);
      const fields = {
        ...w.fields,
        ...(w.writes > 1 ? { writes: w.writes } : {}),
        command: w.command,
        // A command that could not be spawned (ENOENT) has neither an exit code nor a signal.
        commandRan: result.exitCode !== null || result.signal !== null,
        exitCode: result.exitCode,
        ...(result.signal ? { signal: result.signal } : {}),
        ...(result.timedOut ? { timedOut: true } : {}),
        commandDurationMs: Math.round(result.durationMs),
      };
      if (result.ok) w.log.info(fields, "wrote destination");
      else w.log.warn({ ...fields, ...(result.error ? { commandError: result.error } : {}) }, "wrote destination; command failed");
    }
  }

  /** Logs the writes whose command never ran (dropped at stop). Call after the command queue stopped. */
  flushWriteLogs(): void {
    for (const w of this.#awaitingCommand.values()) {
      w.log.warn({ ...w.fields, ...(w.writes > 1 ? { writes: w.writes } : {}), command: w.command, commandRan: false }, "wrote destination; command not run (stopping)");
    }
    this.#awaitingCommand.clear();
  }
}
