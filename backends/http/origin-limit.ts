/**
 * At most a few requests in flight per origin. fetch() opens a new connection for every request
 * that finds no idle one, so a refresh of 100 references on one server opened 100 connections
 * (measured); with a limit, requests queue for the kept-alive connections instead.
 * @module
 */

/** Requests in flight per origin. */
export const PER_ORIGIN = 4;

/** A queue of waiting requests per origin. */
export class OriginLimit {
  readonly #busy = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(private readonly limit = PER_ORIGIN) {}

  /** Runs `fn` when the origin has a free slot; the slot is freed when it settles. */
  async run<T>(origin: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    let o = this.#busy.get(origin);
    if (!o) this.#busy.set(origin, (o = { running: 0, waiting: [] }));
    if (o.running >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const go = (): void => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = o!.waiting.indexOf(go);
          if (i !== -1) o!.waiting.splice(i, 1);
          reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        o!.waiting.push(go);
      });
    }
    o.running++;
    try {
      return await fn();
    } finally {
      o.running--;
      const next = o.waiting.shift();
      if (next) next();
      else if (o.running === 0) this.#busy.delete(origin);
    }
  }
}
