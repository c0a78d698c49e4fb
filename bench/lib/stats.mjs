// @ts-check
/**
 * Pure statistics helpers for the benchmarks: percentiles, summaries, per-second request rates.
 * No I/O here, so test/unit/bench-lib.test.ts can check every function.
 * @module
 */

/**
 * Nearest-rank percentile: the smallest value such that at least `p`% of the values are ≤ it.
 * This is the definition load-testing tools (and consul-template's own telemetry) report, and
 * it always returns a value that was actually measured.
 * @param {readonly number[]} values - samples, any order
 * @param {number} p - percentile in [0, 100]
 * @returns {number} the percentile, or NaN for an empty list
 */
export function percentile(values, p) {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  if (p === 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Arithmetic mean; NaN for an empty list.
 * @param {readonly number[]} values
 * @returns {number}
 */
export function mean(values) {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/**
 * Median (the 50th nearest-rank percentile).
 * @param {readonly number[]} values
 * @returns {number}
 */
export function median(values) {
  return percentile(values, 50);
}

/**
 * @typedef {object} Summary
 * @property {number} n
 * @property {number} min
 * @property {number} p50
 * @property {number} p90
 * @property {number} p99
 * @property {number} max
 * @property {number} mean
 */

/**
 * Summary of a latency sample, values rounded to `digits` decimals.
 * @param {readonly number[]} values
 * @param {number} [digits] - decimals kept @defaultValue 2
 * @returns {Summary}
 */
export function summarize(values, digits = 2) {
  const r = (/** @type {number} */ v) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : NaN);
  return {
    n: values.length,
    min: r(values.length ? Math.min(...values) : NaN),
    p50: r(percentile(values, 50)),
    p90: r(percentile(values, 90)),
    p99: r(percentile(values, 99)),
    max: r(values.length ? Math.max(...values) : NaN),
    mean: r(mean(values)),
  };
}

/**
 * Counts events per bucket of `bucketMs`, from `startMs` (inclusive) to `endMs` (exclusive).
 * Only whole buckets are kept: events outside them (before the window, or in a partial last
 * bucket) are ignored, so every bucket spans the same time and rates compare fairly.
 * @param {readonly number[]} timestamps - event times in ms
 * @param {{ startMs: number, endMs: number, bucketMs?: number }} window - @defaultValue bucketMs 1000
 * @returns {number[]} counts per bucket
 */
export function bucketCounts(timestamps, { startMs, endMs, bucketMs = 1000 }) {
  if (!(endMs > startMs)) return [];
  const n = Math.floor((endMs - startMs) / bucketMs);
  const counts = new Array(Math.max(0, n)).fill(0);
  for (const t of timestamps) {
    if (t < startMs || t >= endMs) continue;
    const i = Math.floor((t - startMs) / bucketMs);
    if (i < counts.length) counts[i]++;
  }
  return counts;
}

/**
 * Peak and mean rate of a bucketed series, in events per second.
 * @param {readonly number[]} counts - events per bucket
 * @param {number} [bucketMs] - @defaultValue 1000
 * @returns {{ peak: number, mean: number, ratio: number, buckets: number }} ratio is peak / mean (NaN when mean is 0)
 */
export function peakAndMean(counts, bucketMs = 1000) {
  if (counts.length === 0) return { peak: NaN, mean: NaN, ratio: NaN, buckets: 0 };
  const perSec = counts.map((c) => (c * 1000) / bucketMs);
  const peak = Math.max(...perSec);
  const m = mean(perSec);
  return { peak, mean: Number(m.toFixed(2)), ratio: m > 0 ? Number((peak / m).toFixed(2)) : NaN, buckets: counts.length };
}

/**
 * Looks for requests of the same key closer together than `minGapMs`: with one loop per unique
 * reference and a refresh of R (±10% jitter), two reads of one secret are never closer than 0.9 R,
 * so any pair closer than R / 2 is a duplicate fetch.
 * @param {ReadonlyMap<string, readonly number[]> | Record<string, readonly number[]>} byKey - request times per key
 * @param {number} minGapMs
 * @returns {{ keys: number, requests: number, duplicates: number, perKeyMin: number, perKeyMax: number }}
 */
export function duplicateRequests(byKey, minGapMs) {
  const entries = byKey instanceof Map ? [...byKey.entries()] : Object.entries(byKey);
  let duplicates = 0;
  let requests = 0;
  let perKeyMin = Infinity;
  let perKeyMax = 0;
  for (const [, times] of entries) {
    const sorted = [...times].sort((a, b) => a - b);
    requests += sorted.length;
    perKeyMin = Math.min(perKeyMin, sorted.length);
    perKeyMax = Math.max(perKeyMax, sorted.length);
    for (let i = 1; i < sorted.length; i++) if (sorted[i] - sorted[i - 1] < minGapMs) duplicates++;
  }
  return { keys: entries.length, requests, duplicates, perKeyMin: entries.length ? perKeyMin : 0, perKeyMax };
}

/**
 * Formats a number for a table: `n/a` for NaN/undefined, else fixed decimals chosen by size.
 * @param {number | undefined | null} v
 * @param {number} [digits] - decimals; by default 0 for ≥ 100, 1 for ≥ 10, else 2
 * @returns {string}
 */
export function fmt(v, digits) {
  if (v === undefined || v === null || !Number.isFinite(v)) return "n/a";
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toFixed(d);
}
