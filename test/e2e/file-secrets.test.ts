import { mkdirSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
}

describe("file secrets are pushed by watching", () => {
  let dir: string;
  let daemon: Daemon | undefined;
  let out: string;
  let runs: string;

  beforeEach(() => {
    dir = tmpDir();
    out = join(dir, "out", "app.conf");
    runs = join(dir, "runs.log");
    mkdirSync(join(dir, "tpl"));
    mkdirSync(join(dir, "secrets"));
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
  });

  async function start(secretPath: string): Promise<void> {
    writeFileSync(
      join(dir, "tpl", "app.tpl"),
      `---
dest: ${out}
command: ["/bin/sh", "-c", "echo run >> ${runs}"]
secrets:
  pw: file:${secretPath}
---
password={{pw}}
`,
    );
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
  }

  it("follows in-place writes, renames and truncate-then-write; identical content runs no command", async () => {
    const secret = join(dir, "secrets", "pw");
    const v1 = canary("pw1");
    writeFileSync(secret, v1);
    await start("../secrets/pw"); // relative to the template's directory
    await waitFor(() => lines(runs).length === 1, 10_000, "first command");
    expect(readFileSync(out, "utf8")).toBe(`password=${v1}\n`);

    // in-place write
    const v2 = canary("pw2");
    writeFileSync(secret, v2);
    await waitFor(() => readFileSync(out, "utf8") === `password=${v2}\n`, 10_000, "in-place change");
    await waitFor(() => lines(runs).length === 2, 10_000, "second command");

    // replaced by rename (editors, LinuxKit metadata)
    const v3 = canary("pw3");
    writeFileSync(secret + ".new", v3);
    renameSync(secret + ".new", secret);
    await waitFor(() => readFileSync(out, "utf8") === `password=${v3}\n`, 10_000, "rename change");
    await waitFor(() => lines(runs).length === 3, 10_000, "third command");

    // identical content rewritten (in place and by rename): no write, no command
    writeFileSync(secret, v3);
    writeFileSync(secret + ".new", v3);
    renameSync(secret + ".new", secret);
    // truncate then write: the empty intermediate is "not set", so the last file stays
    const v4 = canary("pw4");
    writeFileSync(secret, "");
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(out, "utf8")).toBe(`password=${v3}\n`);
    expect(lines(runs)).toHaveLength(3);
    writeFileSync(secret, v4);
    await waitFor(() => readFileSync(out, "utf8") === `password=${v4}\n`, 10_000, "truncate-then-write change");
    await waitFor(() => lines(runs).length === 4, 10_000, "fourth command");
    await new Promise((r) => setTimeout(r, 300));
    expect(lines(runs)).toHaveLength(4);
    expect(daemon!.proc.exitCode).toBeNull();
  });

  it("follows a Kubernetes-style ..data symlink swap", async () => {
    const sdir = join(dir, "secrets");
    const v1 = canary("k8s1");
    mkdirSync(join(sdir, "..2026_01"));
    writeFileSync(join(sdir, "..2026_01", "pw"), v1);
    symlinkSync("..2026_01", join(sdir, "..data"));
    symlinkSync("..data/pw", join(sdir, "pw"));
    await start(join(sdir, "pw"));
    await waitFor(() => lines(runs).length === 1, 10_000, "first command");
    expect(readFileSync(out, "utf8")).toBe(`password=${v1}\n`);

    const v2 = canary("k8s2");
    mkdirSync(join(sdir, "..2026_02"));
    writeFileSync(join(sdir, "..2026_02", "pw"), v2);
    symlinkSync("..2026_02", join(sdir, "..data_tmp"));
    renameSync(join(sdir, "..data_tmp"), join(sdir, "..data"));
    await waitFor(() => readFileSync(out, "utf8") === `password=${v2}\n`, 10_000, "symlink swap");
    await waitFor(() => lines(runs).length === 2, 10_000, "second command");
  });

  it("keeps the last file when the secret file is deleted", async () => {
    const secret = join(dir, "secrets", "pw");
    const v1 = canary("del");
    writeFileSync(secret, v1);
    await start(secret);
    await waitFor(() => lines(runs).length === 1, 10_000, "first command");
    unlinkSync(secret);
    await daemon!.waitForLog((l) => l.msg === "secret disappeared; keeping the last rendered files", 10_000);
    expect(readFileSync(out, "utf8")).toBe(`password=${v1}\n`);
  });
});

describe("JSON types of a file secret", () => {
  it("false, null, 0 and [] taken by #field or as nested names are falsy in sections and render as JSON text", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "flags.json"), JSON.stringify({ enabled: false, on: true, zero: 0, none: null, list: [], port: 8080, ids: [1, 2] }));
    const body = [
      "{{#enabled}}ON{{/enabled}}{{^enabled}}OFF{{/enabled}} enabled={{enabled}}",
      "{{#on}}ON{{/on}}{{^on}}OFF{{/on}}",
      "{{#zero}}ON{{/zero}}{{^zero}}OFF{{/zero}} zero={{zero}}",
      "{{#none}}ON{{/none}}{{^none}}OFF{{/none}} none={{none}}",
      "{{#list}}ON{{/list}}{{^list}}OFF{{/list}} list={{list}}",
      "{{#port}}port {{.}}{{/port}}",
      "{{#all.enabled}}ON{{/all.enabled}}{{^all.enabled}}OFF{{/all.enabled}} {{all.enabled}} {{all.zero}} {{#all.ids}}<{{.}}>{{/all.ids}}",
      "",
    ].join("\n");
    const fields = ["enabled", "on", "zero", "none", "list", "port"].map((k) => `  ${k}: file:flags.json#${k}\n`).join("");
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${join(dir, "out")}\nsecrets:\n${fields}  all: file:flags.json\n---\n${body}`);
    const res = await runEmissary(["render", join(dir, "a.tpl"), "--timeout", "20s"], { stdoutIsLog: false });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(["OFF enabled=false", "ON", "OFF zero=0", "OFF none=null", "OFF list=[]", "port 8080", "OFF false 0 <1><2>", ""].join("\n"));
  });

  it("once: a secret file created after start is rendered when it appears (watched), not at the next retry", async () => {
    const dir = tmpDir();
    mkdirSync(join(dir, "tpl"));
    mkdirSync(join(dir, "secrets"));
    const out = join(dir, "out", "app.conf");
    const secret = join(dir, "secrets", "late");
    writeFileSync(join(dir, "tpl", "app.tpl"), `---\ndest: ${out}\nsecrets:\n  pw: file:${secret}\n---\npassword={{pw}}\n`);
    // A retry a minute away: only the watch started for the waiting reference can be this quick.
    const config = join(dir, "emissary.yml");
    writeFileSync(config, "defaults: { retry: 60s }\n");
    const daemon = spawnEmissary(["once", "--templates", join(dir, "tpl"), "--config", config]);
    await daemon.waitForLog((l) => l.msg === "waiting for secret to be set", 15_000, "the wait");
    const v = canary("late");
    writeFileSync(secret, v);
    const exit = await Promise.race([daemon.exited, new Promise<"late">((r) => setTimeout(() => r("late"), 30_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(readFileSync(out, "utf8")).toBe(`password=${v}\n`);
  }, 60_000);

  it("render: a secret file created after start is printed when it appears (watched), not at the next retry", async () => {
    const dir = tmpDir();
    const secret = join(dir, "late");
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${join(dir, "unused")}\nsecrets:\n  pw: file:${secret}\n---\npassword={{pw}}\n`);
    const config = join(dir, "emissary.yml");
    writeFileSync(config, "defaults: { retry: 60s }\n");
    const v = canary("late-render");
    setTimeout(() => writeFileSync(secret, v), 1500);
    // --timeout 30s, well before the 60 s retry: only the watch started at the first miss can see it.
    const res = await runEmissary(["render", join(dir, "a.tpl"), "--config", config, "--timeout", "30s"], { stdoutIsLog: false });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(`password=${v}\n`);
  }, 60_000);
});
