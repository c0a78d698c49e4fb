/**
 * The deployment examples do what they say: every template they ship passes `emissary check`,
 * and the custom-backend example's own test suite passes (packaging-linuxkit.test.ts tries the
 * LinuxKit restart helper, packaging-systemd.test.ts the systemd unit).
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { spawnEmissary, tmpDir } from "../helpers/e2e.js";
import { ROOT } from "./packaging-helpers.js";

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

  it("HCL: examples/hcl/templates (Consul and Nomad agent config, escape: hcl) pass `emissary check`", async () => {
    const r = await check(join(ROOT, "examples/hcl/templates"));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/consul\.hcl\.tpl/);
    expect(r.out).toMatch(/nomad\.hcl\.tpl/);
    expect(r.out).toMatch(/2 template\(s\) .*0 error\(s\)/);
  });

  it("keytab: examples/keytab/templates (a binary keytab, encoding: binary) passes `emissary check`", async () => {
    const r = await check(join(ROOT, "examples/keytab/templates"));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/http\.keytab\.tpl/);
    // The one-tag body the keytab needs: no final newline after {{keytab}}.
    expect(readFileSync(join(ROOT, "examples/keytab/templates/http.keytab.tpl"), "utf8").endsWith("---\n{{keytab}}")).toBe(true);
  });

  it("negative check: `emissary check` fails on an unknown escape mode, naming the field and the accepted modes", async () => {
    const dir = scratch("emissary-bad-escape-");
    writeFileSync(join(dir, "bad.tpl"), "---\ndest: /tmp/x\nsecrets:\n  a:\n    ref: env:A\n    escape: xml\n---\n{{a}}\n");
    const r = await check(dir);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/bad\.tpl:6:\d+: secrets\.a\.escape: must be one of none, json, html, hcl, yaml, toml, shell \(got "xml"\)/);
  });

  it("negative check: `emissary check` fails on a template that names an undeclared secret", async () => {
    const dir = scratch("emissary-bad-tpl-");
    writeFileSync(join(dir, "bad.tpl"), "---\ndest: /tmp/x\nsecrets:\n  a: env:A\n---\n{{b}}\n");
    expect((await check(dir)).code).toBe(2);
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
