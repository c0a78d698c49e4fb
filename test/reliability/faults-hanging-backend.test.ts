/**
 * A backend whose fetch never settles (a custom module without a timeout). The built-in backends
 * time out on their own (see faults-backends.test.ts); for any other, the scheduler abandons a
 * fetch at its deadline: the fetch's signal is aborted, a transient failure naming the backend is
 * reported, the reference is retried with backoff, and the next answer is used.
 */
import { describe, expect, it } from "vitest";
import type { Backend, Secret, SecretRef } from "../../src/api/backend.js";
import { silentLogger } from "../../src/observe/log.js";
import { Scheduler, type FetchOutcome } from "../../src/sources/scheduler.js";
import { SecretStore } from "../../src/sources/store.js";
import { waitFor } from "../helpers/e2e.js";

const ref: SecretRef = { backend: "stuck", id: "a", options: {} };

describe("a backend that never answers", () => {
  for (const batched of [false, true]) {
    it(`${batched ? "fetchMany" : "fetch"}: abandoned at the deadline with its signal aborted, retried, then resolved`, async () => {
      const signals: AbortSignal[] = [];
      let calls = 0;
      const answer = (signal: AbortSignal): Promise<Secret> => {
        signals.push(signal);
        // The first call hangs forever; the next ones answer.
        if (++calls === 1) return new Promise<Secret>(() => undefined);
        return Promise.resolve({ value: "v2" });
      };
      const backend: Backend = batched
        ? {
            name: "stuck",
            fetch: (_r, ctx) => answer(ctx.signal),
            fetchMany: async (refs, ctx) => {
              const s = await answer(ctx.signal);
              return new Map(refs.map((r) => [`${r.backend}:${r.id}`, s]));
            },
          }
        : { name: "stuck", fetch: (_r, ctx) => answer(ctx.signal) };
      const outcomes: FetchOutcome[] = [];
      const store = new SecretStore();
      const sched = new Scheduler({ store, logger: silentLogger(), onFetch: (o) => outcomes.push(o), fetchDeadlineMs: 300, random: () => 0 });
      try {
        sched.ensure(ref, backend, 60_000, "stuck:a");
        if (batched) sched.ensure({ ...ref, id: "b" }, backend, 60_000, "stuck:b");
        await waitFor(() => outcomes.length > 0, 10_000, "the hung fetch is abandoned");
        expect(outcomes[0]!.outcome).toBe("transient");
        expect(outcomes[0]!.error?.message).toContain('backend "stuck" gave no answer within 300ms');
        expect(signals[0]!.aborted, "the hung fetch's signal is aborted").toBe(true);
        await waitFor(() => outcomes.some((o) => o.outcome === "ok"), 10_000, "the retry resolves");
        expect(store.get(outcomes.find((o) => o.outcome === "ok")!.key)?.secret.value).toBe("v2");
        expect(signals.at(-1)!.aborted, "later fetches get a live signal").toBe(false);
      } finally {
        sched.stop();
      }
    });
  }

  it("a backend that answers synchronously (plain JS, no promise) still works", async () => {
    const outcomes: FetchOutcome[] = [];
    const store = new SecretStore();
    const backend = { name: "sync", fetch: () => ({ value: "v" }) } as unknown as Backend;
    const sched = new Scheduler({ store, logger: silentLogger(), onFetch: (o) => outcomes.push(o), fetchDeadlineMs: 300 });
    try {
      sched.ensure({ backend: "sync", id: "a", options: {} }, backend, 60_000, "sync:a");
      await waitFor(() => outcomes.length > 0, 10_000, "a fetch");
      expect(outcomes[0]!.outcome).toBe("ok");
    } finally {
      sched.stop();
    }
  });
});
