import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Backend, Secret, SecretRef } from "../../../src/api/backend.js";
import { FatalError, SecretNotFoundError, TransientError } from "../../../src/api/errors.js";
import { silentLogger } from "../../../src/observe/log.js";
import { BACKOFF_CAP_MS, Scheduler, type FetchOutcome } from "../../../src/sources/scheduler.js";
import { SecretStore } from "../../../src/sources/store.js";

/** A backend scripted per call: each entry is a value or an error. */
function scripted(script: (Secret | Error)[], extra: Partial<Backend> = {}): Backend & { calls: number[] } {
  const calls: number[] = [];
  return {
    name: "test",
    calls,
    async fetch(): Promise<Secret> {
      calls.push(Date.now());
      const next = script.length > 1 ? script.shift()! : script[0]!;
      if (next instanceof Error) throw next;
      return next;
    },
    ...extra,
  };
}

const ref = (id: string): SecretRef => ({ backend: "test", id, options: {} });

describe("Scheduler", () => {
  let outcomes: FetchOutcome[];
  let store: SecretStore;
  let sched: Scheduler;
  const make = (retryMs = 10_000): Scheduler =>
    (sched = new Scheduler({ store, logger: silentLogger(), retryMs, onFetch: (o) => outcomes.push(o), random: () => 0.5 }));

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "Date", "performance"] });
    outcomes = [];
    store = new SecretStore();
  });
  afterEach(() => {
    sched?.stop();
    vi.useRealTimers();
  });

  it("fetches at once, then every refresh; retries a missing secret every retryMs", async () => {
    const b = scripted([new SecretNotFoundError("nope"), new SecretNotFoundError("nope"), { value: "v1" }]);
    make(10_000).ensure(ref("a"), b, 60_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    expect(b.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(9_990);
    expect(b.calls).toHaveLength(1); // jitter with random 0.5 is exact: 10s (+ one batching tick)
    await vi.advanceTimersByTimeAsync(20);
    expect(b.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(10_010);
    expect(b.calls).toHaveLength(3);
    expect(outcomes.map((o) => o.outcome)).toEqual(["not_found", "not_found", "ok"]);
    await vi.advanceTimersByTimeAsync(60_010);
    expect(b.calls).toHaveLength(4);
  });

  it("backs off exponentially on transient errors up to the cap, and honours retryAfterMs", async () => {
    const b = scripted([new TransientError("down")]);
    make().ensure(ref("a"), b, 60_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    const start = b.calls[0]!;
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    const gaps = b.calls.slice(1).map((t, i) => t - (b.calls[i] ?? start));
    // equal jitter with random 0.5: 0.75 × min(cap, 1s·2^n)
    // (+1 ms: the batching tick)
    expect(gaps.slice(0, 5).map((g) => Math.round(g / 10) * 10)).toEqual([750, 1500, 3000, 6000, 12000]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(BACKOFF_CAP_MS + 1);
    expect(Math.abs(gaps.at(-1)! - 0.75 * BACKOFF_CAP_MS)).toBeLessThanOrEqual(1);

    const c = scripted([new TransientError("slow down", { retryAfterMs: 30_000 }), { value: "ok" }]);
    make().ensure(ref("b"), c, 60_000, "test:b");
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(c.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(c.calls).toHaveLength(2);
  });

  it("re-checks a fetched value that counts as not set at the retry interval, not the refresh", async () => {
    const b = scripted([{ value: "intentionally-empty\n" }, { value: "  " }, { value: "set" }]);
    make(10_000).ensure(ref("a"), b, 3_600_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(20_020);
    expect(b.calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.calls).toHaveLength(3); // resolved: next fetch at the 1h refresh
  });

  it("spreads the first refresh over the whole interval, then refreshes every interval", async () => {
    const b = scripted([{ value: "v" }]);
    sched = new Scheduler({ store, logger: silentLogger(), onFetch: (o) => outcomes.push(o), random: () => 0 });
    sched.ensure(ref("a"), b, 100_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(49_990); // random 0: half the interval
    expect(b.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(20);
    expect(b.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(89_000); // later refreshes: the interval with its jitter (90% at random 0)
    expect(b.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_020);
    expect(b.calls).toHaveLength(3);
  });

  it("retries fatal errors at the cap", async () => {
    const b = scripted([new FatalError("denied"), { value: "v" }]);
    make().ensure(ref("a"), b, 60_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(BACKOFF_CAP_MS - 1);
    expect(b.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(b.calls).toHaveLength(2);
  });

  it("re-fetches a leased secret at about 90% of its TTL", async () => {
    const b = scripted([{ value: "v", ttlMs: 100_000 }]);
    make().ensure(ref("a"), b, 3_600_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(89_000);
    expect(b.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(b.calls).toHaveLength(2);
  });

  it("keeps one loop per key, reports changes only when the value changes, and batches through fetchMany", async () => {
    let batches = 0;
    const b = scripted([{ value: "v" }], {
      async fetchMany(refs) {
        batches++;
        return new Map(refs.map((r) => [`test:${r.id}`, { value: `v-${r.id}` }]));
      },
    });
    const s = make();
    for (let i = 0; i < 3; i++) s.ensure(ref("same"), b, 60_000, "test:same");
    s.ensure(ref("other"), b, 60_000, "test:other");
    await vi.advanceTimersByTimeAsync(0);
    expect(s.size).toBe(2);
    expect(batches).toBe(1);
    expect(b.calls).toHaveLength(0);
    expect(outcomes.filter((o) => o.changed)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(60_010);
    expect(batches).toBe(2);
    expect(outcomes.filter((o) => o.changed)).toHaveLength(2); // same values: no change
  });

  it("push sources trigger a fetch; a trigger during a fetch fetches again afterwards; release unwatches", async () => {
    let fire: () => void = () => undefined;
    let unwatched = false;
    let resolveFetch: (s: Secret) => void = () => undefined;
    let n = 0;
    const b: Backend = {
      name: "test",
      fetch: () => {
        n++;
        return new Promise<Secret>((r) => (resolveFetch = r));
      },
      watch: (_r, onChange) => {
        fire = onChange;
        return () => (unwatched = true);
      },
    };
    const s = make();
    const key = s.ensure(ref("a"), b, 60_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    expect(n).toBe(1);
    fire();
    fire();
    resolveFetch({ value: "1" });
    await vi.advanceTimersByTimeAsync(0);
    expect(n).toBe(2);
    resolveFetch({ value: "2" });
    await vi.advanceTimersByTimeAsync(0);
    expect(n).toBe(2);
    s.release(key);
    expect(unwatched).toBe(true);
    fire();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(n).toBe(2);
  });

  it("watchResolved: false (once) watches only a reference whose fetch did not resolve, and its change fetches it at once", async () => {
    const watched: string[] = [];
    const fires = new Map<string, () => void>();
    const unwatched: string[] = [];
    const present = new Set(["have"]);
    const b: Backend = {
      name: "test",
      fetch: async (r) => {
        if (!present.has(r.id)) throw new SecretNotFoundError(`no ${r.id}`);
        return { value: r.id };
      },
      watch: (r, onChange) => {
        watched.push(r.id);
        fires.set(r.id, onChange);
        return () => unwatched.push(r.id);
      },
    };
    sched = new Scheduler({ store, logger: silentLogger(), retryMs: 10_000, onFetch: (o) => outcomes.push(o), random: () => 0.5, watchResolved: false });
    sched.ensure(ref("have"), b, 60_000, "test:have");
    const missingKey = sched.ensure(ref("later"), b, 60_000, "test:later");
    await vi.advanceTimersByTimeAsync(0);
    expect(outcomes.map((o) => `${o.ref.id}:${o.outcome}`).sort()).toEqual(["have:ok", "later:not_found"]);
    expect(watched).toEqual(["later"]);
    // Set: the watch's notice fetches it now, long before the 10 s retry.
    present.add("later");
    fires.get("later")!();
    await vi.advanceTimersByTimeAsync(0);
    expect(outcomes.at(-1)).toMatchObject({ key: missingKey, outcome: "ok" });
    // Another failure does not subscribe twice; release unwatches.
    expect(watched).toEqual(["later"]);
    sched.release(missingKey);
    expect(unwatched).toEqual(["later"]);
  });

  it("a reference whose value is already stored (a reload) is not fetched at once", async () => {
    store.set("test:a", { value: "kept" });
    const b = scripted([{ value: "kept" }]);
    make().ensure(ref("a"), b, 60_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    expect(b.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(60_010);
    expect(b.calls).toHaveLength(1);
  });

  it("a backend returning garbage counts as a transient failure, never a crash", async () => {
    const b: Backend = { name: "test", fetch: async () => ({ nope: 1 }) as unknown as Secret };
    make().ensure(ref("a"), b, 60_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    expect(outcomes[0]!.outcome).toBe("transient");
  });
});
