import { describe, expect, it } from "vitest";
import { RefreshLimiter } from "../../../src/sources/refresh-limiter.js";
import type { FetchOutcome } from "../../../src/sources/scheduler.js";

const outcome = (key: string, changed: boolean): FetchOutcome => ({ key, ref: { backend: "t", id: key, options: {} }, outcome: "ok", changed, durationMs: 1 });

describe("RefreshLimiter", () => {
  it("starts at most one forced fetch per reference per window; inside it answers with the last outcome, marked", async () => {
    let now = 1_000_000;
    const l = new RefreshLimiter({ windowMs: 1000, now: () => now });
    let started = 0;
    let release!: (o: FetchOutcome) => void;
    const start = (): Promise<FetchOutcome> => {
      started++;
      return new Promise((r) => (release = r));
    };
    const first = l.run("a", start);
    const second = l.run("a", start); // while the first is in flight
    expect(started).toBe(1);
    release(outcome("a", true));
    expect(await first).toEqual({ outcome: outcome("a", true), rateLimited: false });
    expect(await second).toEqual({ outcome: outcome("a", true), rateLimited: true });
    now += 999;
    expect(await l.run("a", start)).toMatchObject({ rateLimited: true });
    expect(started).toBe(1);
    // Another reference is not limited by this one.
    const other = l.run("b", start);
    release(outcome("b", false));
    expect(await other).toMatchObject({ rateLimited: false });
    expect(started).toBe(2);
    now += 1;
    const again = l.run("a", start);
    release(outcome("a", false));
    expect(await again).toEqual({ outcome: outcome("a", false), rateLimited: false });
    expect(started).toBe(3);
  });

  it("answers undefined when there was nothing to fetch", async () => {
    const l = new RefreshLimiter();
    expect(await l.run("gone", () => undefined)).toBeUndefined();
    expect(await l.run("gone", () => undefined)).toBeUndefined();
  });
});
