import { clearLongTimeout, setLongTimeout, type LongTimeout } from "../api/timer.js";

/**
 * `wait` quiescence, as consul-template does it: after the first render, a change re-renders
 * only once nothing has changed for `min`, and at the latest `max` after the first change.
 */
export class Quiescence {
  readonly #timers = new Map<string, { timer?: LongTimeout; firstAt: number; ready: boolean }>();
  readonly #onReady: () => void;

  /** `onReady` is called when a template's quiet period has passed. */
  constructor(onReady: () => void) {
    this.#onReady = onReady;
  }

  /** A change arrived for `id`: (re)start its quiet period. */
  touch(id: string, wait: { minMs: number; maxMs: number }, now = Date.now()): void {
    let s = this.#timers.get(id);
    if (!s) this.#timers.set(id, (s = { firstAt: now, ready: false }));
    if (s.ready) return;
    clearLongTimeout(s.timer);
    const deadline = s.firstAt + Math.max(wait.maxMs, wait.minMs);
    const delay = Math.max(0, Math.min(now + wait.minMs, deadline) - now);
    const state = s;
    s.timer = setLongTimeout(
      () => {
        state.ready = true;
        delete state.timer;
        this.#onReady();
      },
      delay,
      { unref: true },
    );
  }

  /** True when `id` may render now; consumes the readiness. No pending change counts as ready. */
  ready(id: string): boolean {
    const s = this.#timers.get(id);
    if (!s) return true;
    if (!s.ready) return false;
    this.#timers.delete(id);
    return true;
  }

  /** Drops the state of a removed template. */
  forget(id: string): void {
    const s = this.#timers.get(id);
    clearLongTimeout(s?.timer);
    this.#timers.delete(id);
  }

  /** Clears every timer. */
  stop(): void {
    for (const id of [...this.#timers.keys()]) this.forget(id);
  }
}
