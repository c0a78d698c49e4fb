/**
 * Reload commands that misbehave, through the built daemon: missing, hanging (and ignoring
 * SIGTERM), crashing on a signal, exiting non-zero, printing megabytes. Each one's file is still
 * written, a warning names the command and why it failed (never its output), the commands after
 * it still run — one at a time, never overlapping — and the daemon stays up with bounded memory.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

describe("command faults", () => {
  let dir: string;
  let daemon: Daemon | undefined;
  const journal = (): string => join(dir, "journal.log");
  const out = (n: string): string => join(dir, "out", `${n}.txt`);

  // Template files sort in this order, so the failing commands run before the good ones.
  const bad: Record<string, string> = {
    "a-crash": `["/bin/sh", "-c", "kill -SEGV $$"]`,
    "b-fail": `["/bin/sh", "-c", "echo failing >&2; exit 3"]`,
    "c-hang": `["sleep", "1000"]\ncommand_timeout: 1s`,
    "d-hang-ignoring-term": `["/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"]\ncommand_timeout: 1s`,
    "e-loud": `["/bin/sh", "-c", "head -c 30000000 /dev/zero | tr '\\\\0' x; echo"]`,
    "f-missing": `/nonexistent/bin/reload-me --now`,
  };

  beforeAll(async () => {
    dir = tmpDir("emissary-cmd-");
    mkdirSync(join(dir, "tpl"));
    mkdirSync(join(dir, "secrets"));
    writeFileSync(join(dir, "secrets", "shared"), canary("shared1"));
    writeFileSync(join(dir, "secrets", "good"), canary("good1"));
    for (const [name, command] of Object.entries(bad)) {
      writeFileSync(join(dir, "tpl", `${name}.tpl`), `---\ndest: ${out(name)}\ncommand: ${command}\nsecrets:\n  v: file:../secrets/shared\n---\n{{v}}\n`);
    }
    // Two good commands that record when they start and end: they must never interleave.
    for (const name of ["z-good1", "z-good2"]) {
      writeFileSync(
        join(dir, "tpl", `${name}.tpl`),
        `---\ndest: ${out(name)}\ncommand: ["/bin/sh", "-c", "echo start ${name} >> ${journal()}; sleep 0.2; echo end ${name} >> ${journal()}"]\nsecrets:\n  v: file:../secrets/good\n  s: file:../secrets/shared\n---\n{{v}}{{s}}\n`,
      );
    }
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
  });

  afterAll(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
    }
  });

  function failed(name: string): Record<string, unknown> | undefined {
    return daemon!.logs().find((l) => l.template === join(dir, "tpl", `${name}.tpl`) && l.msg === "wrote destination; command failed");
  }

  it("every file is written, every failure is reported clearly, and the good commands still run", async () => {
    await waitFor(() => (read(journal()) ?? "").split("\n").filter(Boolean).length === 4, 60_000, "both good commands ran after the bad ones");
    for (const name of Object.keys(bad)) expect(read(out(name)), `${name} is written`).toBe(readFileSync(join(dir, "secrets", "shared"), "utf8") + "\n");

    const crash = failed("a-crash")!;
    expect(crash.signal).toBe("SIGSEGV");
    expect(crash.commandError).toContain("killed by SIGSEGV");
    const fail = failed("b-fail")!;
    expect(fail.exitCode).toBe(3);
    expect(fail.commandError).toContain("exited with code 3");
    const hang = failed("c-hang")!;
    expect(hang.timedOut).toBe(true);
    expect(hang.commandError).toContain("timed out after 1000ms");
    const stubborn = failed("d-hang-ignoring-term")!;
    expect(stubborn.timedOut).toBe(true);
    expect(stubborn.signal).toBe("SIGKILL");
    const missing = failed("f-missing")!;
    expect(missing.commandRan).toBe(false);
    expect(missing.commandError).toContain("ENOENT: command not found: /nonexistent/bin/reload-me");
    // Megabytes of output: the command succeeded, nothing of its output is logged, memory stays bounded.
    const loud = daemon!.logs().find((l) => l.template === join(dir, "tpl", "e-loud.tpl") && l.msg === "wrote destination");
    expect(loud?.exitCode).toBe(0);
    expect(daemon!.lines.some((l) => l.includes("xxxxxxxxxxxxxxxx"))).toBe(false);
    expect(daemon!.lines.some((l) => l.includes("failing"))).toBe(false);
    expect(rssKiB(daemon!.proc.pid!)).toBeLessThan(300 * 1024);

    expect(read(journal())!.split("\n").filter(Boolean)).toEqual(["start z-good1", "end z-good1", "start z-good2", "end z-good2"]);
    expect(daemon!.proc.exitCode).toBeNull();
  }, 90_000);

  it("the queue is not stuck: later writes run their commands, still one at a time", async () => {
    writeFileSync(join(dir, "secrets", "good"), canary("good2"));
    await waitFor(() => read(journal())!.split("\n").filter(Boolean).length === 8, 30_000, "the good commands ran again");
    const lines = read(journal())!.split("\n").filter(Boolean);
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]!.startsWith("start ")).toBe(true);
      expect(lines[i + 1]).toBe(lines[i]!.replace("start", "end"));
    }
    expect(daemon!.proc.exitCode).toBeNull();
  }, 60_000);
});
