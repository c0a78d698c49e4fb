import type { Logger } from "pino";
import { refKey, type Backend, type Secret, type SecretRef } from "../api/backend.js";
import { formatDuration } from "../api/duration.js";
import { classifyError, TransientError, type ErrorClass } from "../api/errors.js";
import { backoff, jitter, type Random } from "./jitter.js";
import { safeError } from "../api/log.js";
import { isSecretValue, isUnsetValue } from "../api/bytes.js";
import type { SecretStore } from "./store.js";

/** Backoff base for transient errors. */
export const BACKOFF_BASE_MS = 1_000;
/** Backoff cap; also the retry interval for permission/authentication errors. */
export const BACKOFF_CAP_MS = 5 * 60_000;
/** Refresh interval when neither template, config nor backend names one. */
export const DEFAULT_REFRESH_MS = 5 * 60_000;
/**
 * A fetch that has not settled after this long is abandoned: its signal is aborted and it counts
 * as a transient failure, so a backend that hangs (a custom module without a timeout) cannot
 * freeze its references forever. The built-in backends time out long before.
 */
export const FETCH_DEADLINE_MS = 2 * 60_000;
/** Leased secrets are re-fetched at this fraction of their TTL. */
export const LEASE_FRACTION = 0.9;

/** Outcome of one fetch, reported to the runner and to observers. */
export interface FetchOutcome {
  readonly key: string;
  readonly ref: SecretRef;
  readonly outcome: "ok" | ErrorClass;
  /** True when the value differs from the stored one (only for "ok"). */
  readonly changed: boolean;
  readonly durationMs: number;
  /** Sanitized error (for observers); never contains a value. */
  readonly error?: Error;
}

/** Options for {@link Scheduler}. */
export interface SchedulerOptions {
  readonly store: SecretStore;
  readonly logger: Logger;
  /** Retry interval while a secret is not set. @defaultValue 10000 */
  readonly retryMs?: number;
  /** Called after every fetch. */
  readonly onFetch: (o: FetchOutcome) => void;
  /** Randomness for jitter (tests). */
  readonly random?: Random;
  /** See {@link FETCH_DEADLINE_MS}. @defaultValue 120000 */
  readonly fetchDeadlineMs?: number;
}

interface Entry {
  readonly key: string;
  readonly ref: SecretRef;
  readonly backend: Backend;
  /** Descriptive names of the reference as written, for logs. */
  label: string;
  refreshMs: number;
  timer?: NodeJS.Timeout;
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
        if (existing.lastClass === "ok" && !existing.inFlight) this.#schedule(existing, jitter(refreshMs, this.#random));
      }
      return key;
    }
    const entry: Entry = { key, ref, backend, label, refreshMs, inFlight: false, again: false, attempt: 0, abort: new AbortController(), released: false };
    this.#entries.set(key, entry);
    if (backend.watch) {
      try {
        entry.unwatch = backend.watch(ref, () => this.trigger(key));
      } catch (err) {
        this.#opts.logger.warn({ ref: label, err: safeError(err) }, "cannot watch secret; falling back to polling");
      }
    }
    if (this.#opts.store.get(key)) {
      entry.lastClass = "ok";
      entry.resolvedOnce = true;
      this.#schedule(entry, jitter(refreshMs, this.#random));
    } else {
      this.#enqueue(entry);
    }
    return key;
  }

  /** Fetches a reference now (a push source said it changed). */
  trigger(key: string): void {
    const e = this.#entries.get(key);
    if (!e || e.released || this.#stopped) return;
    if (e.inFlight) {
      e.again = true;
      return;
    }
    this.#enqueue(e);
  }

  /** Stops the loop of a reference no template uses anymore. */
  release(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    e.released = true;
    this.#entries.delete(key);
    if (e.timer) clearTimeout(e.timer);
    e.abort.abort();
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

  #schedule(e: Entry, delayMs: number): void {
    if (e.timer) clearTimeout(e.timer);
    if (this.#stopped || e.released) return;
    // Node timers overflow past 2^31-1 ms (~24.8 days); cap long refreshes.
    const delay = Math.min(Math.max(0, delayMs), 2 ** 31 - 1);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      this.#enqueue(e);
    }, delay);
    e.timer.unref?.();
  }

  #enqueue(e: Entry): void {
    if (e.timer) {
      clearTimeout(e.timer);
      e.timer = undefined;
    }
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
      const entries = [...set].filter((e) => !e.released && !e.inFlight);
      if (entries.length === 0) continue;
      if (backend.fetchMany && entries.length > 1) void this.#fetchMany(backend, entries);
      else for (const e of entries) void this.#fetchOne(e);
    }
  }

  async #fetchOne(e: Entry): Promise<void> {
    e.inFlight = true;
    const started = performance.now();
    const prev = this.#opts.store.get(e.key)?.secret;
    // One controller per fetch: the deadline aborts this fetch, not the reference's later ones.
    const abort = new AbortController();
    const onAbort = (): void => abort.abort();
    e.abort.signal.addEventListener("abort", onAbort, { once: true });
    let result: Secret | Error;
    try {
      const work = e.backend.fetch(e.ref, { signal: abort.signal, logger: this.#opts.logger, ...(prev ? { previous: prev } : {}) });
      result = await this.#deadline(work, abort, `backend "${e.backend.name}"`);
      if (!isSecret(result)) result = new TypeError(`backend "${e.backend.name}" returned no { value: string }`);
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
    } finally {
      e.abort.signal.removeEventListener("abort", onAbort);
    }
    this.#settle(e, result, performance.now() - started);
  }

  /** Races `work` against the fetch deadline; when it passes, aborts `abort` and rejects with a TransientError. */
  #deadline<T>(answer: Promise<T> | T, abort: AbortController, what: string): Promise<T> {
    // A backend written in plain JS may answer synchronously: treat that as a settled promise.
    const work = Promise.resolve(answer);
    const ms = this.#opts.fetchDeadlineMs ?? FETCH_DEADLINE_MS;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new TransientError(`${what} gave no answer within ${formatDuration(ms)}; the fetch was abandoned`));
      }, ms);
      timer.unref?.();
    });
    work.catch(() => undefined); // a rejection after the deadline is not unhandled
    return Promise.race([work, expired]).finally(() => clearTimeout(timer));
  }

  async #fetchMany(backend: Backend, entries: Entry[]): Promise<void> {
    for (const e of entries) e.inFlight = true;
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
      const work = backend.fetchMany!(entries.map((e) => e.ref), { signal: abort.signal, logger: this.#opts.logger, previous });
      results = await this.#deadline(work, abort, `backend "${backend.name}"`);
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

  #settle(e: Entry, result: Secret | Error, durationMs: number): void {
    e.inFlight = false;
    if (e.released || this.#stopped) return;
    const log = this.#opts.logger;
    if (!(result instanceof Error)) {
      const changed = this.#opts.store.set(e.key, result);
      if (e.lastClass && e.lastClass !== "ok") log.info({ ref: e.label }, "secret resolved");
      const firstResolve = !e.resolvedOnce;
      e.resolvedOnce = true;
      e.lastClass = "ok";
      e.attempt = 0;
      // A value that counts as "not yet set" (empty, intentionally-empty) is re-checked at the
      // retry interval, as the original did, not at the much longer refresh interval.
      const unset = isUnsetValue(result.value);
      let next = jitter(unset ? Math.min(this.#retryMs, e.refreshMs) : e.refreshMs, this.#random);
      // The first refresh lands anywhere in a window one whole interval wide (0.5–1.5 × refresh):
      // a fleet that boots within a minute would otherwise refresh in one burst every interval,
      // forever; never sooner than half an interval, so no secret is fetched twice in quick succession.
      if (firstResolve && !unset) next = Math.round(e.refreshMs * (0.5 + this.#random()));
      if (result.ttlMs !== undefined && result.ttlMs > 0) next = Math.min(next, jitter(result.ttlMs * LEASE_FRACTION, this.#random, 0.05));
      this.#schedule(e, next);
      this.#opts.onFetch({ key: e.key, ref: e.ref, outcome: "ok", changed, durationMs });
    } else {
      const cls = classifyError(result);
      const had = this.#opts.store.get(e.key) !== undefined;
      const first = e.lastClass !== cls;
      let delay: number;
      if (cls === "not_found") {
        delay = jitter(this.#retryMs, this.#random);
        if (first) {
          if (had) log.warn({ ref: e.label, reason: result.message }, "secret disappeared; keeping the last rendered files");
          else log.info({ ref: e.label, reason: result.message, retryInMs: delay }, "waiting for secret to be set");
        }
        e.attempt = 0;
      } else if (cls === "transient") {
        delay = backoff(e.attempt++, BACKOFF_BASE_MS, BACKOFF_CAP_MS, this.#random);
        const after = (result as { retryAfterMs?: unknown }).retryAfterMs;
        if (typeof after === "number" && after > delay) delay = Math.min(after, BACKOFF_CAP_MS);
        log.warn({ ref: e.label, err: safeError(result), attempt: e.attempt, retryInMs: delay }, "fetching secret failed; backing off");
      } else {
        delay = jitter(BACKOFF_CAP_MS, this.#random);
        log.error({ ref: e.label, err: safeError(result), retryInMs: delay }, "secret cannot be fetched (permission, authentication or bad reference); retrying at the cap");
      }
      e.lastClass = cls;
      this.#schedule(e, delay);
      this.#opts.onFetch({ key: e.key, ref: e.ref, outcome: cls, changed: false, durationMs, error: result });
    }
    if (e.again) {
      e.again = false;
      this.#enqueue(e);
    }
  }
}

function isSecret(v: unknown): v is Secret {
  return typeof v === "object" && v !== null && !(v instanceof Error) && isSecretValue((v as Secret).value);
}
