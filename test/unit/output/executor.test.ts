import { afterAll, describe, expect, it } from "vitest";
import { promises as fsp, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childEnv, CREDENTIAL_ENV_VARS, isCredentialVariable, runCommand, splitCommand, toArgv, urlHasCredentials } from "../../../src/output/executor.js";

/** True while `pid` is a live (not zombie) process. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

async function waitUntil(cond: () => boolean, timeoutMs = 15_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

const leftovers: number[] = [];
afterAll(() => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
});

describe("splitCommand", () => {
  const cases: Array<[string, string[]]> = [
    ["service restart nomad", ["service", "restart", "nomad"]],
    ["  a \t b\n c  ", ["a", "b", "c"]],
    ["echo 'hello world'", ["echo", "hello world"]],
    ["echo 'a \"b\" \\n $x'", ["echo", 'a "b" \\n $x']],
    ['echo "a \\"b\\" \\\\ \\$HOME \\` \\n"', ["echo", 'a "b" \\ $HOME ` \\n']],
    ['echo "it\'s"', ["echo", "it's"]],
    ["echo a\\ b c\\'d", ["echo", "a b", "c'd"]],
    ["echo ''", ["echo", ""]],
    ['echo ""x', ["echo", "x"]],
    ["echo a'b'\"c\"d", ["echo", "abcd"]],
    ["echo $HOME ${X}", ["echo", "$HOME", "${X}"]],
    ["kill -HUP 1", ["kill", "-HUP", "1"]],
    ["a \\\n b", ["a", "b"]],
    ["curl 'http://x/?a=1&b=2'", ["curl", "http://x/?a=1&b=2"]],
    ["echo 'a|b;c>d'", ["echo", "a|b;c>d"]],
    ["echo \\; \\| \\&", ["echo", ";", "|", "&"]],
  ];
  for (const [input, want] of cases) {
    it(`splits ${JSON.stringify(input)}`, () => {
      expect(splitCommand(input)).toEqual(want);
    });
  }

  it("rejects unclosed quotes with a clear reason", () => {
    expect(() => splitCommand("echo 'abc")).toThrow(/unclosed single quote/);
    expect(() => splitCommand('echo "abc')).toThrow(/unclosed double quote/);
    expect(() => splitCommand('echo "abc\\"')).toThrow(/unclosed double quote/);
  });

  it("rejects a trailing backslash", () => {
    expect(() => splitCommand("echo a\\")).toThrow(/backslash/);
  });

  it("rejects empty commands", () => {
    expect(() => splitCommand("")).toThrow(/empty/);
    expect(() => splitCommand("   \n\t")).toThrow(/empty/);
    expect(() => toArgv([])).toThrow(/empty/);
  });

  for (const op of ["&&", "||", "|", ";", ">", "<", ">>", "&"]) {
    it(`rejects the shell operator ${op} and says how to get a shell`, () => {
      expect(() => splitCommand(`systemctl reload nginx ${op} echo done`)).toThrow(
        /not run through a shell.*\["\/bin\/sh", "-c", "\.\.\."\]/,
      );
    });
  }

  it("rejects operators glued to words, as a shell would read them", () => {
    expect(() => splitCommand("echo hi>out")).toThrow(/">"/);
    expect(() => splitCommand("a; b")).toThrow(/";"/);
    expect(() => splitCommand("cmd 2>&1")).toThrow(/shell/);
  });

  it("rejects command substitution outside single quotes", () => {
    expect(() => splitCommand("echo $(date)")).toThrow(/\$\(.*shell/);
    expect(() => splitCommand("echo `date`")).toThrow(/`.*shell/);
    expect(() => splitCommand('echo "$(date)"')).toThrow(/\$\(/);
    expect(() => splitCommand('echo "`date`"')).toThrow(/`/);
    expect(splitCommand("echo '$(date)' '`date`'")).toEqual(["echo", "$(date)", "`date`"]);
  });

  it("toArgv copies lists as they are", () => {
    expect(toArgv(["/bin/sh", "-c", "a && b"])).toEqual(["/bin/sh", "-c", "a && b"]);
    expect(toArgv("a 'b c'")).toEqual(["a", "b c"]);
  });
});

describe("runCommand", () => {
  it("exit 0 is ok", async () => {
    const r = await runCommand({ argv: ["true"], timeoutMs: 30_000 });
    expect(r).toMatchObject({ ok: true, exitCode: 0, signal: null, timedOut: false, outputTail: "" });
    expect(r.error).toBeUndefined();
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("a non-zero exit is not ok and keeps stdout and stderr", async () => {
    const r = await runCommand({ argv: ["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"], timeoutMs: 30_000 });
    expect(r).toMatchObject({ ok: false, exitCode: 3, signal: null, timedOut: false });
    expect(r.outputTail).toContain("to-stdout\n");
    expect(r.outputTail).toContain("to-stderr\n");
    expect(r.error).toBe("exited with code 3: /bin/sh");
    const f = await runCommand({ argv: ["false"], timeoutMs: 30_000 });
    expect(f).toMatchObject({ ok: false, exitCode: 1 });
  });

  it("passes arguments literally: no shell", async () => {
    const arg = "$(echo hi) ; rm -rf / `x` $HOME *";
    const r = await runCommand({ argv: ["node", "-e", "process.stdout.write(process.argv[1])", arg], timeoutMs: 30_000 });
    expect(r.ok).toBe(true);
    expect(r.outputTail).toBe(arg);
  });

  it("a missing command resolves with an error naming it", async () => {
    const r = await runCommand({ argv: ["definitely-not-a-command-emissary-xyz", "arg"], timeoutMs: 30_000 });
    expect(r).toMatchObject({ ok: false, exitCode: null, timedOut: false });
    expect(r.error).toBe("ENOENT: command not found: definitely-not-a-command-emissary-xyz");
  });

  it("a file that is not executable resolves with EACCES", async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), "emissary-exec-"));
    try {
      const script = join(dir, "not-exec.sh");
      await fsp.writeFile(script, "#!/bin/sh\necho hi\n", { mode: 0o644 });
      const r = await runCommand({ argv: [script], timeoutMs: 30_000 });
      expect(r.ok).toBe(false);
      expect(r.error).toBe(`EACCES: permission denied: ${script}`);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("runs in cwd, and a missing cwd is named", async () => {
    const dir = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), "emissary-cwd-")));
    try {
      const r = await runCommand({ argv: ["pwd"], timeoutMs: 30_000, cwd: dir });
      expect(r.outputTail.trim()).toBe(dir);
      const m = await runCommand({ argv: ["pwd"], timeoutMs: 30_000, cwd: join(dir, "missing") });
      expect(m.ok).toBe(false);
      expect(m.error).toContain("working directory not found");
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("an empty argv resolves, never rejects", async () => {
    const r = await runCommand({ argv: [], timeoutMs: 1000 });
    expect(r).toMatchObject({ ok: false, error: "command is empty" });
  });

  it("on timeout a cooperative process gets SIGTERM", async () => {
    const r = await runCommand({ argv: ["sleep", "30"], timeoutMs: 200, killAfterMs: 10_000 });
    expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGTERM", exitCode: null });
    expect(r.error).toBe("timed out after 200ms: sleep");
  });

  it("on timeout SIGTERM goes first, then SIGKILL for a process that survives it", async () => {
    // The trap prints when TERM arrives and the loop carries on, so only SIGKILL can end it.
    const script = "trap 'echo got-term' TERM; echo started; while :; do sleep 1; done";
    const r = await runCommand({ argv: ["/bin/sh", "-c", script], timeoutMs: 300, killAfterMs: 700 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe("SIGKILL");
    expect(r.outputTail).toContain("started");
    expect(r.outputTail).toContain("got-term");
    expect(r.durationMs).toBeGreaterThanOrEqual(300 + 700 - 50);
  });

  it("kills the whole process group: grandchildren that ignore SIGTERM too", async () => {
    // Ignored signals are inherited across fork/exec: the background sleep ignores TERM as well.
    const r = await runCommand({
      argv: ["/bin/sh", "-c", 'trap "" TERM; sleep 30 & echo "grandchild=$!"; wait'],
      timeoutMs: 300,
      killAfterMs: 500,
    });
    const m = /grandchild=(\d+)/.exec(r.outputTail);
    expect(m).not.toBeNull();
    const pid = Number(m![1]);
    leftovers.push(pid);
    expect(r).toMatchObject({ timedOut: true, signal: "SIGKILL", ok: false });
    expect(await waitUntil(() => !isAlive(pid))).toBe(true);
  });

  it("does not wait forever for pipes held open by an orphaned grandchild", async () => {
    const r = await runCommand({ argv: ["/bin/sh", "-c", 'sleep 30 & echo "orphan=$!"; exit 0'], timeoutMs: 60_000 });
    const m = /orphan=(\d+)/.exec(r.outputTail);
    expect(m).not.toBeNull();
    const pid = Number(m![1]);
    leftovers.push(pid);
    expect(r).toMatchObject({ ok: true, exitCode: 0, timedOut: false });
    // A normal exit does not kill what the command left running (a daemon it started, say).
    expect(isAlive(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
  });

  it("keeps only the tail of megabytes of output", async () => {
    // The marker goes to stdout too: two pipes have no order relative to each other.
    const code = "const b = Buffer.alloc(1 << 20, 120); for (let i = 0; i < 8; i++) process.stdout.write(b); process.stdout.write('..TAIL-END');";
    const r = await runCommand({ argv: ["node", "-e", code], timeoutMs: 60_000, maxOutputBytes: 1000 });
    expect(r.ok).toBe(true);
    expect(Buffer.byteLength(r.outputTail)).toBe(1000);
    expect(r.outputTail.endsWith("x..TAIL-END")).toBe(true);
    const d = await runCommand({ argv: ["node", "-e", code], timeoutMs: 60_000 });
    expect(Buffer.byteLength(d.outputTail)).toBe(4096);
  });

  it("an abort signal terminates the command like a timeout", async () => {
    const ac = new AbortController();
    const p = runCommand({ argv: ["sleep", "30"], timeoutMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    const r = await p;
    expect(r).toMatchObject({ ok: false, timedOut: false, signal: "SIGTERM" });
    expect(r.error).toBe("aborted: sleep");
  });

  it("an already aborted signal does not start the command", async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), "emissary-abort-"));
    try {
      const marker = join(dir, "ran");
      const r = await runCommand({ argv: ["touch", marker], timeoutMs: 1000, signal: AbortSignal.abort() });
      expect(r.ok).toBe(false);
      expect(r.error).toMatch(/aborted/);
      await expect(fsp.access(marker)).rejects.toMatchObject({ code: "ENOENT" });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it("does not pass emissary's credentials to the command by default", async () => {
    const saved = { ...process.env };
    process.env.VAULT_TOKEN = "hvs.test-token";
    process.env.AWS_SECRET_ACCESS_KEY = "test-secret-key";
    process.env.EMISSARY_TPL_DIR = "/tpl";
    try {
      const code = "process.stdout.write(JSON.stringify([process.env.VAULT_TOKEN ?? null, process.env.AWS_SECRET_ACCESS_KEY ?? null, process.env.EMISSARY_TPL_DIR ?? null]))";
      const r = await runCommand({ argv: ["node", "-e", code], timeoutMs: 30_000 });
      expect(JSON.parse(r.outputTail)).toEqual([null, null, "/tpl"]);
      const explicit = await runCommand({ argv: ["node", "-e", code], timeoutMs: 30_000, env: { PATH: process.env.PATH, VAULT_TOKEN: "given" } });
      expect(JSON.parse(explicit.outputTail)).toEqual(["given", null, null]);
    } finally {
      for (const k of ["VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY", "EMISSARY_TPL_DIR"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});

describe("childEnv", () => {
  it("strips emissary's credentials and keeps everything else", () => {
    const env = childEnv({
      PATH: "/usr/bin",
      HOME: "/root",
      VAULT_TOKEN: "t",
      VAULT_ADDR: "https://vault:8200",
      AWS_SECRET_ACCESS_KEY: "s",
      AWS_SESSION_TOKEN: "st",
      AWS_SECURITY_TOKEN: "sec",
      AWS_ACCESS_KEY_ID: "AKIA",
      AWS_REGION: "eu-west-1",
      EMISSARY_TPL_DIR: "/tpl",
      EMISSARY_INSECURE_URLFILE: "/u",
      GONE: undefined,
    });
    expect(env).toEqual({
      PATH: "/usr/bin",
      HOME: "/root",
      VAULT_ADDR: "https://vault:8200",
      AWS_REGION: "eu-west-1",
      EMISSARY_TPL_DIR: "/tpl",
      EMISSARY_INSECURE_URLFILE: "/u",
    });
    for (const k of ["VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"]) {
      expect(CREDENTIAL_ENV_VARS).toContain(k);
    }
  });
});

describe("isCredentialVariable", () => {
  it.each([
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "VAULT_TOKEN",
    "VAULT_WRAP_TOKEN",
    "VAULT_SECRET_ID",
    "BAO_TOKEN",
    "EMISSARY_CONTROL_TOKEN",
  ])("%s is a credential whatever its value", (name) => {
    expect(isCredentialVariable(name, "x")).toBe(true);
  });

  it.each([
    ["AWS_REGION", "eu-west-1"],
    ["AWS_PROFILE", "ops"],
    ["AWS_CONFIG_FILE", "/etc/aws/config"],
    ["AWS_SHARED_CREDENTIALS_FILE", "/etc/aws/credentials"],
    ["AWS_ENDPOINT_URL", "http://127.0.0.1:5000"],
    ["VAULT_ADDR", "https://vault.service.consul:8200"],
    ["VAULT_NAMESPACE", "team"],
    ["EMISSARY_HTTP_URL", "http://169.254.169.254/latest/user-data/"],
    ["EMISSARY_TPL_DIR", "/etc/emissary"],
    ["HOMEPAGE", "https://example.com/docs/getting-started?lang=en"],
    ["PATH", "/usr/bin:/bin"],
  ])("%s=%s is a setting", (name, value) => {
    expect(isCredentialVariable(name, value)).toBe(false);
  });

  it.each([
    ["VAULT_ADDR", "https://admin:hunter2@vault:8200"],
    ["VAULT_ADDR", "https://vault:8200?token=abc"],
    ["EMISSARY_HTTP_URL", "http://meta/v1?x=1"],
    ["EMISSARY_HTTP_URL", "http://meta/3f9a8b7c6d5e4f3a2b1c/"],
    ["EMISSARY_HTTP_URL", "http://meta/secrets/hvs.CAESIabcdefghij/"],
    ["EMISSARY_HTTP_URL", "http://meta/0b0e5f0e-8a8e-4c59-b2a4-3a0f0d9f8e71/"],
    ["EMISSARY_HTTP_URL", "http://user@meta/"],
    ["EMISSARY_HTTP_URL", "not a url"],
    ["DATABASE_URL", "postgres://app:pw@db:5432/app"],
    ["WEBHOOK", "https://hooks.example/x?signature=abc"],
    ["PRESIGNED", "https://s3.example/b/k?X-Amz-Credential=a&X-Amz-Signature=b"],
  ])("%s=%s carries a credential", (name, value) => {
    expect(isCredentialVariable(name, value)).toBe(true);
  });

  it("urlHasCredentials: strict for the variables emissary reads URLs from, lenient elsewhere", () => {
    expect(urlHasCredentials("http://meta/v1?page=2", true)).toBe(true);
    expect(urlHasCredentials("http://meta/v1?page=2")).toBe(false);
    expect(urlHasCredentials("plain text")).toBe(false);
  });
});
