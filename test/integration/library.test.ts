import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createEmissary, createMemoryBackend, silentLogger, type Emissary, type MemoryBackend } from "../../src/index.js";
import { tmpDir, waitFor } from "../helpers/e2e.js";

let current: Emissary | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

async function start(dir: string, mem: MemoryBackend, extra: Parameters<typeof createEmissary>[0] = {}): Promise<Emissary> {
  current = await createEmissary({ templates: dir, backends: [mem], logger: silentLogger(), env: {}, ...extra });
  await current.start();
  return current;
}

const tpl = (dest: string, body: string, extra = ""): string => `---\ndest: ${dest}\n${extra}---\n${body}`;

describe("library", () => {
  it("fetches each unique reference once however many templates use it, and emits render/write/command events", async () => {
    const dir = tmpDir();
    const mem = createMemoryBackend({ values: { db: '{"user":"app","password":"pw1"}' } });
    for (let i = 0; i < 10; i++) writeFileSync(join(dir, `t${i}.tpl`), tpl(join(dir, `out${i}`), "{{db.user}}={{pw}}\n", `command: /bin/true\nsecrets:\n  db: memory:db\n  pw: memory:db#password\n`));
    const events: string[] = [];
    current = await createEmissary({ templates: dir, backends: [mem], logger: silentLogger(), env: {} });
    current.on("render", () => events.push("render")).on("write", () => events.push("write")).on("command", () => events.push("command"));
    await current.start();
    const res = await current.settled();
    expect(res.ok).toBe(true);
    expect(mem.fetchCount).toBe(1);
    expect(readFileSync(join(dir, "out3"), "utf8")).toBe("app=pw1\n");
    expect(events.filter((e) => e === "write")).toHaveLength(10);
    // Ten templates with the same command, written in one pass: the command runs once, after every write.
    expect(events.filter((e) => e === "command")).toHaveLength(1);
    expect(events.lastIndexOf("write")).toBeLessThan(events.indexOf("command"));
  });

  it("runs identical commands once per pass after all writes, in template order, never overlapping", async () => {
    const dir = tmpDir();
    const log = join(dir, "log");
    const mem = createMemoryBackend({ values: { s: "v1" } });
    const cmd = (name: string): string => `command: ["/bin/sh", "-c", "echo start ${name} >> ${log}; ls ${dir} | grep -c '^out' >> ${log}; sleep 0.2; echo end ${name} >> ${log}"]\n`;
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "out-a"), "{{s}}\n", cmd("X") + "secrets: { s: memory:s }\n"));
    writeFileSync(join(dir, "b.tpl"), tpl(join(dir, "out-b"), "{{s}}\n", cmd("Y") + "secrets: { s: memory:s }\n"));
    writeFileSync(join(dir, "c.tpl"), tpl(join(dir, "out-c"), "{{s}}\n", cmd("X") + "secrets: { s: memory:s }\n"));
    const e = await start(dir, mem);
    await e.settled();
    // X (a and c dedupe) then Y, each after all three files were written, never interleaved.
    expect(readFileSync(log, "utf8").split("\n").filter(Boolean)).toEqual(["start X", "3", "end X", "start Y", "3", "end Y"]);
  });

  it("writes only on change of bytes or mode; no command without a write", async () => {
    const dir = tmpDir();
    const mem = createMemoryBackend({ values: { s: "v1" } });
    const out = join(dir, "out");
    writeFileSync(join(dir, "a.tpl"), tpl(out, "{{s}}\n", "mode: 0640\ncommand: /bin/true\nsecrets: { s: memory:s }\n"));
    const e = await start(dir, mem);
    let commands = 0;
    e.on("command", () => commands++);
    await e.settled();
    expect(statSync(out).mode & 0o777).toBe(0o640);
    const ino = statSync(out).ino;
    mem.set("s", "v1", "another-version"); // same bytes
    await new Promise((r) => setTimeout(r, 100));
    await e.settled();
    expect(statSync(out).ino).toBe(ino);
    mem.set("s", "v2");
    await waitFor(() => readFileSync(out, "utf8") === "v2\n");
    await e.settled();
    expect(commands).toBe(2); // first render and v2; the same-bytes update ran none
  });

  it("honours wait: first render at once, then one render after a burst settles", async () => {
    const dir = tmpDir();
    const mem = createMemoryBackend({ values: { s: "v0" } });
    const out = join(dir, "out");
    writeFileSync(join(dir, "a.tpl"), tpl(out, "{{s}}\n", "wait: { min: 300ms, max: 2s }\nsecrets: { s: memory:s }\n"));
    const e = await start(dir, mem);
    let writes = 0;
    e.on("write", () => writes++);
    await e.settled();
    expect(writes).toBe(1);
    for (let i = 1; i <= 5; i++) {
      mem.set("s", `v${i}`);
      await new Promise((r) => setTimeout(r, 30));
    }
    expect(readFileSync(out, "utf8")).toBe("v0\n"); // still quiet
    await waitFor(() => readFileSync(out, "utf8") === "v5\n", 5000, "quiescent render");
    await new Promise((r) => setTimeout(r, 400));
    expect(writes).toBe(2);
  });

  it("renders JSON secrets whole, by field, by pointer and as sections; escape json", async () => {
    const dir = tmpDir();
    const json = '{"ca":"-----BEGIN-----\\nabc","nested":{"k":"v\\"q"},"list":[{"n":1},{"n":2}]}';
    const mem = createMemoryBackend({ values: { tls: json } });
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a"), "{{tls}}|{{tls.nested.k}}|{{k}}|{{#tls.list}}[{{n}}]{{/tls.list}}\n", "secrets:\n  tls: memory:tls\n  k: memory:tls#/nested/k\n"));
    writeFileSync(join(dir, "b.tpl"), tpl(join(dir, "b"), '{"k": "{{k}}"}\n', "escape: json\nsecrets:\n  k: memory:tls#/nested/k\n"));
    const e = await start(dir, mem);
    expect((await e.settled()).ok).toBe(true);
    expect(readFileSync(join(dir, "a"), "utf8")).toBe(`${json}|v"q|v"q|[1][2]\n`);
    expect(JSON.parse(readFileSync(join(dir, "b"), "utf8"))).toEqual({ k: 'v"q' });
  });

  it("uses defaults instead of waiting, and waits on intentionally-empty", async () => {
    const dir = tmpDir();
    const mem = createMemoryBackend({ values: { e: "intentionally-empty" } });
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a"), "[{{x}}]\n", 'secrets:\n  x: { ref: "memory:missing", default: "" }\n'));
    writeFileSync(join(dir, "b.tpl"), tpl(join(dir, "b"), "{{e}}\n", "secrets: { e: memory:e }\n"));
    const e = await start(dir, mem);
    await waitFor(() => existsSync(join(dir, "a")));
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("[]\n");
    await waitFor(() => e.status().templates.find((t) => t.file.endsWith("b.tpl"))?.pending.length === 1);
    expect(e.status().templates.find((t) => t.file.endsWith("b.tpl"))).toMatchObject({ state: "pending", pending: ["memory:e"] });
    expect(existsSync(join(dir, "b"))).toBe(false);
    mem.set("e", "set-now");
    await waitFor(() => existsSync(join(dir, "b")));
  });

  it("reload keeps fetched values (no refetch), stop is idempotent, a bad template emits error without throwing", async () => {
    const dir = tmpDir();
    const mem = createMemoryBackend({ values: { s: "v1" } });
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a"), "{{s}}\n", "secrets: { s: memory:s }\n"));
    writeFileSync(join(dir, "bad.tpl"), "---\ndest: [\n---\n");
    const errors: string[] = [];
    current = await createEmissary({ templates: dir, backends: [mem], logger: silentLogger(), env: {} });
    current.on("error", (ev) => errors.push(ev.template ?? ""));
    await current.start();
    await current.settled();
    expect(errors).toEqual([join(dir, "bad.tpl")]);
    expect(mem.fetchCount).toBe(1);
    await current.reload();
    await current.settled();
    expect(mem.fetchCount).toBe(1);
    const e = current;
    await Promise.all([e.stop(), e.stop()]);
    await e.stop();
    expect(mem.watcherCount()).toBe(0);
  });

  it("loads a backend module by path (as --backend-module does)", async () => {
    const dir = tmpDir();
    const mod = join(dir, "const-backend.mjs");
    writeFileSync(mod, `export default () => ({ name: "const", async fetch(ref) { return { value: "const:" + ref.id }; } });\n`);
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a"), "{{x}}\n", "secrets: { x: const:hello }\n"));
    current = await createEmissary({ templates: dir, modules: [mod], logger: silentLogger(), env: {} });
    await current.start();
    expect((await current.settled()).ok).toBe(true);
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("const:hello\n");
  });
});
