/**
 * Bounded concurrency for file-system work: libuv runs fs calls on a small thread pool, and
 * awaiting a thousand files one after the other leaves it idle between calls (a cold start over
 * 1,000 templates spent more time waiting than working).
 * @module
 */

/** How many fs operations emissary keeps in flight by default: libuv's pool is 4 threads. */
export const FS_CONCURRENCY = 16;

/**
 * Maps `items` through `fn` with at most `limit` calls in flight. Results keep the input order;
 * the first rejection rejects the whole (after the calls in flight settle).
 */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
