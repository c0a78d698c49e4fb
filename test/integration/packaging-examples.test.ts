/**
 * The deployment examples do what they say: every template they ship passes `emissary check`,
 * the LinuxKit restart helper falls back the way it should, the systemd unit passes
 * `systemd-analyze verify`, and the custom-backend example's own test suite passes.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { spawnEmissary, tmpDir } from "../helpers/e2e.js";
import { IN_CI, ROOT, frontMatter } from "./packaging-helpers.js";

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
    p.on("close", (code) => resolve({ code, out }));
  });
}

async function which(tool: string): Promise<boolean> {
  return (await exec("/bin/sh", ["-c", `command -v ${tool}`])).code === 0;
}

/** Runs `emissary check` on a directory of templates; returns exit code and output. */
async function check(dir: string): Promise<{ code: number | null; out: string }> {
  const d = spawnEmissary(["check", "--templates", dir], { cwd: dir });
  const { code } = await d.exited;
  return { code, out: d.lines.join("\n") };
}

describe("example templates", () => {
  it("docker compose: templates/ passes `emissary check`", async () => {
    const r = await check(join(ROOT, "examples/docker/templates"));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/consul-acl\.tpl/);
  });

  it("LinuxKit: the templates in userdata.json pass `emissary check`", async () => {
    const dir = scratch("emissary-lk-tpl-");
    const userdata = JSON.parse(readFileSync(join(ROOT, "examples/linuxkit/userdata.json"), "utf8")) as Record<string, { entries: Record<string, { content: string }> }>;
    for (const [name, e] of Object.entries(userdata.emissary!.entries)) writeFileSync(join(dir, name), e.content);
    expect(readdirSync(dir).length).toBeGreaterThan(0);
    const r = await check(dir);
    expect(r.code, r.out).toBe(0);
  });

  it("Nomad: the job's template passes `emissary check` once Nomad's heredoc is dedented", async () => {
    const hcl = readFileSync(join(ROOT, "examples/nomad/app.nomad.hcl"), "utf8");
    const m = /app_template = <<-EOT\n([\s\S]*?)\n(\s*)EOT/.exec(hcl);
    expect(m).not.toBeNull();
    // <<- strips the smallest common indentation, as Nomad's HCL does.
    const lines = m![1]!.split("\n");
    const indent = Math.min(...lines.filter((l) => l.trim() !== "").map((l) => /^ */.exec(l)![0].length));
    const dir = scratch("emissary-nomad-tpl-");
    writeFileSync(join(dir, "app.tpl"), lines.map((l) => l.slice(indent)).join("\n") + "\n");
    const r = await check(dir);
    expect(r.code, r.out).toBe(0);
  });

  it("PKI: examples/pki/issue and examples/pki/local pass `emissary check` with the example's config", async () => {
    for (const sub of ["issue", "local"]) {
      const d = spawnEmissary(["check", "--config", join(ROOT, "examples/pki/emissary.yml"), "--templates", join(ROOT, "examples/pki", sub)], { cwd: ROOT });
      const { code } = await d.exited;
      const out = d.lines.join("\n");
      expect(code, out).toBe(0);
      expect(out).toMatch(new RegExp(`3 template\\(s\\) in .*examples/pki/${sub}, 0 error`));
      expect(out).toContain(sub === "issue" ? "vault:pki/issue/consul-server" : "vault:pki/sign/consul-server");
    }
  });

  it("negative check: `emissary check` fails on a template that names an undeclared secret", async () => {
    const dir = scratch("emissary-bad-tpl-");
    writeFileSync(join(dir, "bad.tpl"), "---\ndest: /tmp/x\nsecrets:\n  a: env:A\n---\n{{b}}\n");
    expect((await check(dir)).code).toBe(2);
  });
});

describe("linuxkit-restart helper", () => {
  const script = join(ROOT, "examples/linuxkit/linuxkit-restart.sh");

  /** Runs the helper with fake `service` and `ctr` that log their argv and fail as told. */
  async function restart(args: string[], failing: string[]): Promise<{ code: number | null; calls: string[]; out: string }> {
    const dir = scratch("emissary-lkr-");
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const log = join(dir, "calls");
    for (const tool of ["service", "ctr"]) {
      const fails = failing.map((f) => `  "${f}") exit 1 ;;`).join("\n");
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> "${log}"\ncase "${tool} $*" in\n${fails}\nesac\nexit 0\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const r = await exec("/bin/sh", [script, ...args], { env: { PATH: [bin, "/usr/bin", "/bin"].join(delimiter), LINUXKIT_RESTART_SETTLE: "0" } });
    return { code: r.code, out: r.out, calls: existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [] };
  }

  it("restarts with `service restart` when that works", async () => {
    const r = await restart(["consul"], []);
    expect(r.code, r.out).toBe(0);
    expect(r.calls).toEqual(["service restart consul"]);
  });

  it("removes the task and container and starts the service again when `service restart` fails", async () => {
    const r = await restart(["consul", "nomad"], ["service restart consul"]);
    expect(r.code, r.out).toBe(0);
    expect(r.calls).toEqual([
      "service restart consul",
      "ctr -n services.linuxkit task rm -f consul",
      "ctr -n services.linuxkit container rm consul",
      "service start consul",
      "service restart nomad",
    ]);
  });

  it("fails when the service cannot be started again, and refuses odd names", async () => {
    expect((await restart(["consul"], ["service restart consul", "service start consul"])).code).toBe(1);
    const odd = await restart(["-rf"], []);
    expect(odd.code).toBe(2);
    expect(odd.calls).toEqual([]);
    expect((await restart([], [])).code).toBe(2);
  });
});

describe("systemd unit", () => {
  it("passes `systemd-analyze verify` without warnings", async (ctx) => {
    if (!(await which("systemd-analyze"))) {
      if (IN_CI) throw new Error("systemd-analyze is required in CI (apt-get install systemd)");
      process.stdout.write("skipping systemd-analyze verify: systemd-analyze is not installed\n");
      ctx.skip();
    }
    const dir = scratch("emissary-unit-");
    // verify checks that ExecStart exists and is executable: point it at a stand-in.
    const stand = join(dir, "emissary");
    writeFileSync(stand, "#!/bin/sh\nexit 0\n");
    chmodSync(stand, 0o755);
    const unit = readFileSync(join(ROOT, "examples/systemd/emissary.service"), "utf8");
    const exec0 = /^ExecStart=(\S+)/m.exec(unit)![1]!;
    writeFileSync(join(dir, "emissary.service"), unit.replace(`ExecStart=${exec0}`, `ExecStart=${stand}`));
    const r = await exec("systemd-analyze", ["verify", join(dir, "emissary.service")], { cwd: dir });
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim(), "systemd-analyze printed warnings").toBe("");
  });
});

describe("custom backend example", () => {
  it("its own test suite passes (vitest with the example's config, as its README says)", async () => {
    const config = join(ROOT, "examples/custom-backend/vitest.config.ts");
    expect(existsSync(config)).toBe(true);
    const r = await exec(process.execPath, [join(ROOT, "node_modules/vitest/vitest.mjs"), "run", "--config", config], {
      env: { ...process.env, CI: "true", NO_COLOR: "1", FORCE_COLOR: "0" },
    });
    expect(r.code, r.out.slice(-4000)).toBe(0);
    expect(r.out).toMatch(/Tests\s+\d+ passed/);
    expect(r.out).not.toMatch(/failed|skipped/);
  }, 120_000);

  it("compiles with its own tsconfig against the public API only", async () => {
    const src = readFileSync(join(ROOT, "examples/custom-backend/consul-kv.ts"), "utf8");
    const imports = [...src.matchAll(/^import [\s\S]*? from "([^"]+)";$/gm)].map((m) => m[1]);
    for (const i of imports) expect(["emissaryd", "node:fs"]).toContain(i);
    const tsconfig = parseYaml(readFileSync(join(ROOT, "examples/custom-backend/tsconfig.json"), "utf8")) as { compilerOptions: Record<string, unknown> };
    expect(tsconfig.compilerOptions.moduleResolution).toBe("NodeNext");
    const r = await exec(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", dirname(join(ROOT, "examples/custom-backend/tsconfig.json")), "--noEmit"]);
    expect(r.code, r.out).toBe(0);
  }, 120_000);
});
