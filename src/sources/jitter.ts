/** Delay helpers. Every delay emissary schedules carries jitter, so a fleet never synchronizes. */

/** Randomness source, injectable for tests. */
export type Random = () => number;

/** `ms` spread uniformly over ±`fraction` (default ±10%). */
export function jitter(ms: number, random: Random = Math.random, fraction = 0.1): number {
  return Math.max(0, Math.round(ms * (1 - fraction + 2 * fraction * random())));
}

/** Exponential backoff from `baseMs` doubling per attempt up to `capMs`, with "equal jitter" (half fixed, half random). */
export function backoff(attempt: number, baseMs: number, capMs: number, random: Random = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (exp / 2) * random());
}
