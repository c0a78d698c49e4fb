import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The built CLI (`npm test` builds first). */
export const CLI = join(ROOT, "dist/src/cli.js");

/** A fresh temporary directory (real path, so comparisons with emissary's absolute paths work). */
export function tmpDir(prefix = "emissary-e2e-"): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

function outputFile(): string | undefined {
  const dir = process.env.EMISSARY_TEST_OUTPUT_DIR;
  return dir ? join(dir, `${Date.now()}-${randomBytes(4).toString("hex")}.log`) : undefined;
}

function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("EMISSARY_") || k.startsWith("VAULT_") || k.startsWith("AWS_")) continue;
    env[k] = v;
  }
  env.AWS_EC2_METADATA_DISABLED = "true";
  // No kept certificates or leases shared between tests, and never /var/lib/emissary: a test that
  // wants a state directory passes its own EMISSARY_STATE_DIR.
  env.EMISSARY_STATE_DIR = "";
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Options for spawning the CLI. */
export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** When false, stdout is program output (render) and is not scanned for canaries. @defaultValue true */
  stdoutIsLog?: boolean;
  /** Start it under this descriptor limit (`ulimit -n`, soft and hard), as a small container would. */
  nofile?: number;
}

/** A running emissary process with its output. */
export interface Daemon {
  readonly proc: ChildProcess;
  /** Every stdout/stderr line so far. */
  readonly lines: string[];
  /** stdout lines parsed as JSON log objects (non-JSON lines skipped). */
  logs(): Record<string, unknown>[];
  /** Waits for a log object matching `pred`. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal and waits for exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

/** Spawns `node dist/src/cli.js ...args`, recording every line for the canary scan. */
export function spawnEmissary(args: readonly string[], opts: SpawnOptions = {}): Daemon {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  // With a descriptor limit the shell sets it and then becomes node (exec): same pid, same signals.
  const [file0, argv0] =
    opts.nofile === undefined
      ? [process.execPath, [CLI, ...args]]
      : ["/bin/sh", ["-c", `ulimit -n ${Math.floor(opts.nofile)} && exec "$0" "$@"`, process.execPath, CLI, ...args]];
  const proc = spawn(file0, argv0, { cwd: opts.cwd ?? ROOT, env: baseEnv(opts.env), stdio: ["ignore", "pipe", "pipe"] });
  running.add(proc);
  const lines: string[] = [];
  const file = outputFile();
  const waiters = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream, isLog: boolean): void => {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const l of parts) {
        lines.push(l);
        if (file && isLog) appendFileSync(file, l + "\n");
      }
      for (const w of [...waiters]) w();
    });
    stream.on("end", () => {
      if (buf) {
        lines.push(buf);
        if (file && isLog) appendFileSync(file, buf + "\n");
      }
      for (const w of [...waiters]) w();
    });
  };
  collect(proc.stdout!, opts.stdoutIsLog !== false);
  collect(proc.stderr!, true);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.on("close", (code, signal) => {
      running.delete(proc);
      for (const w of [...waiters]) w();
      r({ code, signal });
    }),
  );
  const logs = (): Record<string, unknown>[] => {
    const out: Record<string, unknown>[] = [];
    for (const l of lines) {
      if (!l.startsWith("{")) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
    return out;
  };
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000, what = "log line"): Promise<Record<string, unknown>> =>
    new Promise((resolvePromise, reject) => {
      const check = (): boolean => {
        const hit = logs().find(pred);
        if (hit) {
          cleanup();
          resolvePromise(hit);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; output so far:\n${lines.slice(-40).join("\n")}`));
      }, timeoutMs);
      const w = (): void => void check();
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(w);
      };
      waiters.add(w);
      check();
    });
  return {
    proc,
    lines,
    logs,
    waitForLog,
    exited,
    stop: (signal = "SIGTERM") => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Runs the CLI to completion. */
export async function runEmissary(args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string; lines: string[] }> {
  const stdoutChunks: string[] = [];
  const d = spawnEmissary(args, opts);
  d.proc.stdout!.on("data", (c: Buffer | string) => stdoutChunks.push(String(c)));
  const stderrChunks: string[] = [];
  d.proc.stderr!.on("data", (c: Buffer | string) => stderrChunks.push(String(c)));
  const timer = setTimeout(() => d.proc.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const { code } = await d.exited;
  clearTimeout(timer);
  return { code, stdout: stdoutChunks.join(""), stderr: stderrChunks.join(""), lines: d.lines };
}

/** Polls `cond` until true. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
