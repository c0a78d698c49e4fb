/**
 * Runs one command with a timeout and kill escalation. Knows nothing of templates.
 *
 * The child leads its own process group, so a timeout (or an abort) reaches everything it
 * started: SIGTERM to the group, then SIGKILL to the group `killAfterMs` later.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { clearLongTimeout, setLongTimeout, type LongTimeout } from "../api/timer.js";

export { splitCommand, toArgv, type CommandSpec } from "./split-command.js";

/** Options for {@link runCommand}. */
export interface RunOptions {
  /** The program and its arguments. `argv[0]` is looked up in PATH; no shell is involved. */
  argv: readonly string[];
  /** After this long the process group gets SIGTERM. Non-finite or ≤ 0 means no timeout. */
  timeoutMs: number;
  /** After SIGTERM, wait this long before SIGKILL to the group. @defaultValue 5000 */
  killAfterMs?: number;
  /** Working directory. @defaultValue emissary's own */
  cwd?: string;
  /**
   * The child's environment; `undefined` values are dropped.
   * @defaultValue `childEnv(process.env)`: emissary's environment without its credentials
   */
  env?: Record<string, string | undefined>;
  /** Aborting terminates the command the way a timeout does (SIGTERM, then SIGKILL). */
  signal?: AbortSignal;
  /** How much of the combined stdout+stderr to keep (the tail). @defaultValue 4096 */
  maxOutputBytes?: number;
}

/** How a command ended. {@link runCommand} always resolves with one of these. */
export interface CommandResult {
  /** True only for exit code 0 without timeout or abort. */
  ok: boolean;
  /** The exit code, or null when the process was killed by a signal or never started. */
  exitCode: number | null;
  /** The signal that killed the process (e.g. `SIGTERM`), or null. */
  signal: string | null;
  /** True when the timeout fired. */
  timedOut: boolean;
  /** Milliseconds from spawn until the process exited. */
  durationMs: number;
  /**
   * Why it failed, for the log, e.g. `ENOENT: command not found: foo`, `exited with code 3`,
   * `timed out after 30000ms`. Names the program (argv[0]) only, never its arguments.
   */
  error?: string;
  /**
   * The last `maxOutputBytes` of combined stdout+stderr. It is whatever the command printed —
   * which may include secrets — so never log it at a level that is on by default.
   */
  outputTail: string;
}

/**
 * Credential variables of the AWS chain and Vault that a reload command must not inherit: each
 * is a credential, or hands one out by itself. Together with {@link isCredentialVariable}'s
 * patterns. Kept on purpose: region, profile and config-file variables (`AWS_REGION`,
 * `AWS_PROFILE`, `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`), endpoints, and `VAULT_ADDR`
 * without credentials in it — settings, not secrets. A command running as emissary's user can
 * still read files that user can read and reach the instance metadata service: this is about
 * credentials that live only in emissary's environment.
 */
export const CREDENTIAL_ENV_VARS: readonly string[] = [
  "VAULT_TOKEN",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_SECURITY_TOKEN",
  "AWS_CREDENTIAL_EXPIRATION",
  // Dropped with its secret half: a lone access key id makes the AWS CLI and SDKs fail with
  // "partial credentials" instead of falling through to the instance role.
  "AWS_ACCESS_KEY_ID",
  // ECS/EKS Pod Identity container credentials: the endpoint and the token that unlock emissary's role.
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  // Web identity (EKS IRSA): the token file and the role it is exchanged for go together.
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_ROLE_SESSION_NAME",
];

/** Variables of these prefixes whose name says token, secret or password are credentials. */
const CREDENTIAL_NAME = /^(AWS|VAULT|BAO|EMISSARY)_(.*_)?(TOKEN|SECRET|PASSWORD|PASSWD)(_.*)?$/;
/** Variables whose URL value is checked strictly: no userinfo, no query, no token-looking path segment. */
const STRICT_URL_VARS = new Set(["VAULT_ADDR", "BAO_ADDR", "EMISSARY_HTTP_URL"]);
/** Query parameter names that carry a credential in any URL. */
const CREDENTIAL_PARAM = /token|secret|passw|pwd|key|sig|auth|credential|session/i;

/**
 * True when a path segment looks like a token rather than a name: long and random-looking (16 or
 * more characters of letters and digits, with both), a UUID, or a known token prefix (`hvs.`).
 */
function tokenLikeSegment(seg: string): boolean {
  let s: string;
  try {
    s = decodeURIComponent(seg);
  } catch {
    return true;
  }
  if (/^(hv[sbr]|s|b|r)\.[A-Za-z0-9_-]{8,}/.test(s)) return true;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)) return true;
  if (s.length >= 32) return true;
  return s.length >= 16 && /^[A-Za-z0-9_\-.~+=]+$/.test(s) && /[0-9]/.test(s) && /[A-Za-z]/.test(s);
}

/**
 * True when `value` is a URL that carries a credential: a user or password, a query parameter
 * named like a credential (any query at all, or a token-looking path segment, when `strict`).
 * Text that is no URL is a credential only under `strict` (it cannot be checked).
 */
export function urlHasCredentials(value: string, strict = false): boolean {
  const text = value.trim();
  if (!strict && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return false;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return strict;
  }
  if (u.username !== "" || u.password !== "") return true;
  if (strict) return u.search !== "" || u.hash !== "" || u.pathname.split("/").some(tokenLikeSegment);
  for (const name of u.searchParams.keys()) if (CREDENTIAL_PARAM.test(name)) return true;
  return false;
}

/**
 * True when a variable must not reach a reload command: one of {@link CREDENTIAL_ENV_VARS}, an
 * `AWS_`/`VAULT_`/`EMISSARY_` variable named like a token, secret or password, `VAULT_ADDR` or
 * `EMISSARY_HTTP_URL` carrying a user, password, query or token-looking path segment, or any
 * variable whose value is a URL with a password or a credential query parameter.
 */
export function isCredentialVariable(name: string, value: string): boolean {
  if (CREDENTIAL_ENV_VARS.includes(name) || CREDENTIAL_NAME.test(name)) return true;
  return urlHasCredentials(value, STRICT_URL_VARS.has(name));
}

/**
 * A copy of `env` for a child process: `undefined` values dropped, and emissary's credentials
 * ({@link isCredentialVariable}) removed so a reload command never inherits them — nor the
 * variables named in `drop` (the ones read as `env:` secrets). Other settings are kept.
 */
export function childEnv(env: Record<string, string | undefined>, drop: Iterable<string> = []): Record<string, string> {
  const hidden = new Set(drop);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || hidden.has(k) || isCredentialVariable(k, v)) continue;
    out[k] = v;
  }
  return out;
}

/** Keeps the last `max` bytes of a stream of chunks without ever holding much more. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    if (this.max <= 0) return;
    if (chunk.length >= this.max) {
      this.chunks = [chunk.subarray(chunk.length - this.max)];
      this.size = this.max;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.max) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    let tail = all.subarray(Math.max(0, all.length - this.max));
    // Do not start in the middle of a UTF-8 sequence.
    let skip = 0;
    while (skip < 3 && skip < tail.length && (tail[skip]! & 0xc0) === 0x80) skip++;
    if (skip > 0 && skip < tail.length) tail = tail.subarray(skip);
    return tail.toString("utf8");
  }
}

/** How long to wait for stdout/stderr to close after the process exited (orphans may hold them). */
const PIPE_GRACE_MS = 1000;

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch (err) {
    if ((err as { code?: unknown }).code === "ESRCH") return; // the group is gone
    try {
      child.kill(sig);
    } catch {
      /* nothing more we can do */
    }
  }
}

function spawnErrorText(err: unknown, cmd: string, cwd?: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOENT") {
    if (cwd !== undefined && !existsSync(cwd)) return `ENOENT: working directory not found: ${cwd}`;
    return `ENOENT: command not found: ${cmd}`;
  }
  if (code === "EACCES") return `EACCES: permission denied: ${cmd}`;
  return `${typeof code === "string" ? code : "error"}: cannot run ${cmd}`;
}

/**
 * Runs `argv` (no shell) in its own process group and reports how it ended. Never rejects.
 *
 * The combined output is drained continuously and only its tail kept, so a command printing
 * megabytes costs no memory. On timeout or abort the whole group gets SIGTERM, then SIGKILL
 * `killAfterMs` later. Resolves once the process has exited and its pipes have closed — or at
 * most one second after it exited, when orphaned grandchildren hold the pipes open.
 * A command that cannot be started (ENOENT, EACCES) resolves with `ok: false` and `error` naming it.
 */
export async function runCommand(opts: RunOptions): Promise<CommandResult> {
  const t0 = performance.now();
  const tail = new Tail(opts.maxOutputBytes ?? 4096);
  const cmd = opts.argv[0] ?? "";
  const fail = (error: string): CommandResult => ({
    ok: false,
    exitCode: null,
    signal: null,
    timedOut: false,
    durationMs: performance.now() - t0,
    error,
    outputTail: "",
  });
  if (opts.argv.length === 0 || cmd === "") return fail("command is empty");
  if (opts.signal?.aborted) return fail(`aborted before start: ${cmd}`);

  let child: ChildProcess;
  try {
    // node:child_process is loaded at the first command, not at start-up (`once` without a
    // command never needs it: ~2 ms of a cold start).
    child = process.getBuiltinModule("node:child_process").spawn(cmd, opts.argv.slice(1), {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      cwd: opts.cwd,
      env: opts.env === undefined ? childEnv(process.env) : childEnvKeepAll(opts.env),
    });
  } catch (err) {
    return fail(spawnErrorText(err, cmd, opts.cwd));
  }

  return new Promise<CommandResult>((resolve) => {
    let timedOut = false;
    let aborted = false;
    let spawnError: string | undefined;
    let exited: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
    let openPipes = 2;
    let timer: LongTimeout | undefined;
    let killTimer: LongTimeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    let done = false;

    const onData = (chunk: Buffer): void => tail.push(chunk);
    const onPipeClosed = (): void => {
      openPipes--;
      maybeFinish();
    };
    for (const s of [child.stdout, child.stderr]) {
      if (!s) {
        openPipes--;
        continue;
      }
      s.on("data", onData);
      s.once("close", onPipeClosed);
      s.on("error", () => undefined);
    }

    const terminate = (): void => {
      if (exited || killTimer) return;
      killGroup(child, "SIGTERM");
      killTimer = setLongTimeout(() => killGroup(child, "SIGKILL"), opts.killAfterMs ?? 5000);
    };
    const onAbort = (): void => {
      aborted = true;
      terminate();
    };

    if (Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0) {
      timer = setLongTimeout(() => {
        timedOut = true;
        terminate();
      }, opts.timeoutMs);
    }
    opts.signal?.addEventListener("abort", onAbort, { once: true });

    function finish(): void {
      if (done) return;
      done = true;
      clearLongTimeout(timer);
      clearTimeout(graceTimer);
      // The SIGKILL escalation keeps running after the leader exits: grandchildren that
      // ignored SIGTERM are still in the group. It must not keep emissary alive, though.
      killTimer?.unref();
      opts.signal?.removeEventListener("abort", onAbort);
      for (const s of [child.stdout, child.stderr]) {
        s?.off("data", onData);
        s?.destroy();
      }
      const code = exited?.code ?? null;
      const sig = exited?.signal ?? null;
      let error = spawnError;
      if (error === undefined) {
        if (timedOut) error = `timed out after ${opts.timeoutMs}ms: ${cmd}`;
        else if (aborted) error = `aborted: ${cmd}`;
        else if (sig !== null) error = `killed by ${sig}: ${cmd}`;
        else if (code !== 0) error = `exited with code ${code}: ${cmd}`;
      }
      const result: CommandResult = {
        ok: error === undefined && code === 0,
        exitCode: code,
        signal: sig,
        timedOut,
        durationMs: (exited?.at ?? performance.now()) - t0,
        outputTail: tail.toString(),
      };
      if (error !== undefined) result.error = error;
      resolve(result);
    }

    function maybeFinish(): void {
      if (done) return;
      if (spawnError !== undefined) return finish();
      if (!exited) return;
      if (openPipes <= 0) return finish();
      graceTimer ??= setTimeout(finish, PIPE_GRACE_MS);
    }

    child.on("error", (err) => {
      // Emitted when spawn fails (ENOENT/EACCES), or when a kill fails; only the first matters.
      if (exited || child.pid !== undefined) return;
      spawnError = spawnErrorText(err, cmd, opts.cwd);
      maybeFinish();
    });
    child.once("exit", (code, signal) => {
      exited = { code, signal, at: performance.now() };
      clearLongTimeout(timer);
      maybeFinish();
    });
  });
}

/** Drops `undefined` values only: an explicit env is the caller's choice. */
function childEnvKeepAll(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}
