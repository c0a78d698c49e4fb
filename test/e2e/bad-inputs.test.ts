import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor } from "../helpers/e2e.js";

/** name → [template text (DEST replaced), expected fragments of the error] */
function badTemplates(dir: string): Record<string, [string, string[]]> {
  const d = (n: string): string => join(dir, "out", n);
  return {
    "bad-yaml.tpl": [`---\ndest: ${d("a")}\nmode: [0600\n---\nx\n`, ["bad-yaml.tpl:", "YAML"]],
    "bad-mode.tpl": [`---\ndest: ${d("b")}\nmode: 0999\n---\nx\n`, ["bad-mode.tpl:3", "mode"]],
    "unknown-backend.tpl": [`---\ndest: ${d("c")}\nsecrets:\n  x: nosuch:thing\n---\n{{x}}\n`, ["unknown-backend.tpl:4", "nosuch"]],
    "undeclared.tpl": [`---\ndest: ${d("d")}\nsecrets:\n  x: file:s\n---\nline one\n  {{x}} {{y}}\n`, ["undeclared.tpl:7:", '"y"']],
    "unclosed.tpl": [`---\ndest: ${d("e")}\nsecrets:\n  x: file:s\n---\n{{#x}}\nnever closed\n`, ["unclosed.tpl:", "x"]],
    "unknown-key.tpl": [`---\ndest: ${d("f")}\ndestination: oops\n---\nx\n`, ["unknown-key.tpl:3", "destination"]],
    "no-dest.tpl": [`---\nmode: 0600\n---\nx\n`, ["no-dest.tpl", "dest"]],
    "go-syntax.tpl": [`---\ndest: ${d("g")}\n---\n{{ if .Foo }}x{{ end }}\n`, ["go-syntax.tpl:4", "Go"]],
    "no-front-matter.tpl": [`just text {{x}}\n`, ["no-front-matter.tpl"]],
  };
}

function setup(): { dir: string; tpl: string; secret: string; good: string; value: string } {
  const dir = tmpDir();
  const tpl = join(dir, "tpl");
  mkdirSync(tpl);
  const secret = join(dir, "s");
  const value = canary("good");
  writeFileSync(secret, value);
  const good = join(dir, "out", "good.conf");
  writeFileSync(join(tpl, "good.tpl"), `---\ndest: ${good}\nsecrets:\n  x: file:${secret}\n---\nvalue={{x}}\n`);
  for (const [name, [text]] of Object.entries(badTemplates(dir))) writeFileSync(join(tpl, name), text.replace(/file:s\b/g, `file:${secret}`));
  return { dir, tpl, secret, good, value };
}

describe("bad inputs", () => {
  it("check reports every bad template with file, line and reason, and exits 2", async () => {
    const { dir, tpl } = setup();
    const res = await runEmissary(["check", "--templates", tpl]);
    expect(res.code).toBe(2);
    for (const [name, [, fragments]] of Object.entries(badTemplates(dir))) {
      const line = res.stdout.split("\n").find((l) => l.includes(name));
      expect(line, `a line about ${name} in:\n${res.stdout}`).toBeDefined();
      for (const f of fragments) expect(line, name).toContain(f);
    }
    expect(res.stdout).toMatch(/ok\s+.*good\.tpl/);
  });

  it("run skips the bad templates, renders the good one and keeps running", async () => {
    const { tpl, good, value } = setup();
    const d = spawnEmissary(["run", "--templates", tpl]);
    try {
      await waitFor(() => existsSync(good), 10_000, "good template rendered");
      expect(readFileSync(good, "utf8")).toBe(`value=${value}\n`);
      const invalid = d.logs().filter((l) => l.msg === "template is invalid; skipped (the other templates carry on)");
      expect(invalid.length).toBe(Object.keys(badTemplates("")).length);
      expect(d.proc.exitCode).toBeNull();
    } finally {
      expect((await d.stop()).code).toBe(0);
    }
  });

  it("an unwritable destination is reported and retried; the other templates are written", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "s"), canary("w"));
    writeFileSync(join(dir, "file-not-dir"), "x");
    const blocked = join(dir, "file-not-dir", "app.conf"); // parent is a regular file: ENOTDIR, even as root
    const ok = join(dir, "ok.conf");
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${blocked}\nsecrets: { x: file:s }\n---\n{{x}}\n`);
    writeFileSync(join(dir, "b.tpl"), `---\ndest: ${ok}\nsecrets: { x: file:s }\n---\n{{x}}\n`);
    const d = spawnEmissary(["run", "--templates", dir]);
    try {
      const line = await d.waitForLog((l) => l.msg === "cannot write destination; the last good file stays");
      expect(JSON.stringify(line)).toContain("file-not-dir");
      await waitFor(() => existsSync(ok), 10_000, "other template written");
      expect(d.proc.exitCode).toBeNull();
    } finally {
      await d.stop();
    }
    const once = await runEmissary(["once", "--templates", dir]);
    expect(once.code).toBe(1);
    expect(once.stderr).toContain("a.tpl");
  });

  it("a command that is not found is logged, the file stays written, run carries on, once exits 1", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "s"), canary("c"));
    const out = join(dir, "out.conf");
    const out2 = join(dir, "out2.conf");
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${out}\ncommand: /no/such/command --flag\nsecrets: { x: file:s }\n---\n{{x}}\n`);
    writeFileSync(join(dir, "b.tpl"), `---\ndest: ${out2}\ncommand: /bin/false\nsecrets: { x: file:s }\n---\n{{x}}!\n`);
    const d = spawnEmissary(["run", "--templates", dir]);
    try {
      const line = await d.waitForLog((l) => l.msg === "command failed" && JSON.stringify(l).includes("/no/such/command"));
      expect(String(line.reason)).toMatch(/not found|ENOENT/);
      await d.waitForLog((l) => l.msg === "command failed" && l.exitCode === 1);
      expect(existsSync(out)).toBe(true);
      expect(d.proc.exitCode).toBeNull();
    } finally {
      await d.stop();
    }
    // Commands run only after a write: remove the outputs so once writes again.
    rmSync(out);
    rmSync(out2);
    const once = await runEmissary(["once", "--templates", dir]);
    expect(once.code).toBe(1);
    expect(once.stderr).toContain("a.tpl");
    expect(once.stderr).toContain("b.tpl");
  });

  it("a bad config file exits 2 naming the key", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "c.yml"), "templates: .\nbogus: 1\n");
    const res = await runEmissary(["check", "--config", join(dir, "c.yml")]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("bogus");
    writeFileSync(join(dir, "d.yml"), "backends:\n  awssm: { regoin: eu-west-1 }\n");
    const res2 = await runEmissary(["check", "--config", join(dir, "d.yml"), "--templates", dir]);
    expect(res2.code).toBe(2);
    expect(res2.stderr).toContain("regoin");
  });

  it("bad flags and values exit 2", async () => {
    for (const args of [["--nope"], ["frobnicate"], ["--log-level", "loud"], ["--startup-delay", "10"], ["render"], ["--status-addr", "nowhere"]]) {
      const res = await runEmissary(args);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr, args.join(" ")).toMatch(/emissary: /);
    }
  });
});
