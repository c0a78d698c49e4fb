import { createServer } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, createEmissary, createLogger, createMemoryBackend, FatalError, type Emissary, type Logger, type MemoryBackend } from "../../src/index.js";
import { startStatusServer, type StatusServer } from "../../src/observe/status-server.js";
import { canary } from "../helpers/canary.js";
import { tmpDir, waitFor } from "../helpers/e2e.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A logger whose lines (pino JSON, with emissary's redaction) land in an array. */
function memoryLogger(level: "info" | "debug" = "debug"): { logger: Logger; lines: string[]; logs: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void lines.push(s) } as never });
  return { logger, lines, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

interface Setup {
  dir: string;
  out: string;
  mem: MemoryBackend;
  emissary: Emissary;
  server: StatusServer;
  base: string;
  lines: string[];
  logs: () => Record<string, unknown>[];
}

async function setup(opts: { values?: Record<string, string>; command?: string; start?: boolean } = {}): Promise<Setup> {
  const dir = tmpDir("emissary-status-");
  const out = join(dir, "out", "app.conf");
  const cmd = opts.command ?? "";
  writeFileSync(join(dir, "app.tpl"), `---\ndest: ${out}\n${cmd}secrets:\n  token: memory:app/token\n  db: memory:app/db#password\n---\ntoken={{token}}\npassword={{db}}\n`);
  const mem = createMemoryBackend({ values: opts.values ?? {} });
  const { logger, lines, logs } = memoryLogger();
  const emissary = await createEmissary({ templates: dir, backends: [mem], logger, env: {} });
  cleanups.push(() => emissary.stop({ force: true }));
  const server = await startStatusServer({ emissary, address: "127.0.0.1:0", logger });
  cleanups.push(() => server.close());
  if (opts.start !== false) await emissary.start();
  return { dir, out, mem, emissary, server, base: `http://127.0.0.1:${server.address.port}`, lines, logs };
}

async function get(url: string, method = "GET"): Promise<{ status: number; body: string; type: string | null; json: () => Record<string, any> }> {
  const res = await fetch(url, { method });
  const body = await res.text();
  return { status: res.status, body, type: res.headers.get("content-type"), json: () => JSON.parse(body) as Record<string, any> };
}

async function scrapeAll(base: string): Promise<string[]> {
  return Promise.all(["/", "/healthz", "/readyz", "/metrics", "/status", "/nope"].map(async (p) => (await get(base + p)).body));
}

describe("status server", () => {
  it("readyz is 503 naming the pending template and its references, then 200 once rendered; nothing served holds a value", async () => {
    const token = canary("token");
    const password = canary("password");
    const s = await setup({ values: { "app/token": token } });

    await waitFor(() => s.emissary.status().templates[0]?.state === "pending" && s.emissary.status().templates[0]!.pending.length === 1, 10_000, "template pending");
    const notReady = await get(s.base + "/readyz");
    expect(notReady.status).toBe(503);
    expect(notReady.type).toMatch(/^application\/json/);
    const body = notReady.json();
    expect(body.ready).toBe(false);
    expect(body.reason).toMatch(/1 of 1 template/);
    expect(body.pending).toEqual([{ file: join(s.dir, "app.tpl"), dest: s.out, state: "pending", references: ["memory:app/db#password"] }]);
    expect((await get(s.base + "/healthz")).status).toBe(200);
    const metricsBefore = (await get(s.base + "/metrics")).body;
    expect(metricsBefore).toMatch(/^emissary_ready 0$/m);
    expect(metricsBefore).toMatch(/^emissary_templates\{state="pending"\} 1$/m);
    expect(metricsBefore).toMatch(/^emissary_pending_references 1$/m);
    expect(metricsBefore).not.toMatch(/emissary_template_seconds_since_last_render\{/);
    for (const b of await scrapeAll(s.base)) expect(b).not.toContain("CANARY");

    const ready = new Promise((r) => s.emissary.once("ready", r));
    s.mem.set("app/db", JSON.stringify({ password }));
    await ready;
    // The canaries did reach the destination: the scans below are not vacuous.
    expect(readFileSync(s.out, "utf8")).toBe(`token=${token}\npassword=${password}\n`);

    const r = await get(s.base + "/readyz");
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ ready: true, templates: 1, pending: [], failing: [] });

    const st = (await get(s.base + "/status")).json();
    expect(st).toMatchObject({ ready: true, phase: "running", waitingForTemplateDir: false, backends: ["memory"] });
    expect(st.templates).toHaveLength(1);
    expect(st.templates[0]).toMatchObject({ file: join(s.dir, "app.tpl"), dest: s.out, state: "rendered", pending: [] });
    expect(typeof st.templates[0].lastRenderAt).toBe("number");
    expect(st.references.map((x: { ref: string; lastOutcome: string }) => [x.ref, x.lastOutcome]).sort()).toEqual([
      ["memory:app/db", "ok"],
      ["memory:app/token", "ok"],
    ]);
    // The same state through the library.
    expect(JSON.parse(JSON.stringify(s.emissary.status())).templates).toEqual(st.templates);

    const m = await get(s.base + "/metrics");
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain/);
    expect(m.body).toMatch(/^emissary_ready 1$/m);
    expect(m.body).toMatch(/^emissary_templates\{state="rendered"\} 1$/m);
    expect(m.body).toMatch(/^emissary_fetches_total\{backend="memory",outcome="ok"\} [1-9]/m);
    expect(m.body).toMatch(/^emissary_fetches_total\{backend="memory",outcome="not_found"\} [1-9]/m);
    expect(m.body).toMatch(/^emissary_fetch_duration_seconds_count\{backend="memory",outcome="ok"\} [1-9]/m);
    expect(m.body).toContain(`emissary_writes_total{template="${join(s.dir, "app.tpl")}",dest="${s.out}"} 1`);
    expect(m.body).toMatch(/^emissary_template_seconds_since_last_render\{template="[^"]+",dest="[^"]+"\} \d/m);
    expect(m.body).toMatch(/^process_cpu_user_seconds_total /m);
    expect(m.body).toMatch(/^nodejs_eventloop_lag_seconds /m);

    for (const b of await scrapeAll(s.base)) expect(b).not.toContain("CANARY");
    expect(s.lines.join("\n")).not.toContain("CANARY");
  });

  it("reports why a reference is unresolved (sanitized) and counts the failure by backend", async () => {
    const s = await setup({ values: { "app/token": canary() } });
    s.mem.fail("app/db", new FatalError("memory:app/db: permission denied"));
    await waitFor(() => s.emissary.status().references.some((r) => r.lastOutcome === "fatal"), 10_000, "fatal fetch recorded");
    const st = (await get(s.base + "/status")).json();
    const ref = st.references.find((r: { ref: string }) => r.ref === "memory:app/db");
    expect(ref).toMatchObject({ backend: "memory", lastOutcome: "fatal", error: "memory:app/db: permission denied", templates: [join(s.dir, "app.tpl")] });
    expect((await get(s.base + "/metrics")).body).toMatch(/^emissary_fetches_total\{backend="memory",outcome="fatal"\} [1-9]/m);
    expect((await get(s.base + "/readyz")).status).toBe(503);
  });

  it("withholds a SyntaxError's message from the status (JSON.parse quotes its input)", async () => {
    const s = await setup({ values: { "app/token": "x" } });
    // JSON.parse quotes the first 10 characters of its input: start the value with the marker.
    const value = `x${canary("")}`;
    let err: Error;
    try {
      JSON.parse(value);
      throw new Error("unreachable");
    } catch (e) {
      err = e as Error;
    }
    expect(err.message).toContain("CANARY");
    s.mem.fail("app/db", err);
    await waitFor(() => s.emissary.status().references.some((r) => r.lastOutcome !== undefined && r.ref === "memory:app/db" && r.error !== undefined), 10_000, "failed fetch recorded");
    for (const b of await scrapeAll(s.base)) expect(b).not.toContain("CANARY");
  });

  it("healthz is 200 while the loop is alive, and 503 once the emissary stops", async () => {
    const s = await setup({ start: false });
    const before = await get(s.base + "/healthz");
    expect(before.status).toBe(200);
    expect(before.json()).toMatchObject({ status: "ok", phase: "created" });
    expect((await get(s.base + "/readyz")).json().reason).toBe("emissary is starting");
    await s.emissary.start();
    const running = (await get(s.base + "/healthz")).json();
    expect(running).toMatchObject({ status: "ok", phase: "running" });
    expect(typeof running.uptimeSeconds).toBe("number");
    await s.emissary.stop();
    const after = await get(s.base + "/healthz");
    expect(after.status).toBe(503);
    expect(after.json()).toMatchObject({ status: "unhealthy", phase: "stopped" });
  });

  it("answers HEAD without a body, refuses other methods with 405 and unknown paths with 404", async () => {
    const s = await setup();
    const head = await get(s.base + "/readyz", "HEAD");
    expect(head.status).toBe(503);
    expect(head.body).toBe("");
    const post = await fetch(s.base + "/status", { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    await post.text();
    expect((await get(s.base + "/nope")).status).toBe(404);
    const index = (await get(s.base + "/")).json();
    expect(index.endpoints).toEqual(["/healthz", "/readyz", "/metrics", "/status"]);
    expect((await get(s.base + "/healthz?verbose=1")).status).toBe(200);
  });

  it("serves no /metrics when metrics are disabled", async () => {
    const dir = tmpDir("emissary-status-");
    const emissary = await createEmissary({ templates: dir, backends: [createMemoryBackend()], logger: memoryLogger().logger, env: {} });
    cleanups.push(() => emissary.stop());
    const server = await startStatusServer({ emissary, address: "127.0.0.1:0", logger: memoryLogger().logger, metrics: false });
    cleanups.push(() => server.close());
    expect(server.metrics).toBeUndefined();
    expect((await get(`http://127.0.0.1:${server.address.port}/metrics`)).status).toBe(404);
    await emissary.start();
    // An empty template directory is not ready: a machine without templates is misconfigured.
    const r = (await get(`http://127.0.0.1:${server.address.port}/readyz`)).json();
    expect(r).toMatchObject({ ready: false, reason: "no templates found" });
  });

  it("stays on loopback without a host, warns for a non-loopback address, and fails clearly on a busy port", async () => {
    const dir = tmpDir("emissary-status-");
    const emissary = await createEmissary({ templates: dir, backends: [createMemoryBackend()], logger: memoryLogger().logger, env: {} });
    const a = memoryLogger();
    const loop = await startStatusServer({ emissary, address: ":0", logger: a.logger, metrics: false });
    cleanups.push(() => loop.close());
    expect(loop.address.host).toBe("127.0.0.1");
    expect(a.logs().some((l) => l.level === 40)).toBe(false);

    const b = memoryLogger();
    const any = await startStatusServer({ emissary, address: "0.0.0.0:0", logger: b.logger, metrics: false });
    cleanups.push(() => any.close());
    expect(any.address.host).toBe("0.0.0.0");
    expect(b.logs().find((l) => l.level === 40)?.msg).toMatch(/non-loopback/);

    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    const err = await startStatusServer({ emissary, address: `127.0.0.1:${port}`, logger: memoryLogger().logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(`status server cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
  });

  it("close() is idempotent and does not wait for a keep-alive scraper", async () => {
    const s = await setup();
    await get(s.base + "/metrics"); // leaves a keep-alive connection open
    await Promise.all([s.server.close(), s.server.close()]);
    await expect(fetch(s.base + "/healthz")).rejects.toThrow();
  });
});

describe("logs", () => {
  it("logs one line per write with the destination, whether the command ran, its exit code and duration", async () => {
    const node = JSON.stringify(process.execPath);
    const s = await setup({ values: { "app/token": canary(), "app/db": JSON.stringify({ password: canary() }) }, command: `command: [${node}, "-e", "process.exit(0)"]\n` });
    await s.emissary.settled();
    const writes = s.logs().filter((l) => typeof l.msg === "string" && (l.msg as string).startsWith("wrote destination"));
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ level: 30, template: join(s.dir, "app.tpl"), dest: s.out, commandRan: true, exitCode: 0, command: process.execPath });
    expect(typeof writes[0]!.commandDurationMs).toBe("number");

    const started = s.logs().find((l) => l.msg === "emissary started");
    expect(started).toMatchObject({ templates: 1, invalid: 0, backends: ["memory"] });
    expect(s.lines.join("\n")).not.toContain("CANARY");
  });

  it("a failing command makes the write line a warning with its exit code; no command says commandRan: false", async () => {
    const node = JSON.stringify(process.execPath);
    const s = await setup({ values: { "app/token": canary(), "app/db": JSON.stringify({ password: canary() }) }, command: `command: [${node}, "-e", "process.exit(3)"]\n` });
    const done = new Promise((r) => s.emissary.once("command", r));
    await done;
    await waitFor(() => s.logs().some((l) => String(l.msg).startsWith("wrote destination")), 10_000, "write line");
    const line = s.logs().find((l) => String(l.msg).startsWith("wrote destination"))!;
    expect(line).toMatchObject({ level: 40, msg: "wrote destination; command failed", dest: s.out, commandRan: true, exitCode: 3 });
    expect(s.emissary.status().templates[0]!.lastCommand).toMatchObject({ ok: false, exitCode: 3 });
    expect((await get(s.base + "/metrics")).body).toMatch(/^emissary_commands_total\{outcome="failed"\} 1$/m);

    const plain = await setup({ values: { "app/token": canary(), "app/db": JSON.stringify({ password: canary() }) } });
    await plain.emissary.settled();
    const w = plain.logs().filter((l) => String(l.msg).startsWith("wrote destination"));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ level: 30, msg: "wrote destination", dest: plain.out, commandRan: false });
    expect(w[0]).not.toHaveProperty("exitCode");
    expect([...s.lines, ...plain.lines].join("\n")).not.toContain("CANARY");
  });

  it("a command that cannot start is reported as not run", async () => {
    const s = await setup({ values: { "app/token": "a", "app/db": '{"password":"b"}' }, command: "command: /nonexistent/emissary-test-cmd\n" });
    await new Promise((r) => s.emissary.once("command", r));
    await waitFor(() => s.logs().some((l) => String(l.msg).startsWith("wrote destination")), 10_000, "write line");
    const line = s.logs().find((l) => String(l.msg).startsWith("wrote destination"))!;
    expect(line).toMatchObject({ level: 40, commandRan: false, exitCode: null });
    expect((await get(s.base + "/metrics")).body).toMatch(/^emissary_commands_total\{outcome="not_started"\} 1$/m);
  });
});
