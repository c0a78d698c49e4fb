/**
 * Operator refreshes are rate-limited per reference: a script that loops on `emissary refresh`
 * must not hammer a backend. A refresh of a reference whose last forced fetch started less than
 * {@link REFRESH_WINDOW_MS} ago is answered with that fetch's outcome (waiting for it when it is
 * still in flight), marked `rateLimited`, and fetches nothing.
 * @module
 */
import type { FetchOutcome } from "./scheduler.js";

/** Shortest time between two forced fetches of one reference. @defaultValue 1000 */
export const REFRESH_WINDOW_MS = 1_000;

/** What {@link RefreshLimiter.run} answers. */
export interface LimitedOutcome {
  readonly outcome: FetchOutcome;
  /** The answer is the last refresh's: nothing was fetched for this request. */
  readonly rateLimited: boolean;
}

/** Options for {@link RefreshLimiter}. */
export interface RefreshLimiterOptions {
  /** @defaultValue {@link REFRESH_WINDOW_MS} */
  readonly windowMs?: number;
  /** Clock (tests). @defaultValue Date.now */
  readonly now?: () => number;
}

/** The per-reference rate limit of forced fetches. */
export class RefreshLimiter {
  readonly #last = new Map<string, { startedAt: number; answer: Promise<FetchOutcome | undefined> }>();
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(opts: RefreshLimiterOptions = {}) {
    this.#windowMs = opts.windowMs ?? REFRESH_WINDOW_MS;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Runs `start` (a forced fetch of `key`) unless one started within the window; resolves with
   * its outcome, or undefined when `start` had nothing to fetch (the key is not scheduled).
   */
  async run(key: string, start: () => Promise<FetchOutcome> | undefined): Promise<LimitedOutcome | undefined> {
    const now = this.#now();
    // Entries past the window are never consulted again: drop them, so the map stays small.
    for (const [k, v] of this.#last) if (now - v.startedAt >= this.#windowMs) this.#last.delete(k);
    const last = this.#last.get(key);
    if (last) {
      const outcome = await last.answer;
      return outcome ? { outcome, rateLimited: true } : undefined;
    }
    const answer = Promise.resolve(start());
    this.#last.set(key, { startedAt: now, answer });
    const outcome = await answer;
    return outcome ? { outcome, rateLimited: false } : undefined;
  }
}
