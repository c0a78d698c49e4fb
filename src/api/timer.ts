/**
 * Timers for user-given durations. Node's `setTimeout` takes at most 2^31-1 ms (~24.8 days): a
 * longer delay is replaced by 1 ms with a warning, so `--startup-delay 600h` started at once and
 * `retry: 600h` retried a thousand times a second. {@link setLongTimeout} chains timers of at most
 * that length until the whole delay has passed, so every duration emissary accepts (up to 100
 * years) is honoured.
 * @module
 */

/** The longest delay one Node timer can take. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A pending {@link setLongTimeout}. */
export interface LongTimeout {
  /** Keeps the process alive while it is pending (the default). */
  ref(): LongTimeout;
  /** Lets the process exit while it is pending. */
  unref(): LongTimeout;
  /** True while it keeps the process alive. */
  hasRef(): boolean;
  /** True until it has fired or been cleared. */
  readonly pending: boolean;
}

/** Options for {@link setLongTimeout}. */
export interface LongTimeoutOptions {
  /** Do not keep the process alive for this timer. @defaultValue false */
  readonly unref?: boolean;
}

class Chained implements LongTimeout {
  #timer: NodeJS.Timeout | undefined;
  #remaining: number;
  #ref: boolean;
  constructor(
    private readonly fn: () => void,
    ms: number,
    opts: LongTimeoutOptions,
  ) {
    this.#ref = !opts.unref;
    // NaN and negative delays fire at once (as setTimeout does); Infinity never fires.
    this.#remaining = Number.isNaN(ms) || ms < 0 ? 0 : ms;
    this.#arm();
  }
  get pending(): boolean {
    return this.#timer !== undefined || this.#remaining === Infinity;
  }
  #arm(): void {
    if (this.#remaining === Infinity) return;
    const step = Math.min(this.#remaining, MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      this.#remaining -= step;
      if (this.#remaining > 0) {
        this.#arm();
        return;
      }
      this.#timer = undefined;
      this.fn();
    }, step);
    if (!this.#ref) this.#timer.unref?.();
  }
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#remaining = 0;
  }
  ref(): LongTimeout {
    this.#ref = true;
    this.#timer?.ref?.();
    return this;
  }
  unref(): LongTimeout {
    this.#ref = false;
    this.#timer?.unref?.();
    return this;
  }
  hasRef(): boolean {
    return this.#ref && this.#timer !== undefined;
  }
}

/**
 * Calls `fn` once after `ms` milliseconds, for any `ms` (longer than {@link MAX_TIMER_MS} is
 * chained). `Infinity` never fires; `NaN` and negative values fire on the next turn.
 * @example
 * const t = setLongTimeout(() => retry(), parseDuration("600h"), { unref: true });
 * clearLongTimeout(t);
 */
export function setLongTimeout(fn: () => void, ms: number, opts: LongTimeoutOptions = {}): LongTimeout {
  return new Chained(fn, ms, opts);
}

/** Cancels a {@link setLongTimeout}; `undefined` and already fired timers are ignored. */
export function clearLongTimeout(t: LongTimeout | undefined): void {
  if (t instanceof Chained) t.clear();
}

/** A promise that resolves after `ms` (any length), or rejects with the signal's reason when aborted. */
export function sleep(ms: number, opts: LongTimeoutOptions & { signal?: AbortSignal } = {}): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearLongTimeout(t);
      reject(signal!.reason as Error);
    };
    const t = setLongTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms, opts);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
