/**
 * splay and min_interval: a splay drawn per run, uniformly in [0, splay]; min_interval coalescing
 * writes into one run at the end of the interval, one more run at most for writes during a run;
 * waiting commands visible; identical commands still run once, never overlapping.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CommandTiming, type TimedJob } from "../../../src/output/command-timing.js";
import { CommandQueue, type CommandEvent } from "../../../src/output/commands.js";
import { silentLogger } from "../../../src/observe/log.js";

describe("CommandTiming", () => {
  afterEach(() => vi.useRealTimers());

  it("splay: each run waits random() × splay; a job without splay or interval is not held", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const released: [string, TimedJob][] = [];
    const draws = [0.25, 0.9];
    const t = new CommandTiming<TimedJob>({ release: (k, j) => released.push([k, j]), random: () => draws.shift() ?? 0 });
    expect(t.hold("plain", { argv: ["x"], templates: ["a"] })).toBe(false);
    expect(t.hold("k", { argv: ["reload"], templates: ["a"], splayMs: 10_000 })).toBe(true);
    expect(t.waiting()).toEqual([{ command: ["reload"], templates: ["a"], until: Date.now() + 2500, reason: "splay" }]);
    await vi.advanceTimersByTimeAsync(2499);
    expect(released).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(released.map(([k]) => k)).toEqual(["k"]);
    expect(t.size).toBe(0);
    // A new draw for the next run.
    t.hold("k", { argv: ["reload"], templates: ["a"], splayMs: 10_000 });
    expect(t.waiting()[0]!.until - Date.now()).toBe(9000);
  });

  it("min_interval: a run right away, then writes inside the interval wait for its end; a merged job replaces the held one", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const released: TimedJob[] = [];
    const t = new CommandTiming<TimedJob>({ release: (_k, j) => released.push(j), random: () => 0 });
    const job = (tpl: string): TimedJob => ({ argv: ["reload"], templates: [tpl], minIntervalMs: 2000 });
    expect(t.hold("k", job("a"))).toBe(false); // never ran: run now
    t.started("k");
    await vi.advanceTimersByTimeAsync(500);
    expect(t.hold("k", job("b"))).toBe(true);
    expect(t.waiting()[0]).toMatchObject({ reason: "min_interval", until: Date.now() + 1500 });
    t.update("k", { ...t.held("k")!, templates: ["b", "c"] });
    await vi.advanceTimersByTimeAsync(1500);
    expect(released).toEqual([{ argv: ["reload"], templates: ["b", "c"], minIntervalMs: 2000 }]);
    t.started("k");
    // Long after the last start: runs at once again.
    await vi.advanceTimersByTimeAsync(5000);
    expect(t.hold("k", job("d"))).toBe(false);
  });

  it("stop drops the waiting commands", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const released: TimedJob[] = [];
    const t = new CommandTiming<TimedJob>({ release: (_k, j) => released.push(j), random: () => 1 });
    t.hold("k", { argv: ["x"], templates: ["a"], splayMs: 100 });
    t.stop();
    await vi.advanceTimersByTimeAsync(1000);
    expect(released).toEqual([]);
    expect(t.waiting()).toEqual([]);
  });
});

describe("CommandQueue with splay and min_interval", () => {
  it("a write while a command waits joins that run; the queue is not idle while it waits; writes during a run queue one more run", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emissary-timing-"));
    const log = join(dir, "runs");
    const done: CommandEvent[] = [];
    const idle: number[] = [];
    const waits: string[] = [];
    const q = new CommandQueue({
      logger: silentLogger(),
      env: process.env,
      onDone: (e) => done.push(e),
      onIdle: () => idle.push(done.length),
      onWait: (w) => waits.push(w.reason),
      random: () => 1,
    });
    const argv = ["/bin/sh", "-c", `echo run >> ${log}; sleep 0.2`];
    q.enqueue([{ argv, timeoutMs: 5000, templates: ["a.tpl"], splayMs: 300 }]);
    expect(q.idle).toBe(false);
    expect(q.waiting()).toEqual([expect.objectContaining({ command: argv, templates: ["a.tpl"], reason: "splay" })]);
    q.enqueue([{ argv, timeoutMs: 5000, templates: ["b.tpl"], splayMs: 300 }]);
    await q.whenIdle();
    expect(done.map((d) => d.templates)).toEqual([["a.tpl", "b.tpl"]]);
    expect(waits).toEqual(["splay"]);

    // min_interval 1s: the last run started moments ago, so three writes now coalesce into one run.
    const job = (t: string) => ({ argv, timeoutMs: 5000, templates: [t], minIntervalMs: 1000 });
    q.enqueue([job("c.tpl")]);
    q.enqueue([job("d.tpl")]);
    q.enqueue([job("e.tpl")]);
    expect(q.waiting()).toHaveLength(1);
    await q.whenIdle();
    expect(done.map((d) => d.templates)).toEqual([["a.tpl", "b.tpl"], ["c.tpl", "d.tpl", "e.tpl"]]);
    expect(readFileSync(log, "utf8").trim().split("\n")).toHaveLength(2);
    // Writes while the command runs: one more run after it, never several.
    q.enqueue([{ argv, timeoutMs: 5000, templates: ["f.tpl"] }]);
    const runs = (): number => readFileSync(log, "utf8").trim().split("\n").length;
    while (runs() < 3) await new Promise((r) => setTimeout(r, 10));
    for (const t of ["g.tpl", "h.tpl", "i.tpl"]) q.enqueue([job(t)]);
    await q.whenIdle();
    expect(done.map((d) => d.templates).slice(2)).toEqual([["f.tpl"], ["g.tpl", "h.tpl", "i.tpl"]]);
    expect(runs()).toBe(4);
    // whenIdle / onIdle fired only when nothing waited any more.
    expect(idle).toEqual([1, 2, 4]);
    await q.stop();
  });
});
