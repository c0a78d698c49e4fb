/**
 * Operator refreshes in the scheduler: a forced fetch ignores the timer and carries
 * `fresh`/`reissue` to the backend (in calls of their own when batching), a fetch in flight is
 * followed by the forced one, a released reference answers, and the next fetch's time and
 * reason are reported.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Backend, FetchContext, Secret, SecretRef } from "../../../src/api/backend.js";
import { FatalError, SecretNotFoundError, TransientError } from "../../../src/api/errors.js";
import { silentLogger } from "../../../src/observe/log.js";
import { Scheduler, type FetchOutcome } from "../../../src/sources/scheduler.js";
import { SecretStore } from "../../../src/sources/store.js";

const ref = (id: string): SecretRef => ({ backend: "test", id, options: {} });

interface Call {
  readonly ids: string[];
  readonly fresh: boolean;
  readonly reissue: boolean;
}

/** A backend whose value per id is settable, recording every call and its flags. */
function recording(opts: { many?: boolean; hold?: () => Promise<void> } = {}): Backend & { calls: Call[]; values: Map<string, Secret | Error> } {
  const calls: Call[] = [];
  const values = new Map<string, Secret | Error>();
  const answer = (id: string): Secret | Error => values.get(id) ?? { value: `v-${id}` };
  const b: Backend & { calls: Call[]; values: Map<string, Secret | Error> } = {
    name: "test",
    calls,
    values,
    async fetch(r: SecretRef, ctx: FetchContext): Promise<Secret> {
      calls.push({ ids: [r.id], fresh: ctx.fresh === true, reissue: ctx.reissue === true });
      await opts.hold?.();
      const v = answer(r.id);
      if (v instanceof Error) throw v;
      return v;
    },
  };
  if (opts.many) {
    b.fetchMany = async (refs, ctx) => {
      calls.push({ ids: refs.map((r) => r.id), fresh: ctx.fresh === true, reissue: ctx.reissue === true });
      return new Map(refs.map((r) => [`test:${r.id}`, answer(r.id)]));
    };
  }
  return b;
}

describe("Scheduler.refresh", () => {
  let outcomes: FetchOutcome[];
  let sched: Scheduler;
  const make = (): Scheduler => (sched = new Scheduler({ store: new SecretStore(), logger: silentLogger(), retryMs: 10_000, onFetch: (o) => outcomes.push(o), random: () => 0.5 }));

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate", "Date", "performance"] });
    outcomes = [];
  });
  afterEach(() => {
    sched?.stop();
    vi.useRealTimers();
  });

  it("fetches one reference now with fresh, leaves the others alone, reports changed, and reschedules it", async () => {
    const b = recording();
    const s = make();
    s.ensure(ref("a"), b, 3_600_000, "test:a");
    s.ensure(ref("b"), b, 3_600_000, "test:b");
    await vi.advanceTimersByTimeAsync(0);
    expect(b.calls).toHaveLength(2);
    expect(b.calls.every((c) => !c.fresh && !c.reissue)).toBe(true);

    const unchanged = s.refresh("test:a");
    await vi.advanceTimersByTimeAsync(0);
    expect(await unchanged).toMatchObject({ key: "test:a", outcome: "ok", changed: false });
    expect(b.calls.slice(2)).toEqual([{ ids: ["a"], fresh: true, reissue: false }]);

    b.values.set("a", { value: "rotated" });
    const changed = s.refresh("test:a", { reissue: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(await changed).toMatchObject({ outcome: "ok", changed: true });
    expect(b.calls.slice(3)).toEqual([{ ids: ["a"], fresh: true, reissue: true }]);
    expect(outcomes.filter((o) => o.key === "test:b")).toHaveLength(1);
    // The timer restarts from the forced fetch: the next one is a refresh an hour (±10%) away.
    const t = s.timing("test:a")!;
    expect(t).toMatchObject({ fetching: false, reason: "refresh" });
    expect(t.nextAt! - Date.now()).toBe(3_600_000);
    expect(s.refresh("test:nope")).toBeUndefined();
  });

  it("forced fetches go in fetchMany calls of their own, by mode", async () => {
    const b = recording({ many: true });
    const s = make();
    for (const id of ["a", "b", "c", "d"]) s.ensure(ref(id), b, 3_600_000, `test:${id}`);
    await vi.advanceTimersByTimeAsync(0);
    expect(b.calls).toEqual([{ ids: ["a", "b", "c", "d"], fresh: false, reissue: false }]);
    const answers = [s.refresh("test:a"), s.refresh("test:b"), s.refresh("test:c", { reissue: true }), s.refresh("test:d", { reissue: true })];
    await vi.advanceTimersByTimeAsync(0);
    await Promise.all(answers);
    expect(b.calls.slice(1)).toEqual([
      { ids: ["a", "b"], fresh: true, reissue: false },
      { ids: ["c", "d"], fresh: true, reissue: true },
    ]);
  });

  it("a refresh during a fetch in flight waits for a forced fetch after it; two refreshes before it starts share it", async () => {
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    const b = recording({ hold: () => gate });
    const s = make();
    s.ensure(ref("a"), b, 3_600_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    expect(b.calls).toHaveLength(1);
    expect(s.timing("test:a")).toEqual({ fetching: true });
    const r1 = s.refresh("test:a");
    const r2 = s.refresh("test:a", { reissue: true });
    let settled = false;
    void r1!.then(() => (settled = true));
    const first = release;
    gate = new Promise<void>((r) => (release = r));
    first();
    await vi.advanceTimersByTimeAsync(0);
    // The scheduled fetch settled; the forced one (with reissue, the stronger of the two) is in flight.
    expect(settled).toBe(false);
    expect(b.calls).toHaveLength(2);
    expect(b.calls[1]).toEqual({ ids: ["a"], fresh: true, reissue: true });
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(await r1).toMatchObject({ outcome: "ok" });
    expect(await r2).toBe(await r1);
    expect(b.calls).toHaveLength(2);
  });

  it("answers waiters of a reference that is released or a scheduler that stops", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = recording({ hold: () => gate });
    const s = make();
    s.ensure(ref("a"), b, 3_600_000, "test:a");
    await vi.advanceTimersByTimeAsync(0);
    const inFlightThenForced = s.refresh("test:a")!;
    s.release("test:a");
    expect(await inFlightThenForced).toMatchObject({ outcome: "transient", changed: false });
    release();
  });

  it("reports why the next fetch is due: retry, backoff (transient and fatal), lease, renewal", async () => {
    const b = recording();
    b.values.set("unset", new SecretNotFoundError("not yet"));
    b.values.set("flaky", new TransientError("down"));
    b.values.set("denied", new FatalError("403"));
    b.values.set("leased", { value: "x", ttlMs: 60_000 });
    b.values.set("renewable", { value: "y", ttlMs: 60_000, renewal: true });
    b.values.set("empty", { value: "intentionally-empty" });
    const s = make();
    for (const id of b.values.keys()) s.ensure(ref(id), b, 3_600_000, `test:${id}`);
    await vi.advanceTimersByTimeAsync(0);
    const reason = (id: string): string | undefined => s.timing(`test:${id}`)?.reason;
    expect(reason("unset")).toBe("retry");
    expect(reason("empty")).toBe("retry");
    expect(reason("flaky")).toBe("backoff");
    expect(reason("denied")).toBe("backoff");
    expect(reason("leased")).toBe("lease");
    expect(reason("renewable")).toBe("renewal");
    expect(s.timing("test:leased")!.nextAt! - Date.now()).toBe(54_000);
  });
});
