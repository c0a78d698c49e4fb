/**
 * examples/systemd/emissary.service read by systemd's own tools (`systemd-analyze verify` and
 * `security --offline=yes`, Debian package `systemd`), and its sandbox tried for real: emissary
 * runs under the unit's capability bounding set and no_new_privs (util-linux `setpriv`), chowns
 * a rendered file to another user in a directory root does not own, and runs its reload command.
 */
import { spawn } from "node:child_process";
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NOBODY } from "../helpers/as-nobody.js";
import { canary } from "../helpers/canary.js";
import { CLI, tmpDir } from "../helpers/e2e.js";
import { ROOT } from "./packaging-helpers.js";
import { IN_CI, requireTool } from "./packaging-tools.js";

const UNIT = readFileSync(join(ROOT, "examples/systemd/emissary.service"), "utf8");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function scratch(prefix: string): string {
  const d = tmpDir(prefix);
  dirs.push(d);
  return d;
}

function exec(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("error", reject);
    p.on("close", (code) => {
      // emissary's output joins the suite's canary scan.
      if (process.env.EMISSARY_TEST_OUTPUT_DIR) appendFileSync(join(process.env.EMISSARY_TEST_OUTPUT_DIR, `systemd-${process.pid}.log`), out);
      resolve({ code, out });
    });
  });
}

/** The unit with ExecStart pointed at a stand-in (verify checks that the binary exists). */
function unitCopy(): { dir: string; unit: string } {
  const dir = scratch("emissary-unit-");
  const stand = join(dir, "emissary");
  writeFileSync(stand, "#!/bin/sh\nexit 0\n");
  chmodSync(stand, 0o755);
  const exec0 = /^ExecStart=(\S+)/m.exec(UNIT)![1]!;
  const unit = join(dir, "emissary.service");
  writeFileSync(unit, UNIT.replace(`ExecStart=${exec0}`, `ExecStart=${stand}`));
  return { dir, unit };
}

/** Every `key=` line of [Service], its value as written. */
function serviceLines(key: string): string[] {
  const body = UNIT.slice(UNIT.indexOf("[Service]"), UNIT.indexOf("[Install]"));
  return [...body.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]!.trim());
}

/** Every value of `key` in [Service] (space-separated lists joined). */
function serviceValues(key: string): string[] {
  return serviceLines(key).flatMap((l) => l.split(/\s+/));
}

describe("systemd unit, read by systemd-analyze", () => {
  it("passes `systemd-analyze verify` without warnings", async (ctx) => {
    const tool = requireTool("systemd-analyze", ctx, "apt-get install systemd");
    const { dir, unit } = unitCopy();
    const r = await exec(tool, ["verify", unit], { cwd: dir });
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim(), "systemd-analyze printed warnings").toBe("");
  });

  it("scores 4.5 or better in `systemd-analyze security --offline=yes`", async (ctx) => {
    const tool = requireTool("systemd-analyze", ctx, "apt-get install systemd");
    const { dir, unit } = unitCopy();
    const r = await exec(tool, ["security", "--offline=yes", "--no-pager", unit], { cwd: dir });
    const score = /Overall exposure level for \S+: ([\d.]+)/.exec(r.out);
    expect(score, r.out.slice(-2000)).not.toBeNull();
    expect(Number(score![1]), r.out.slice(-6000)).toBeLessThanOrEqual(4.5);
    // --threshold makes systemd-analyze itself fail above 4.5 (its scale is 0–100).
    expect((await exec(tool, ["security", "--offline=yes", "--threshold=45", "--no-pager", unit], { cwd: dir })).code).toBe(0);
  });

  it("negative check: the same tool scores an unsandboxed copy of the unit EXPOSED", async (ctx) => {
    const tool = requireTool("systemd-analyze", ctx, "apt-get install systemd");
    const { dir, unit } = unitCopy();
    const text = readFileSync(unit, "utf8");
    const bare = text.slice(0, text.indexOf("# Sandbox")) + text.slice(text.indexOf("[Install]"));
    writeFileSync(unit, bare);
    const r = await exec(tool, ["security", "--offline=yes", "--threshold=45", "--no-pager", unit], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(Number(/Overall exposure level for \S+: ([\d.]+)/.exec(r.out)![1])).toBeGreaterThan(4.5);
  });

  it("lets through the system calls emissary and systemctl need", async (ctx) => {
    const tool = requireTool("systemd-analyze", ctx, "apt-get install systemd");
    /** The system calls of a group, nested groups resolved. */
    const resolveGroup = async (group: string, into: Set<string>): Promise<void> => {
      const r = await exec(tool, ["syscall-filter", "--no-pager", group]);
      expect(r.code, r.out).toBe(0);
      const lines = r.out.split("\n").map((l) => l.trim());
      // The first line names the group itself; its members follow, comments start with #.
      for (const l of lines.slice(1)) {
        if (/^@[a-z-]+$/.test(l)) await resolveGroup(l, into);
        else if (/^[a-z_0-9]+$/.test(l)) into.add(l);
      }
    };
    const allowed = new Set<string>();
    const denied = new Set<string>();
    for (const line of serviceLines("SystemCallFilter")) {
      const deny = line.startsWith("~");
      for (const g of line.replace(/^~/, "").split(/\s+/)) {
        if (g.startsWith("@")) await resolveGroup(g, deny ? denied : allowed);
        else (deny ? denied : allowed).add(g);
      }
    }
    expect(allowed.size).toBeGreaterThan(100);
    expect(denied.has("settimeofday") && denied.has("mount") && denied.has("reboot"), "the deny list is read").toBe(true);
    for (const call of ["fchownat", "fchown", "fchmodat", "openat", "renameat2", "fsync", "fdatasync", "unlinkat", "inotify_add_watch", "socket", "connect", "bind", "listen", "kill", "clone3", "execve", "wait4", "setsid"]) {
      expect(allowed.has(call) && !denied.has(call), `${call} is allowed`).toBe(true);
    }
    expect(serviceValues("SystemCallErrorNumber")).toEqual(["EPERM"]);
    expect(serviceValues("RestrictAddressFamilies")).toEqual(expect.arrayContaining(["AF_UNIX", "AF_INET", "AF_INET6"]));
    // The JIT needs writable executable memory.
    expect(serviceValues("MemoryDenyWriteExecute")).toEqual([]);
  });
});

describe("systemd unit, its sandbox tried for real", () => {
  /** Capability names for setpriv (`chown`, …) from the unit's CapabilityBoundingSet. */
  const caps = serviceValues("CapabilityBoundingSet").map((c) => c.replace(/^CAP_/, "").toLowerCase());

  /** Runs `emissary once` under `caps` and no_new_privs; returns the exit code and paths. */
  async function renderUnder(setpriv: string, bounding: readonly string[]): Promise<{ code: number | null; out: string; dest: string; marker: string }> {
    const dir = scratch("emissary-sandbox-");
    chmodSync(dir, 0o755);
    // A destination directory owned by another user, not writable by root without CAP_DAC_OVERRIDE.
    const outDir = join(dir, "out");
    mkdirSync(outDir, { mode: 0o755 });
    chownSync(outDir, NOBODY, NOBODY);
    const tpl = join(dir, "templates");
    mkdirSync(tpl, { mode: 0o700 });
    const dest = join(outDir, "app.conf");
    const marker = join(dir, "reloaded");
    writeFileSync(
      join(tpl, "app.tpl"),
      ["---", `dest: ${dest}`, "mode: 0640", `owner: ${NOBODY}`, `group: ${NOBODY}`, `command: ["/bin/sh", "-c", "echo reloaded > ${marker}"]`, "secrets:", "  pw: env:APP_PASSWORD", "---", "pw={{pw}}", ""].join("\n"),
    );
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, APP_PASSWORD: canary("systemd"), AWS_EC2_METADATA_DISABLED: "true", NODE_ENV: "production" };
    const r = await exec(setpriv, ["--bounding-set", ["-all", ...bounding.map((c) => `+${c}`)].join(","), "--inh-caps", "-all", "--no-new-privs", "--", process.execPath, CLI, "once", "--templates", tpl, "--timeout", "20s"], { cwd: dir, env });
    return { ...r, dest, marker };
  }

  it("emissary under the unit's capabilities and no_new_privs chowns the rendered file to another user and runs its reload command", async (ctx) => {
    const setpriv = requireTool("setpriv", ctx, "apt-get install util-linux");
    if (process.getuid?.() !== 0) {
      if (IN_CI) throw new Error("this test needs root under CI=true");
      process.stdout.write("skipping: not root, cannot chown to another user\n");
      return ctx.skip();
    }
    expect(caps).toEqual(expect.arrayContaining(["chown", "dac_override", "fowner", "fsetid", "kill"]));
    const r = await renderUnder(setpriv, caps);
    expect(r.code, r.out.slice(-3000)).toBe(0);
    const st = statSync(r.dest);
    expect([st.uid, st.gid]).toEqual([NOBODY, NOBODY]);
    expect(st.mode & 0o777).toBe(0o640);
    expect(readFileSync(r.dest, "utf8")).toMatch(/^pw=\S*CANARY/);
    expect(existsSync(r.marker), "the reload command ran").toBe(true);
  });

  it("negative check: without CAP_CHOWN the same run fails and the file is not handed over", async (ctx) => {
    const setpriv = requireTool("setpriv", ctx, "apt-get install util-linux");
    if (process.getuid?.() !== 0) {
      if (IN_CI) throw new Error("this test needs root under CI=true");
      process.stdout.write("skipping: not root\n");
      return ctx.skip();
    }
    const r = await renderUnder(
      setpriv,
      caps.filter((c) => c !== "chown"),
    );
    expect(r.code).not.toBe(0);
    expect(existsSync(r.dest) && statSync(r.dest).uid === NOBODY).toBe(false);
  });

  it("stops restarting on exit 2, the code emissary exits with on a configuration error", async () => {
    expect(serviceValues("Restart")).toEqual(["on-failure"]);
    expect(serviceValues("RestartPreventExitStatus")).toEqual(["2"]);
    const r = await exec(process.execPath, [CLI, "run", "--status-addr", "not-an-address"], { env: { PATH: process.env.PATH } });
    expect(r.code, r.out).toBe(2);
  });
});
