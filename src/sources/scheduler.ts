import { refKey, type Backend, type FetchContext, type Secret, type SecretRef } from "../api/backend.js";
import { clearLongTimeout, setLongTimeout, type LongTimeout } from "../api/timer.js";
import { classifyError, TransientError, type ErrorClass } from "../api/errors.js";
import { isSecret, withDeadline } from "./deadline.js";
import { jitter, type Random } from "./jitter.js";
import { safeError } from "../api/log.js";
import { afterError, afterSuccess, type FetchTiming, type NextFetchReason } from "./timing.js";

export { BACKOFF_BASE_MS, BACKOFF_CAP_MS, LEASE_FRACTION, type FetchTiming, type NextFetchReason } from "./timing.js";

/** Refresh interval when neither template, config nor backend names one. */
export const DEFAULT_REFRESH_MS = 5 * 60_000;
/**
 * A fetch that has not settled after this long is abandoned: its signal is aborted and it counts
 * as a transient failure, so a backend that hangs (a custom module without a timeout) cannot
 * freeze its references forever. The built-in backends time out long before.
 */
export const FETCH_DEADLINE_MS = 2 * 60_000;

export type { FetchOutcome, ForceOptions, SchedulerOptions } from "./scheduler-types.js";
import type { FetchOutcome, ForceOptions, SchedulerOptions } from "./scheduler-types.js";

/** How a batch is fetched: as scheduled, or forced by an operator (with or without re-issue). */
type Mode = "normal" | "fresh" | "reissue";
const MODES: readonly Mode[] = ["normal", "fresh", "reissue"];
type Waiter = (o: FetchOutcome) => void;

interface Entry {
  readonly key: string;
  readonly ref: SecretRef;
  readonly backend: Backend;
  /** Descriptive names of the reference as written, for logs. */
  label: string;
  refreshMs: number;
  timer?: LongTimeout;
  inFlight: boolean;
  /** A trigger arrived during a fetch: fetch again right after. */
  again: boolean;
  attempt: number;
  lastClass?: ErrorClass | "ok";
  unwatch?: () => void;
  abort: AbortController;
  /** Resolved at least once in this loop (the first refresh is spread over the interval). */
  resolvedOnce?: boolean;
  released: boolean;
  /** An operator asked for a forced fetch that has not started yet. */
  force?: "fresh" | "reissue";
  /** Callers of refresh() waiting for the forced fetch that has not started yet. */
  waiters: Waiter[];
  /** Callers of refresh() waiting for the fetch in flight. */
  inflight?: Waiter[];
  nextAt?: number;
  reason?: NextFetchReason;
}

/**
 * One loop per unique reference key, however many templates use it: first fetch at once,
 * retry every `retryMs` while not set, re-fetch every `refreshMs` once resolved (or at 90% of a
 * lease), exponential backoff for transient errors, the cap for fatal ones. Push backends
 * (`watch`) trigger fetches on change. Due fetches of one backend in the same tick are batched
 * through `fetchMany` when the backend has it.
 */
export class Scheduler {
  readonly #entries = new Map<string, Entry>();
  readonly #due = new Map<Backend, Set<Entry>>();
  #flushScheduled = false;
  #stopped = false;
  readonly #opts: SchedulerOptions;
  readonly #random: Random;
  readonly #retryMs: number;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
    this.#retryMs = opts.retryMs ?? 10_000;
  }

  /** Number of unique references being scheduled. */
  get size(): number {
    return this.#entries.size;
  }

  /** True while any fetch is in flight. */
  get busy(): boolean {
    for (const e of this.#entries.values()) if (e.inFlight) return true;
    return false;
  }

  /**
   * Starts (or updates) the loop of one reference. A new reference is fetched at once unless
   * its value is already in the store (a reload), in which case the next refresh is scheduled.
   */
  ensure(ref: SecretRef, backend: Backend, refreshMs: number, label: string): string {
    const key = refKey(ref);
    const existing = this.#entries.get(key);
    if (existing) {
      existing.label = label;
      if (existing.refreshMs !== refreshMs) {
        existing.refreshMs = refreshMs;
        if (existing.lastClass === "ok" && !existing.inFlight) this.#schedule(existing, jitter(refreshMs, this.#random), "refresh");
      }
      return key;
    }
    const entry: Entry = { key, ref, backend, label, refreshMs, inFlight: false, again: false, attempt: 0, abort: new AbortController(), released: false, waiters: [] };
    this.#entries.set(key, entry);
    if (this.#opts.watchResolved !== false) this.#watch(entry);
    if (this.#opts.store.get(key)) {
      entry.lastClass = "ok";
      entry.resolvedOnce = true;
      this.#schedule(entry, jitter(refreshMs, this.#random), "refresh");
    } else {
      this.#enqueue(entry, "first");
    }
    return key;
  }

  /** Subscribes to the backend's change notifications for the entry, when it has them. */
  #watch(entry: Entry): void {
    if (!entry.backend.watch || entry.unwatch || entry.released || this.#stopped) return;
    try {
      // The held value (fetched before a reload) is the watch's start: a change meanwhile counts.
      const held = this.#opts.store.get(entry.key)?.secret;
      entry.unwatch = entry.backend.watch(entry.ref, () => this.trigger(entry.key), held ? { previous: held } : {});
    } catch (err) {
      this.#opts.logger.warn({ ref: entry.label, err: safeError(err) }, "cannot watch secret; falling back to polling");
    }
  }

  /** Fetches a reference now (a push source said it changed). */
  trigger(key: string): void {
    const e = this.#entries.get(key);
    if (!e || e.released || this.#stopped) return;
    if (e.inFlight) {
      e.again = true;
      return;
    }
    this.#enqueue(e, "change");
  }

  /**
   * Fetches a reference now, ignoring its timer, with {@link FetchContext.fresh} (and `reissue`
   * when asked). A fetch already in flight is followed by the forced one. Resolves with the
   * outcome of the forced fetch; undefined when the key is not scheduled.
   */
  refresh(key: string, opts: ForceOptions = {}): Promise<FetchOutcome> | undefined {
    const e = this.#entries.get(key);
    if (!e || e.released || this.#stopped) return undefined;
    e.force = opts.reissue || e.force === "reissue" ? "reissue" : "fresh";
    const answer = new Promise<FetchOutcome>((resolve) => e.waiters.push(resolve));
    if (e.inFlight) e.again = true;
    else this.#enqueue(e, "operator");
    return answer;
  }

  /** When `key` is fetched next and why; undefined when it is not scheduled. */
  timing(key: string): FetchTiming | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.inFlight) return { fetching: true };
    return { fetching: false, ...(e.nextAt !== undefined ? { nextAt: e.nextAt } : {}), ...(e.reason ? { reason: e.reason } : {}) };
  }

  /** Stops the loop of a reference no template uses anymore. */
  release(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    e.released = true;
    this.#entries.delete(key);
    clearLongTimeout(e.timer);
    e.abort.abort();
    // Forced fetches that never started answer now; one in flight answers when it settles.
    for (const w of e.waiters.splice(0)) w(this.#gone(e, 0));
    try {
      e.unwatch?.();
    } catch {
      /* a failing unwatch must not stop the others */
    }
  }

  /** Keys currently scheduled. */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Stops every loop and aborts fetches in flight. */
  stop(): void {
    this.#stopped = true;
    for (const key of [...this.#entries.keys()]) this.release(key);
  }

  #schedule(e: Entry, delayMs: number, reason: NextFetchReason): void {
    clearLongTimeout(e.timer);
    if (this.#stopped || e.released) return;
    e.nextAt = Date.now() + Math.max(0, delayMs);
    e.reason = reason;
    // A long timer: intervals past Node's 24.8-day limit are honoured exactly.
    e.timer = setLongTimeout(() => {
      e.timer = undefined;
      this.#enqueue(e, reason);
    }, Math.max(0, delayMs), { unref: true });
  }

  #enqueue(e: Entry, reason: NextFetchReason): void {
    if (e.timer) {
      clearLongTimeout(e.timer);
      e.timer = undefined;
    }
    e.nextAt = Date.now();
    e.reason = reason;
    let set = this.#due.get(e.backend);
    if (!set) this.#due.set(e.backend, (set = new Set()));
    set.add(e);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // setImmediate collects every reference that came due in this tick into one batch.
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const due = [...this.#due.entries()];
    this.#due.clear();
    for (const [backend, set] of due) {
      const entries: Entry[] = [];
      for (const e of set) {
        if (e.released) continue;
        // Came due while its fetch was in flight: fetch again once that one settles.
        if (e.inFlight) e.again = true;
        else entries.push(e);
      }
      // Forced fetches go in calls of their own: the context's flags apply to a whole call.
      for (const mode of MODES) {
        const group = entries.filter((e) => (e.force ?? "normal") === mode);
        if (group.length === 0) continue;
        for (const e of group) {
          e.inFlight = true;
          e.inflight = e.waiters;
          e.waiters = [];
          delete e.force;
        }
        if (backend.fetchMany && group.length > 1) void this.#fetchMany(backend, group, mode);
        else for (const e of group) void this.#fetchOne(e, mode);
      }
    }
  }

  /** The context flags of a mode. */
  #flags(mode: Mode): { fresh?: true; reissue?: true } {
    return mode === "normal" ? {} : mode === "fresh" ? { fresh: true } : { fresh: true, reissue: true };
  }

  async #fetchOne(e: Entry, mode: Mode): Promise<void> {
    const started = performance.now();
    const prev = this.#opts.store.get(e.key)?.secret;
    // One controller per fetch: the deadline aborts this fetch, not the reference's later ones.
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    e.abort.signal.addEventListener("abort", onAbort, { once: true });
    let result: Secret | Error;
    try {
      const work = e.backend.fetch(e.ref, { ...this.#context(abort.signal), ...(prev ? { previous: prev } : {}), ...this.#flags(mode) });
      result = await withDeadline(work, abort, `backend "${e.backend.name}"`, this.#opts.fetchDeadlineMs ?? FETCH_DEADLINE_MS);
      if (!isSecret(result)) result = new TypeError(`backend "${e.backend.name}" returned no { value: string }`);
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
    } finally {
      e.abort.signal.removeEventListener("abort", onAbort);
    }
    this.#settle(e, result, performance.now() - started);
  }

  #context(signal: AbortSignal): Omit<FetchContext, "previous"> {
    return {
      signal,
      logger: this.#opts.logger,
      ...(this.#opts.state ? { state: this.#opts.state } : {}),
      ...(this.#opts.issue === false ? { issue: false } : {}),
    };
  }

  async #fetchMany(backend: Backend, entries: Entry[], mode: Mode): Promise<void> {
    const started = performance.now();
    const previous = new Map<string, Secret>();
    for (const e of entries) {
      const p = this.#opts.store.get(e.key)?.secret;
      if (p) previous.set(e.key, p);
    }
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    for (const e of entries) e.abort.signal.addEventListener("abort", onAbort, { once: true });
    let results: Map<string, Secret | Error>;
    try {
      const work = backend.fetchMany!(entries.map((e) => e.ref), { ...this.#context(abort.signal), previous, ...this.#flags(mode) });
      results = await withDeadline(work, abort, `backend "${backend.name}"`, this.#opts.fetchDeadlineMs ?? FETCH_DEADLINE_MS);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      results = new Map(entries.map((e) => [e.key, error]));
    }
    const elapsed = performance.now() - started;
    for (const e of entries) {
      e.abort.signal.removeEventListener("abort", onAbort);
      const r = results.get(e.key) ?? new Error(`backend "${backend.name}" returned nothing for this reference`);
      this.#settle(e, isSecret(r) || r instanceof Error ? r : new TypeError("bad result"), elapsed);
    }
  }

  /** The outcome handed to refresh() callers whose reference went away. */
  #gone(e: Entry, durationMs: number): FetchOutcome {
    return { key: e.key, ref: e.ref, outcome: "transient", changed: false, durationMs, error: new TransientError("emissary is stopping or no template uses the reference any more") };
  }

  #settle(e: Entry, result: Secret | Error, durationMs: number): void {
    e.inFlight = false;
    const waiters = e.inflight ?? [];
    delete e.inflight;
    if (e.released || this.#stopped) {
      for (const w of waiters) w(this.#gone(e, durationMs));
      return;
    }
    const outcome = this.#record(e, result, durationMs);
    for (const w of waiters) w(outcome);
    if (e.again) {
      e.again = false;
      this.#enqueue(e, e.force ? "operator" : "change");
    }
  }

  /** Stores a result, schedules the next fetch, reports the outcome. */
  #record(e: Entry, result: Secret | Error, durationMs: number): FetchOutcome {
    const log = this.#opts.logger;
    if (!(result instanceof Error)) {
      const changed = this.#opts.store.set(e.key, result);
      if (e.lastClass && e.lastClass !== "ok") log.info({ ref: e.label }, "secret resolved");
      const firstResolve = !e.resolvedOnce;
      e.resolvedOnce = true;
      e.lastClass = "ok";
      e.attempt = 0;
      const { delay, reason } = afterSuccess(result, { refreshMs: e.refreshMs, retryMs: this.#retryMs, firstResolve, random: this.#random });
      this.#schedule(e, delay, reason);
      const outcome: FetchOutcome = { key: e.key, ref: e.ref, outcome: "ok", changed, durationMs };
      this.#opts.onFetch(outcome);
      return outcome;
    }
    const cls = classifyError(result);
    const had = this.#opts.store.get(e.key) !== undefined;
    const first = e.lastClass !== cls;
    const delay = afterError(cls, { attempt: e.attempt, retryMs: this.#retryMs, retryAfterMs: (result as { retryAfterMs?: unknown }).retryAfterMs, random: this.#random });
    if (cls === "not_found") {
      if (first) {
        if (had) log.warn({ ref: e.label, reason: result.message }, "secret disappeared; keeping the last rendered files");
        else log.info({ ref: e.label, reason: result.message, retryInMs: delay }, "waiting for secret to be set");
      }
      e.attempt = 0;
    } else if (cls === "transient") {
      e.attempt++;
      log.warn({ ref: e.label, err: safeError(result), attempt: e.attempt, retryInMs: delay }, "fetching secret failed; backing off");
    } else {
      log.error({ ref: e.label, err: safeError(result), retryInMs: delay }, "secret cannot be fetched (permission, authentication or bad reference); retrying at the cap");
    }
    e.lastClass = cls;
    // `once`: watched from now on, so it resolves the moment it is set (nothing set meanwhile is missed).
    if (this.#opts.watchResolved === false) this.#watch(e);
    this.#schedule(e, delay, cls === "not_found" ? "retry" : "backoff");
    const outcome: FetchOutcome = { key: e.key, ref: e.ref, outcome: cls, changed: false, durationMs, error: result };
    this.#opts.onFetch(outcome);
    return outcome;
  }
}
