// @ts-check
/**
 * Process helpers for the benchmarks: start a tool with its output in a log file, read its CPU
 * time and memory from /proc, time a one-shot run with GNU time, wait for conditions, stop it.
 * Linux only (the benchmark reads /proc).
 * @module
 */
import { spawn, execFileSync } from "node:child_process";
import { openSync, closeSync, readFileSync, existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Clock ticks per second of /proc/<pid>/stat times. */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * Starts a long-running tool; stdout and stderr go to `logFile`. Runs at nice 5 so the other
 * engineers' tests on this shared machine keep priority over the benchmark.
 * @param {{ cmd: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv, logFile: string, nice?: number }} o
 * @returns {import("node:child_process").ChildProcess}
 */
export function startTool(o) {
  const fd = openSync(o.logFile, "a");
  const nice = o.nice ?? 5;
  const child = spawn("nice", ["-n", String(nice), o.cmd, ...o.args], {
    cwd: o.cwd,
    env: o.env ?? process.env,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  return child;
}

/**
 * CPU seconds (user + system, all threads) and memory of a live process.
 * @param {number} pid
 * @returns {{ cpuS: number, rssMB: number, hwmMB: number } | undefined} undefined when it is gone
 */
export function procStats(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (/** @type {string} */ key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { cpuS: (utime + stime) / CLK_TCK, rssMB: kb("VmRSS") / 1024, hwmMB: kb("VmHWM") / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * The pid of the tool itself when it was started through `nice` (nice execs, so it is the same pid).
 * @param {import("node:child_process").ChildProcess} child
 * @returns {number}
 */
export function pidOf(child) {
  if (child.pid === undefined) throw new Error("process did not start");
  return child.pid;
}

/**
 * Runs a command to completion under GNU time: wall time, peak RSS, CPU seconds. `wallS` is GNU
 * time's (10 ms resolution); `wallMs` is measured here with a monotonic clock from spawn to exit
 * (so it includes starting `nice` and GNU time, about the same for every command — B0 measures
 * `/bin/true` the same way to show that floor).
 * @param {{ cmd: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv, logFile: string, timeoutMs?: number }} o
 * @returns {Promise<{ code: number | null, wallS: number, wallMs: number, peakRssMB: number, userS: number, sysS: number }>}
 */
export async function timedRun(o) {
  const timeFile = `${o.logFile}.time`;
  const fd = openSync(o.logFile, "a");
  const t0 = performance.now();
  const child = spawn("nice", ["-n", "5", "/usr/bin/time", "-o", timeFile, "-f", "%e %M %U %S", o.cmd, ...o.args], {
    cwd: o.cwd,
    env: o.env ?? process.env,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const timeoutMs = o.timeoutMs ?? 300_000;
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise((resolve) => child.on("exit", (c) => resolve(c)));
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  const lines = existsSync(timeFile) ? readFileSync(timeFile, "utf8").trim().split("\n") : [];
  // GNU time prints "Command exited with non-zero status N" before the format line.
  const [wall, maxKb, user, sys] = (lines.at(-1) ?? "").split(" ").map(Number);
  return { code: /** @type {number | null} */ (code), wallS: wall, wallMs, peakRssMB: maxKb / 1024, userS: user, sysS: sys };
}

/**
 * Polls `cond` until it returns a truthy value, or throws after `timeoutMs`.
 * @template T
 * @param {() => T | Promise<T>} cond
 * @param {{ timeoutMs?: number, intervalMs?: number, what?: string }} [o] - @defaultValue 60 s, 20 ms
 * @returns {Promise<T>}
 */
export async function waitFor(cond, o = {}) {
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what ?? "a condition"}`);
    await sleep(o.intervalMs ?? 20);
  }
}

/**
 * Stops a child: SIGTERM, then SIGKILL after `graceMs`. Resolves when it has exited.
 * @param {import("node:child_process").ChildProcess} child
 * @param {number} [graceMs] - @defaultValue 10000
 * @returns {Promise<void>}
 */
export async function stopTool(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(t);
}
