import { describe, expect, it } from "vitest";
import { REFUSED_FAST_FOR_MS, REFUSED_RECHECK_MS, REFUSED_RECHECK_SLOW_MS, RefusedRecheck } from "../../../backends/vault/refused.js";
import { silentLogger } from "../../../src/index.js";

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

describe("token_file re-check while references are refused", () => {
  it("defaults: every 2 s, slowing to every 30 s after a minute refused under one token", () => {
    expect([REFUSED_RECHECK_MS, REFUSED_FAST_FOR_MS, REFUSED_RECHECK_SLOW_MS]).toEqual([2_000, 60_000, 30_000]);
  });

  it("re-reads quickly at first, slowly once one token has been refused for the fast window, and quickly again under a new token", async () => {
    let gen = 1;
    let rechecks = 0;
    let bumpAt = Infinity;
    let told = 0;
    const r = new RefusedRecheck({
      recheck: async () => {
        if (++rechecks === bumpAt) gen++;
      },
      generation: () => gen,
      logger: silentLogger(),
      intervalMs: 10,
      fastForMs: 150,
      slowIntervalMs: 400,
    });
    r.watch("vault:secret/a", () => told++);
    r.refused("vault:secret/a");
    expect(r.nextDelayMs).toBe(10);
    expect(r.timer?.hasRef()).toBe(false);
    await until(() => r.nextDelayMs === 400, "the slow interval");
    const fastChecks = rechecks;
    expect(fastChecks).toBeGreaterThanOrEqual(3);
    // The next re-read (a slow one) finds a new token in the file.
    bumpAt = rechecks + 1;
    await until(() => told === 1, "a new token told to the watcher");
    // Under the new token the spell starts again, quick.
    expect(r.nextDelayMs).toBe(10);
    r.close();
    expect(r.timer).toBeUndefined();
  });
});
