import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { ROOT, runEmissary, spawnEmissary, tmpDir, waitFor } from "../helpers/e2e.js";

const tpl = (dest: string, body: string, extra = ""): string => `---\ndest: ${dest}\n${extra}---\n${body}`;

describe("CLI", () => {
  it("--help documents every command, flag, variable and exit code; --version prints the version", async () => {
    const help = await runEmissary(["--help"]);
    expect(help.code).toBe(0);
    for (const s of ["run", "once", "check", "render", "--templates", "EMISSARY_TPL_DIR", "--pattern", "EMISSARY_TPL_PATTERN", "--config", "EMISSARY_CONFIG", "--startup-delay", "EMISSARY_STARTUP_DELAY", "--log-level", "EMISSARY_LOG_LEVEL", "--log-format", "EMISSARY_LOG_FORMAT", "--status-addr", "EMISSARY_STATUS_ADDR", "--backend-module", "EMISSARY_BACKEND_MODULES", "--timeout", "EMISSARY_TIMEOUT", "Exit codes"]) {
      expect(help.stdout).toContain(s);
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const v = await runEmissary(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(`emissary ${pkg.version}`);
  });

  it("render prints the template to stdout without writing or running anything", async () => {
    const dir = tmpDir();
    const value = canary("render");
    writeFileSync(join(dir, "s.json"), JSON.stringify({ user: "app", password: value }));
    const dest = join(dir, "never-written");
    const marker = join(dir, "never-run");
    writeFileSync(join(dir, "a.tpl"), tpl(dest, "{{db.user}}:{{pw}}\n", `command: /bin/touch ${marker}\nsecrets:\n  db: file:s.json\n  pw: file:s.json#password\n`));
    const res = await runEmissary(["render", join(dir, "a.tpl")], { stdoutIsLog: false });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`app:${value}\n`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });

  it("render and once time out with exit 1 naming the pending references", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "x"), "{{x}}\n", "secrets:\n  x: file:missing-file\n"));
    const r = await runEmissary(["render", join(dir, "a.tpl"), "--timeout", "300ms"], { stdoutIsLog: false });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("file:missing-file");
    const o = await runEmissary(["once", "--templates", dir], { env: { EMISSARY_TIMEOUT: "300ms" } });
    expect(o.code).toBe(1);
    expect(o.stderr).toContain("a.tpl");
    expect(o.stderr).toContain("file:missing-file");
  });

  it("render and once say why a reference that fails (not just unset) is waited for", async () => {
    const dir = tmpDir();
    mkdirSync(join(dir, "a-directory"));
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "x"), "{{x}}\n", "secrets:\n  x: file:a-directory\n  y: file:missing-file\n"));
    const r = await runEmissary(["render", join(dir, "a.tpl"), "--timeout", "500ms"], { stdoutIsLog: false });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ {2}file:\S*a-directory: refused \(permission, authentication or a bad reference\), retried at the cap: .*not a regular file/m);
    // Unset is not a failure worth a reason line.
    expect(r.stderr).not.toMatch(/^ {2}file:\S*missing-file/m);
    const o = await runEmissary(["once", "--templates", dir, "--timeout", "500ms"]);
    expect(o.code).toBe(1);
    expect(o.stderr).toContain("pending: ");
    expect(o.stderr).toMatch(/^ {2}file:\S*a-directory: refused \(permission, authentication or a bad reference\), retried at the cap: .*not a regular file/m);
    expect(o.stderr).not.toMatch(/^ {2}file:\S*missing-file/m);
  });

  it("waits for a missing template directory, then picks up added, changed and removed templates live", async () => {
    const dir = tmpDir();
    const tdir = join(dir, "later");
    writeFileSync(join(dir, "s"), canary("live"));
    const d = spawnEmissary(["run", "--templates", tdir]);
    try {
      await d.waitForLog((l) => String(l.msg).includes("template directory does not exist"));
      mkdirSync(tdir);
      writeFileSync(join(tdir, "a.tpl"), tpl(join(dir, "a.out"), "A {{x}}\n", `secrets: { x: "file:${join(dir, "s")}" }\n`));
      await waitFor(() => existsSync(join(dir, "a.out")), 10_000, "template in a directory created later");
      writeFileSync(join(tdir, "a.tpl"), tpl(join(dir, "a.out"), "A2 {{x}}\n", `secrets: { x: "file:${join(dir, "s")}" }\n`));
      await waitFor(() => readFileSync(join(dir, "a.out"), "utf8").startsWith("A2 "), 10_000, "changed template");
      writeFileSync(join(tdir, "b.tpl"), tpl(join(dir, "b.out"), "B\n"));
      await waitFor(() => existsSync(join(dir, "b.out")), 10_000, "added template");
      writeFileSync(join(tdir, "ignored.txt"), tpl(join(dir, "c.out"), "C\n"));
      rmSync(join(tdir, "b.tpl"));
      await d.waitForLog((l) => l.msg === "template removed");
      expect(existsSync(join(dir, "c.out"))).toBe(false); // pattern *.tpl
    } finally {
      expect((await d.stop("SIGINT")).code).toBe(0);
    }
  });

  it("SIGHUP reloads templates and config keeping fetched values", async () => {
    const dir = tmpDir();
    const s = join(dir, "s");
    writeFileSync(s, canary("hup"));
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a.out"), "{{x}}\n", `secrets: { x: "file:${s}" }\n`));
    const d = spawnEmissary(["run", "--templates", dir, "--log-level", "debug"]);
    try {
      await waitFor(() => existsSync(join(dir, "a.out")), 10_000, "first render");
      d.proc.kill("SIGHUP");
      await d.waitForLog((l) => l.msg === "reloading configuration and templates");
      await new Promise((r) => setTimeout(r, 300));
      expect(d.proc.exitCode).toBeNull();
      // The value was kept: no second "wrote destination", and still one render.
      expect(d.logs().filter((l) => l.msg === "wrote destination")).toHaveLength(1);
    } finally {
      await d.stop();
    }
  });

  it("SIGHUP re-reads the config file: a new default mode is applied without refetching", async () => {
    const dir = tmpDir();
    const s = join(dir, "s");
    writeFileSync(s, canary("hupcfg"));
    const cfg = join(dir, "c.yml");
    writeFileSync(cfg, "defaults: { mode: '0600' }\n");
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a.out"), "{{x}}\n", `secrets: { x: "file:${s}" }\n`));
    const d = spawnEmissary(["run", "--templates", dir, "--config", cfg]);
    try {
      await waitFor(() => existsSync(join(dir, "a.out")), 10_000, "first render");
      expect(statSync(join(dir, "a.out")).mode & 0o777).toBe(0o600);
      writeFileSync(cfg, "defaults: { mode: '0640' }\n");
      d.proc.kill("SIGHUP");
      await waitFor(() => (statSync(join(dir, "a.out")).mode & 0o777) === 0o640, 10_000, "mode from the reloaded config");
      // A broken config on the next SIGHUP is reported and the running one is kept.
      writeFileSync(cfg, "defaults: { mode: nonsense }\n");
      d.proc.kill("SIGHUP");
      await d.waitForLog((l) => String(l.msg).startsWith("reload failed"));
      expect(d.proc.exitCode).toBeNull();
    } finally {
      expect((await d.stop()).code).toBe(0);
    }
  });

  it("--startup-delay takes Go durations; SIGTERM during it exits 0 at once", async () => {
    const dir = tmpDir();
    const d = spawnEmissary(["run", "--templates", dir, "--startup-delay", "1m30s"]);
    await d.waitForLog((l) => l.msg === "startup delay" && l.delay === "1m30s");
    const { code } = await d.stop();
    expect(code).toBe(0);
  });

  it("a second signal forces a stop while a command hangs", async () => {
    const dir = tmpDir();
    const started = join(dir, "started");
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a.out"), "x\n", `command: ["/bin/sh", "-c", "touch ${started}; sleep 60"]\ncommand_timeout: 60s\n`));
    const d = spawnEmissary(["run", "--templates", dir]);
    await waitFor(() => existsSync(started), 10_000, "command started");
    d.proc.kill("SIGTERM");
    await d.waitForLog((l) => l.msg === "stopping gracefully");
    d.proc.kill("SIGTERM");
    const res = await d.exited;
    expect(res.code).not.toBeNull();
  });
});
