/**
 * Fleet-safe commands against the built daemon: `splay` spreads the command starts of 20
 * templates written at once over the window (the recorded start times are spread, not bunched;
 * no exact timing is asserted), and /status shows a waiting command until when; `min_interval`
 * turns 10 writes in 3 seconds into at most 3 runs, the last one after the last write; `once`
 * ignores min_interval. Values contain CANARY; every line printed is scanned.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function starts(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => Number(l.split(" ")[1]) / 1e6);
}

function writeAtomically(path: string, text: string): void {
  writeFileSync(path + ".tmp", text);
  renameSync(path + ".tmp", path);
}

let daemon: Daemon | undefined;
afterEach(async () => {
  if (daemon) {
    const { code } = await daemon.stop();
    expect(code).toBe(0);
    expect(daemon.lines.join("\n")).not.toContain("CANARY");
  }
  daemon = undefined;
});

describe("e2e: splay and min_interval", () => {
  it("splay: 20 templates written at once start their commands spread over the window; status shows the waiting ones", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const secret = join(dir, "secret.txt");
    const log = join(dir, "starts.log");
    for (let i = 0; i < 20; i++) {
      writeFileSync(
        join(tpl, `t${String(i).padStart(2, "0")}.tpl`),
        `---\ndest: ${dir}/out/${i}.conf\nsplay: 2s\ncommand: ["/bin/sh", "-c", "echo ${i} $(date +%s%N) >> ${log}"]\nsecrets:\n  s: file:${secret}\n---\n{{s}}\n`,
      );
    }
    const port = await freePort();
    daemon = spawnEmissary(["run", "--templates", tpl, "--status-addr", `127.0.0.1:${port}`]);
    await daemon.waitForLog((l) => l.msg === "emissary started", 15_000);
    const t0 = Date.now();
    writeAtomically(secret, canary("splay"));
    // While they wait, /status names each waiting command's time.
    let seen: { until: number; reason: string } | undefined;
    await waitFor(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { templates: { commandWaiting?: { until: number; reason: string } }[] };
      seen = s.templates.find((t) => t.commandWaiting)?.commandWaiting;
      return seen !== undefined;
    }, 15_000, "a waiting command in /status");
    expect(seen!.reason).toBe("splay");
    expect(seen!.until).toBeGreaterThanOrEqual(t0);
    await waitFor(() => starts(log).length === 20, 20_000, "20 command starts");
    const times = starts(log).sort((a, b) => a - b);
    // Uniform draws over 2s: 20 starts are not bunched together (P(range < 0.5s) < 1e-10).
    expect(times[times.length - 1]! - times[0]!).toBeGreaterThan(500);
    const buckets = new Set(times.map((t) => Math.floor((t - times[0]!) / 200)));
    expect(buckets.size).toBeGreaterThanOrEqual(4);
    const waits = daemon.logs().filter((l) => l.msg === "command waiting");
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((w) => w.reason === "splay")).toBe(true);
  });

  it("min_interval: 10 writes in 3 seconds run the command 2–3 times, the last after the last write", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const secret = join(dir, "secret.txt");
    const log = join(dir, "starts.log");
    const dest = join(dir, "out", "app.conf");
    writeFileSync(join(tpl, "app.tpl"), `---\ndest: ${dest}\nmin_interval: 2s\ncommand: ["/bin/sh", "-c", "echo run $(date +%s%N) >> ${log}"]\nsecrets:\n  s: file:${secret}\n---\n{{s}}\n`);
    daemon = spawnEmissary(["run", "--templates", tpl]);
    await daemon.waitForLog((l) => l.msg === "emissary started", 15_000);
    let lastWrite = 0;
    for (let i = 0; i < 10; i++) {
      const v = canary(`v${i}`);
      writeAtomically(secret, v);
      lastWrite = Date.now();
      await waitFor(() => existsSync(dest) && readFileSync(dest, "utf8") === v + "\n", 5_000, `write ${i} rendered`);
      await new Promise((r) => setTimeout(r, 300));
    }
    // Every destination write is accounted for by a command run ("wrote destination" counts them).
    const accounted = (): number => daemon!.logs().filter((l) => l.msg === "wrote destination").reduce((n, l) => n + (typeof l.writes === "number" ? l.writes : 1), 0);
    await waitFor(() => accounted() === 10, 15_000, "all 10 writes covered by command runs");
    const runs = starts(log);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(3);
    expect(runs[runs.length - 1]!).toBeGreaterThan(lastWrite);
    const lines = daemon.logs().filter((l) => l.msg === "wrote destination");
    expect(lines).toHaveLength(runs.length);
    expect(lines.every((l) => Array.isArray(l.changed) && (l.changed as string[])[0] === "s")).toBe(true);
    expect(daemon.logs().some((l) => l.msg === "command waiting" && l.reason === "min_interval")).toBe(true);
  });

  it("once ignores min_interval but honours splay", async () => {
    const dir = tmpDir();
    const log = join(dir, "starts.log");
    writeFileSync(join(dir, "s.txt"), canary("once"));
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${dir}/a.out\nmin_interval: 1h\nsplay: 1s\ncommand: ["/bin/sh", "-c", "echo a $(date +%s%N) >> ${log}"]\nsecrets:\n  s: file:s.txt\n---\n{{s}}\n`);
    const r = await runEmissary(["once", "--templates", dir, "--timeout", "20s"]);
    expect(r.code, r.stderr).toBe(0);
    expect(starts(log)).toHaveLength(1);
    const waits = r.stdout.split("\n").filter((l) => l.includes('"command waiting"')).map((l) => JSON.parse(l) as { reason: string });
    expect(waits.map((w) => w.reason)).toEqual(["splay"]);
    expect(r.stdout + r.stderr).not.toContain("CANARY");
  });
});
