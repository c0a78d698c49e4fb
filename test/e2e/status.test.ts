import { createServer } from "node:net";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

/** A port that was free a moment ago (the daemon binds it by number). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** Resolves once the server answers at all (the daemon logs "status server listening" first). */
async function reachable(base: string): Promise<void> {
  await waitFor(async () => (await get(base + "/healthz").then(() => true, () => false)), 15_000, `${base} reachable`);
}

const ENDPOINTS = ["/", "/healthz", "/readyz", "/metrics", "/status"];

let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

describe("status server (built CLI)", () => {
  it("readiness flips 503 -> 200 when the last secret arrives; no endpoint ever serves a value; logs summarise start-up and each write", async () => {
    const dir = tmpDir();
    mkdirSync(join(dir, "tpl"));
    mkdirSync(join(dir, "secrets"));
    const out = join(dir, "out", "app.conf");
    const secretFile = join(dir, "secrets", "db.json");
    const password = canary("password");
    const token = canary("token");
    writeFileSync(
      join(dir, "tpl", "app.tpl"),
      `---
dest: ${out}
command: ["/bin/sh", "-c", "exit 0"]
secrets:
  pw: file:${secretFile}#password
  token: env:APP_TOKEN
---
password={{pw}}
token={{token}}
`,
    );
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl"), "--status-addr", `127.0.0.1:${port}`], { env: { APP_TOKEN: token } });
    await daemon.waitForLog((l) => l.msg === "status server listening", 15_000, "status server listening");
    await reachable(base);

    // Pending on the file secret: 503, naming the template and the reference.
    await waitFor(async () => (await get(base + "/readyz")).body.includes("#password"), 15_000, "readyz names the pending reference");
    const pending = await get(base + "/readyz");
    expect(pending.status).toBe(503);
    const body = JSON.parse(pending.body) as { ready: boolean; pending: { file: string; references: string[] }[] };
    expect(body.ready).toBe(false);
    expect(body.pending).toEqual([expect.objectContaining({ file: join(dir, "tpl", "app.tpl"), references: [`file:${secretFile}#password`] })]);
    expect((await get(base + "/healthz")).status).toBe(200);
    for (const p of ENDPOINTS) expect((await get(base + p)).body, p).not.toContain("CANARY");

    // The secret arrives (atomically, as an operator's tooling would write it).
    writeFileSync(secretFile + ".tmp", JSON.stringify({ password }));
    renameSync(secretFile + ".tmp", secretFile);
    await waitFor(async () => (await get(base + "/readyz")).status === 200, 20_000, "readyz 200");
    expect(readFileSync(out, "utf8")).toBe(`password=${password}\ntoken=${token}\n`);

    const status = JSON.parse((await get(base + "/status")).body) as { ready: boolean; templates: { state: string; dest: string }[]; backends: string[] };
    expect(status.ready).toBe(true);
    expect(status.templates).toEqual([expect.objectContaining({ state: "rendered", dest: out })]);
    expect([...status.backends].sort()).toEqual(["env", "file"]);
    const metrics = (await get(base + "/metrics")).body;
    expect(metrics).toMatch(/^emissary_ready 1$/m);
    expect(metrics).toMatch(/^emissary_fetches_total\{backend="file",outcome="ok"\} [1-9]/m);
    expect(metrics).toMatch(/^emissary_fetches_total\{backend="env",outcome="ok"\} [1-9]/m);
    expect(metrics).toMatch(/^emissary_template_seconds_since_last_render\{/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes /m);
    for (const p of ENDPOINTS) expect((await get(base + p)).body, p).not.toContain("CANARY");

    // Logs: a start-up summary and one line for the write, with the command's result.
    const started = await daemon.waitForLog((l) => l.msg === "emissary started", 5_000, "start-up summary");
    expect(started).toMatchObject({ templates: 1, invalid: 0 });
    const write = await daemon.waitForLog((l) => l.msg === "wrote destination", 15_000, "write line");
    expect(write).toMatchObject({ dest: out, commandRan: true, exitCode: 0 });
    expect(typeof write.commandDurationMs).toBe("number");

    const { code } = await daemon.stop("SIGTERM");
    expect(code).toBe(0);
    expect(daemon.lines.join("\n")).not.toContain("CANARY");
  });

  it("EMISSARY_STATUS_ADDR without a host listens on loopback only", async () => {
    const dir = tmpDir();
    const port = await freePort();
    daemon = spawnEmissary(["run", "--templates", dir], { env: { EMISSARY_STATUS_ADDR: `:${port}` } });
    const line = await daemon.waitForLog((l) => l.msg === "status server listening", 15_000, "status server listening");
    expect(line.address).toBe(`127.0.0.1:${port}`);
    expect(daemon.logs().some((l) => l.level === 40 && String(l.msg).includes("non-loopback"))).toBe(false);
    await reachable(`http://127.0.0.1:${port}`);
    // No templates: alive, not ready (once start-up has finished: the server answers during it).
    let r = await get(`http://127.0.0.1:${port}/readyz`);
    const end = Date.now() + 15_000;
    while (JSON.parse(r.body).reason === "emissary is starting" && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 50));
      r = await get(`http://127.0.0.1:${port}/readyz`);
    }
    expect((await get(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ reason: "no templates found" });
  });

  it("a busy status port is a clear start-up error", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const res = await runEmissary(["run", "--templates", tmpDir(), "--status-addr", `127.0.0.1:${port}`]);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`status server cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

describe("check --json (built CLI)", () => {
  it("prints one machine-readable document: templates, secrets, backends, errors with locations; exit 2 on errors", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "good.tpl"), `---\ndest: ${join(dir, "good.out")}\nmode: 0640\ncommand: systemctl reload app\nsecrets:\n  pw: env:DB_PASSWORD\n  tls:\n    ref: file:tls.json\n    default: ""\n---\n{{pw}} {{tls.ca}}\n`);
    const ok = await runEmissary(["check", "--json", "--templates", dir], { stdoutIsLog: false });
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as Record<string, any>;
    expect(report).toMatchObject({
      schemaVersion: 1,
      ok: true,
      templatesDir: dir,
      directoryExists: true,
      summary: { templates: 1, valid: 1, invalid: 0, errors: 0 },
      backends: ["env", "file"],
      references: ["env:DB_PASSWORD", "file:tls.json"],
      errors: [],
    });
    expect(report.templates[0]).toMatchObject({
      file: join(dir, "good.tpl"),
      ok: true,
      dest: join(dir, "good.out"),
      mode: "0640",
      command: ["systemctl", "reload", "app"],
      commandTimeoutMs: 30_000,
      escape: "none",
      secrets: [
        { name: "pw", ref: "env:DB_PASSWORD", backend: "env", hasDefault: false, used: true },
        { name: "tls", ref: "file:tls.json", backend: "file", hasDefault: true, used: true },
      ],
    });

    writeFileSync(join(dir, "bad.tpl"), `---\ndest: ${join(dir, "bad.out")}\nsecrets:\n  pw: nosuch:thing\n---\n{{pw}}\n`);
    const bad = await runEmissary(["check", "--json", "--templates", dir], { stdoutIsLog: false });
    expect(bad.code).toBe(2);
    const r2 = JSON.parse(bad.stdout) as Record<string, any>;
    expect(r2.ok).toBe(false);
    expect(r2.summary).toEqual({ templates: 2, valid: 1, invalid: 1, errors: 1 });
    expect(r2.errors).toEqual([expect.objectContaining({ code: "TEMPLATE", file: join(dir, "bad.tpl"), line: 4, field: "secrets.pw" })]);
    expect(r2.errors[0].message).toContain("nosuch");
    expect(r2.templates.find((t: { file: string }) => t.file.endsWith("bad.tpl")).error).toEqual(r2.errors[0]);

    const missing = await runEmissary(["check", "--json", "--templates", join(dir, "nope")], { stdoutIsLog: false });
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toMatchObject({ ok: false, directoryExists: false, errors: [{ code: "NO_TEMPLATE_DIR" }] });
  });

  it("reports a backend module that does not load as JSON, not as a crash", async () => {
    const dir = tmpDir();
    const res = await runEmissary(["check", "--json", "--templates", dir, "--backend-module", join(dir, "missing.js")], { stdoutIsLog: false });
    expect(res.code).toBe(2);
    const report = JSON.parse(res.stdout) as Record<string, any>;
    expect(report.ok).toBe(false);
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0].message).toContain("missing.js");
  });
});
