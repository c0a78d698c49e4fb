/**
 * Destinations seen from the running daemon (SPEC "Behaviour": destinations):
 * - a FIFO at a destination is refused through the normal write-error path: that template is in
 *   error, its FIFO untouched, the other templates carry on;
 * - a setuid/setgid/sticky `mode` makes the template invalid, with file, line and field;
 * - a world-writable `mode` is warned about once per template;
 * - a second emissary starting on the same directory leaves the in-flight temp file of a live
 *   process alone and removes a dead one's;
 * - a config file or backend module others can write is warned about at start.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { pidNamespace } from "../../src/output/temp-files.js";

const daemons: Daemon[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const d of daemons.splice(0)) await d.stop();
});

function start(args: string[]): Daemon {
  const d = spawnEmissary(args);
  daemons.push(d);
  return d;
}

/** A template directory with one secret file; returns paths. */
function setup(): { dir: string; tpl: string; secret: string; value: string } {
  const dir = tmpDir("emissary-dest-e2e-");
  const tpl = join(dir, "tpl");
  mkdirSync(tpl);
  mkdirSync(join(dir, "out"));
  const secret = join(dir, "secret");
  const value = canary("dest");
  writeFileSync(secret, value);
  return { dir, tpl, secret, value };
}

function template(dest: string, secret: string, extra = ""): string {
  return `---\ndest: ${dest}\n${extra}secrets:\n  v: file:${secret}\n---\nv={{v}}\n`;
}

function rotate(secret: string, value: string): void {
  writeFileSync(secret + ".next", value);
  renameSync(secret + ".next", secret);
}

describe("destinations, end to end", () => {
  it("a FIFO at one destination: that template is in error and the FIFO untouched; the others carry on", async () => {
    const { dir, tpl, secret, value } = setup();
    const fifo = join(dir, "out", "pipe.conf");
    execFileSync("mkfifo", ["-m", "0600", fifo]);
    const good = join(dir, "out", "good.conf");
    writeFileSync(join(tpl, "a-fifo.tpl"), template(fifo, secret));
    writeFileSync(join(tpl, "b-good.tpl"), template(good, secret));
    const d = start(["run", "--templates", tpl]);
    const err = await d.waitForLog((l) => l.msg === "cannot write destination; the last good file stays", 15_000, "the write error");
    expect(err.template).toBe(join(tpl, "a-fifo.tpl"));
    expect(String((err.err as { message?: string }).message)).toContain(`${fifo}: it is a FIFO`);
    await waitFor(() => existsSync(good), 15_000, "the good template written");
    expect(readFileSync(good, "utf8")).toBe(`v=${value}\n`);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(d.proc.exitCode).toBeNull();
  });

  it("mode with a setuid bit: the template is invalid (file, line, field), the others carry on", async () => {
    const { dir, tpl, secret } = setup();
    const good = join(dir, "out", "good.conf");
    writeFileSync(join(tpl, "setuid.tpl"), template(join(dir, "out", "prog"), secret, "mode: 4755\n"));
    writeFileSync(join(tpl, "good.tpl"), template(good, secret));
    const d = start(["run", "--templates", tpl]);
    const bad = await d.waitForLog((l) => l.msg === "template is invalid; skipped (the other templates carry on)", 15_000, "the invalid template");
    const message = String((bad.err as { message?: string }).message);
    expect(message).toContain(`${join(tpl, "setuid.tpl")}:3:`);
    expect(message).toContain("mode: must not carry the setuid bit");
    await waitFor(() => existsSync(good), 15_000, "the good template written");
    expect(existsSync(join(dir, "out", "prog"))).toBe(false);
  });

  it("a world-writable mode is warned about once per template, however often it is written", async () => {
    const { dir, tpl, secret } = setup();
    const dest = join(dir, "out", "shared.conf");
    writeFileSync(join(tpl, "shared.tpl"), template(dest, secret, "mode: 0666\n"));
    const d = start(["run", "--templates", tpl]);
    for (let i = 1; i <= 3; i++) {
      const v = canary(`gen${i}`);
      rotate(secret, v);
      await waitFor(() => existsSync(dest) && readFileSync(dest, "utf8") === `v=${v}\n`, 15_000, `write ${i}`);
    }
    const warns = d.logs().filter((l) => l.level === 40 && String(l.msg).includes("every user"));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ dest, mode: "0666" });
    expect(lstatSync(dest).mode & 0o7777).toBe(0o666);
  });

  it("a second emissary on the same directory leaves a live process's in-flight temp file alone, removes a dead one's", async () => {
    const { dir, tpl, secret } = setup();
    const out = join(dir, "out");
    writeFileSync(join(tpl, "app.tpl"), template(join(out, "app.conf"), secret));
    // Stands in for the first emissary, mid-write.
    const first = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
    children.push(first);
    const ns = pidNamespace();
    const inFlight = `.app.conf.emissary-${first.pid}-${ns}-0123456789ab.tmp`;
    const inFlightOld = `.app.conf.emissary-${first.pid}-abcdefabcdef.tmp`; // an earlier version's name
    const dead = `.app.conf.emissary-9999999-${ns}-0123456789ab.tmp`;
    for (const n of [inFlight, inFlightOld, dead]) writeFileSync(join(out, n), "half a secret");
    const d = start(["run", "--templates", tpl]);
    await d.waitForLog((l) => l.msg === "emissary started", 15_000, "started");
    await waitFor(() => existsSync(join(out, "app.conf")), 15_000, "written");
    const left = readdirSync(out).sort();
    expect(left).toEqual(["app.conf", inFlightOld, inFlight].sort());
    expect(d.logs().some((l) => l.msg === "removed stale temporary files of an earlier run" && l.removed === 1)).toBe(true);
  });

  it("warns at start when others can write the config file or a backend module", async () => {
    const { dir, tpl, secret } = setup();
    writeFileSync(join(tpl, "app.tpl"), template(join(dir, "out", "app.conf"), secret));
    const config = join(dir, "emissary.yaml");
    writeFileSync(config, `templates: ${tpl}\n`);
    chmodSync(config, 0o666);
    const mod = join(dir, "mod.mjs");
    writeFileSync(mod, `export default { name: "mymod", async fetch() { return { value: "x" }; } };\n`);
    chmodSync(mod, 0o646);
    const d = start(["run", "--config", config, "--backend-module", mod]);
    await d.waitForLog((l) => l.msg === "emissary started", 15_000, "started");
    const warns = d.logs().filter((l) => l.level === 40 && String(l.msg).startsWith("others can write"));
    expect(warns.map((w) => [w.path, w.mode, w.writableBy])).toEqual([
      [config, "0666", "everyone"],
      [mod, "0646", "everyone"],
    ]);
    expect(String(warns[0]!.msg)).toContain("the config file");
    expect(String(warns[1]!.msg)).toContain("a backend module");
  });
});
