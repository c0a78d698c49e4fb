/**
 * The startup delay's sleep: any length (Node's timers fire at once past 2^31-1 ms), and
 * cut short by wake().
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { sleep } from "../../../src/cli/sleep.js";

afterEach(() => {
  vi.useRealTimers();
});

describe("sleep", () => {
  it("waits the whole of a delay longer than one Node timer (30 days), and no longer", async () => {
    vi.useFakeTimers();
    const day = 24 * 3600_000;
    let done: boolean | undefined;
    void sleep(30 * day).done.then((v) => (done = v));
    await vi.advanceTimersByTimeAsync(25 * day);
    expect(done).toBeUndefined();
    await vi.advanceTimersByTimeAsync(5 * day - 1);
    expect(done).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it("wake() ends it early with false", async () => {
    vi.useFakeTimers();
    const s = sleep(60_000);
    s.wake();
    expect(await s.done).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a zero or negative delay is done at once", async () => {
    expect(await sleep(0).done).toBe(true);
    expect(await sleep(-5).done).toBe(true);
  });
});
