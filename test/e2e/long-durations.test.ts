/**
 * Durations past Node's 24.8-day timer limit through the real CLI. Before, `--startup-delay 600h`
 * started at once, `once --timeout 600h` timed out after half a second and `defaults.retry: 600h`
 * retried a failing write a thousand times a second (setTimeout replaces an overflowing delay by
 * 1 ms). Absence is what is asserted, so these tests give the bug a moment to show.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { spawnEmissary, tmpDir, type Daemon } from "../helpers/e2e.js";

/** Long enough for an overflowed timer (1 ms) to have fired many times over. */
const GRACE_MS = 1500;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `body`; a daemon left running by a failed assertion (the bug: a busy loop) is killed. */
async function using(d: Daemon, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill("SIGKILL");
  }
}

describe("durations longer than 24.8 days", () => {
  it("run --startup-delay 600h keeps sleeping, and SIGTERM ends it with exit 0", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${join(dir, "out")}\n---\nx\n`);
    const d = spawnEmissary(["run", "--templates", dir, "--startup-delay", "600h"]);
    await using(d, async () => {
      await d.waitForLog((l) => l.msg === "startup delay" && l.delay === "600h", 15_000, "the startup delay line");
      await pause(GRACE_MS);
      expect(d.proc.exitCode).toBeNull();
      expect(d.logs().filter((l) => l.msg === "emissary started")).toEqual([]);
      expect(d.lines.filter((l) => l.includes("TimeoutOverflowWarning"))).toEqual([]);
      expect((await d.stop()).code).toBe(0);
    });
  });

  it("once --timeout 600h waits instead of timing out at once", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${join(dir, "out")}\nsecrets:\n  x: file:not-there-yet\n---\n{{x}}\n`);
    const d = spawnEmissary(["once", "--templates", dir, "--timeout", "600h"]);
    await using(d, async () => {
      await d.waitForLog((l) => l.msg === "emissary started", 15_000, "start");
      await pause(GRACE_MS);
      expect(d.proc.exitCode).toBeNull();
      expect(d.lines.filter((l) => l.includes("timed out"))).toEqual([]);
      await d.stop();
    });
  });

  it("defaults.retry: 600h retries a failing write after 600h, not in a loop", async () => {
    const dir = tmpDir();
    const cfg = join(dir, "c.yml");
    writeFileSync(cfg, "defaults: { retry: 600h }\n");
    writeFileSync(join(dir, "file"), "a plain file\n");
    // The destination's parent is a file: every write attempt fails (ENOTDIR / EEXIST).
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${join(dir, "file", "out")}\n---\nx\n`);
    const d = spawnEmissary(["run", "--templates", dir, "--config", cfg]);
    await using(d, async () => {
      const failed = (l: Record<string, unknown>): boolean => String(l.msg).startsWith("cannot write destination");
      await d.waitForLog(failed, 15_000, "the failed write");
      await pause(GRACE_MS);
      expect(d.logs().filter(failed)).toHaveLength(1);
      expect((await d.stop()).code).toBe(0);
    });
  });
});
