/**
 * Go `time.ParseDuration` syntax: a sequence of decimal numbers with units, e.g. `300ms`,
 * `1.5h`, `1m30s`. Units: ns, us (µs), ms, s, m, h. `0` alone is allowed, as in Go.
 */

const UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A duration string could not be parsed. The message quotes the input (durations are not secret). */
export class DurationError extends Error {
  constructor(input: string, reason: string) {
    super(`invalid duration "${input}": ${reason}`);
    this.name = "DurationError";
  }
}

/**
 * Parses a Go duration into milliseconds. Negative durations are rejected (no emissary setting
 * takes one).
 * @throws {@link DurationError}
 */
export function parseDuration(input: string): number {
  const s = String(input).trim();
  if (s === "") throw new DurationError(s, "empty");
  if (s === "0") return 0;
  if (s.startsWith("-")) throw new DurationError(s, "must not be negative");
  const body = s.startsWith("+") ? s.slice(1) : s;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)?/y;
  let pos = 0;
  let total = 0;
  while (pos < body.length) {
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m || m.index !== pos) throw new DurationError(s, `unexpected "${body.slice(pos, pos + 8)}" (expected e.g. 90s, 1m30s, 500ms)`);
    if (!m[2]) throw new DurationError(s, `missing unit after ${m[1]} (write e.g. ${m[1]}s)`);
    total += Number(m[1]) * UNITS[m[2]]!;
    pos = re.lastIndex;
  }
  if (!Number.isFinite(total) || total > 365 * 24 * 3_600_000 * 100) throw new DurationError(s, "too large");
  return total;
}

/**
 * Accepts a duration as a Go string or as a number of milliseconds (library callers).
 */
export function toMs(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new DurationError(String(value), "must be a non-negative number of milliseconds");
    return value;
  }
  return parseDuration(value);
}

/** Formats milliseconds as a compact Go-style duration for logs (`1m30s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? h + "h" : ""}${m ? m + "m" : ""}${s || (!h && !m) ? s + "s" : ""}`;
}
