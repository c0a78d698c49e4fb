/**
 * Durations past Node's timer limit (2^31-1 ms, ~24.8 days) are honoured exactly: the long timer
 * itself, and every place a user-given duration reaches a timer (scheduler retry and refresh,
 * template write retry, `wait` quiescence, command timeout).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Backend, Secret, SecretRef } from "../../../src/api/backend.js";
import { SecretNotFoundError } from "../../../src/api/errors.js";
import { parseDuration } from "../../../src/api/duration.js";
import { MAX_TIMER_MS, clearLongTimeout, setLongTimeout, sleep } from "../../../src/api/timer.js";
import { silentLogger } from "../../../src/observe/log.js";
import { Quiescence } from "../../../src/output/quiescence.js";
import { Scheduler } from "../../../src/sources/scheduler.js";
import { SecretStore } from "../../../src/sources/store.js";

const H600 = parseDuration("600h");
const YEARS10 = 10 * 365 * 24 * 3_600_000;

describe("setLongTimeout", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "Date", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  for (const [name, ms] of [
    ["600h", H600],
    ["exactly the Node limit", MAX_TIMER_MS],
    ["one past the Node limit", MAX_TIMER_MS + 1],
    ["10 years", YEARS10],
  ] as const) {
    it(`fires once, exactly after ${name}`, async () => {
      const fn = vi.fn();
      setLongTimeout(fn, ms);
      await vi.advanceTimersByTimeAsync(ms - 1);
      expect(fn).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(fn).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(ms * 2);
      expect(fn).toHaveBeenCalledTimes(1);
    });
  }

  it("a short delay is one ordinary timer", async () => {
    const fn = vi.fn();
    setLongTimeout(fn, 250);
    await vi.advanceTimersByTimeAsync(249);
    expect(fn).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("clearLongTimeout cancels it in any segment of the chain", async () => {
    const fn = vi.fn();
    const t = setLongTimeout(fn, YEARS10);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS * 3 + 5);
    expect(t.pending).toBe(true);
    clearLongTimeout(t);
    expect(t.pending).toBe(false);
    await vi.advanceTimersByTimeAsync(YEARS10);
    expect(fn).not.toHaveBeenCalled();
    clearLongTimeout(undefined); // harmless
  });

  it("unref carries over to every segment; ref restores it", async () => {
    const t = setLongTimeout(() => undefined, H600, { unref: true });
    expect(t.hasRef()).toBe(false);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(t.hasRef()).toBe(false);
    t.ref();
    expect(t.hasRef()).toBe(true);
    await vi.advanceTimersByTimeAsync(H600);
    expect(t.hasRef()).toBe(false);
  });

  it("Infinity never fires; NaN and negative fire on the next turn", async () => {
    const never = vi.fn();
    const soon = vi.fn();
    setLongTimeout(never, Infinity);
    setLongTimeout(soon, NaN);
    setLongTimeout(soon, -5);
    await vi.advanceTimersByTimeAsync(1);
    expect(soon).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(YEARS10);
    expect(never).not.toHaveBeenCalled();
  });

  it("sleep waits the whole delay and ends early on abort", async () => {
    let done = false;
    void sleep(H600).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(H600 - 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    const ac = new AbortController();
    const p = sleep(H600, { signal: ac.signal });
    ac.abort(new Error("stop"));
    await expect(p).rejects.toThrow("stop");
  });
});

describe("user-given durations past 24.8 days", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "Date", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const ref: SecretRef = { backend: "test", id: "a", options: {} };

  it("scheduler: retry 600h retries a missing secret once after 600h, not a thousand times a second", async () => {
    const calls: number[] = [];
    const b: Backend = {
      name: "test",
      async fetch(): Promise<Secret> {
        calls.push(Date.now());
        throw new SecretNotFoundError("not yet");
      },
    };
    const sched = new Scheduler({ store: new SecretStore(), logger: silentLogger(), retryMs: H600, onFetch: () => undefined, random: () => 0.5 });
    try {
      sched.ensure(ref, b, H600, "test:a");
      await vi.advanceTimersByTimeAsync(3_000);
      expect(calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(H600 - 3_000 - 10);
      expect(calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(20);
      expect(calls).toHaveLength(2);
    } finally {
      sched.stop();
    }
  });

  it("scheduler: refresh 600h re-fetches a resolved secret after exactly 600h (not capped at 24.8 days)", async () => {
    let n = 0;
    const b: Backend = { name: "test", fetch: async () => ({ value: `v${++n}` }) };
    const sched = new Scheduler({ store: new SecretStore(), logger: silentLogger(), retryMs: 10_000, onFetch: () => undefined, random: () => 0.5 });
    try {
      sched.ensure(ref, b, parseDuration("1000h"), "test:a");
      await vi.advanceTimersByTimeAsync(0);
      expect(n).toBe(1);
      await vi.advanceTimersByTimeAsync(parseDuration("1000h") - 10);
      expect(n).toBe(1);
      await vi.advanceTimersByTimeAsync(20);
      expect(n).toBe(2);
    } finally {
      sched.stop();
    }
  });

  it("wait quiescence of 600h is honoured", async () => {
    const ready = vi.fn();
    const q = new Quiescence(ready);
    q.touch("t", { minMs: H600, maxMs: 4 * H600 }, Date.now());
    await vi.advanceTimersByTimeAsync(H600 - 1);
    expect(ready).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(ready).toHaveBeenCalledTimes(1);
    q.stop();
  });
});
