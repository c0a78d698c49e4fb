/**
 * A SIGHUP storm (a config-management run signalling in a loop, a supervisor's restart storm):
 * 100 SIGHUPs 1 ms apart. Reloads must coalesce into whole reloads that never overlap, so the
 * daemon stays up and ready, and afterwards a secret rotation and a template edit both take
 * effect — templates are not left bound to a closed backend registry or a stopped scheduler. And a
 * secret changed while a reload replaces the file watches is not lost (the new watch starts from
 * the value held, not from what it first sees).
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor } from "../helpers/e2e.js";

const read = (f: string): string | undefined => (existsSync(f) ? readFileSync(f, "utf8") : undefined);

async function status(port: number, path: string): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

describe("SIGHUP storm", () => {
  it("100 SIGHUPs 1 ms apart: the daemon stays up and ready, then a rotation and a template edit both land; changes during reloads land", async () => {
    const dir = tmpDir("emissary-hupstorm-");
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const secret = join(dir, "s");
    const other = join(dir, "o");
    const v1 = canary("hup1");
    writeFileSync(secret, v1);
    writeFileSync(other, canary("other"));
    const out = join(dir, "a.out");
    const outB = join(dir, "b.out");
    const writeTpl = (prefix: string): void => writeFileSync(join(tpl, "a.tpl"), `---\ndest: ${out}\nsecrets:\n  v: file:${secret}\n---\n${prefix}={{v}}\n`);
    writeTpl("a");
    writeFileSync(join(tpl, "b.tpl"), `---\ndest: ${outB}\nsecrets:\n  o: file:${other}\n---\n{{o}}\n`);
    const config = join(dir, "config.yml");
    writeFileSync(config, "defaults: { mode: '0600' }\n");
    const d = spawnEmissary(["run", "--templates", tpl, "--config", config, "--status-addr", "127.0.0.1:0"]);
    try {
      const listening = await d.waitForLog((l) => l.msg === "status server listening", 15_000, "the status server");
      const port = Number(String(listening.address).split(":").pop());
      await waitFor(async () => (await status(port, "/readyz")) === 200, 15_000, "ready before the storm");

      for (let i = 0; i < 100; i++) {
        d.proc.kill("SIGHUP");
        await new Promise((r) => setTimeout(r, 1));
      }
      await d.waitForLog((l) => l.msg === "reloading configuration and templates", 15_000, "a reload");
      expect(d.proc.exitCode).toBeNull();
      await waitFor(async () => (await status(port, "/readyz")) === 200 && (await status(port, "/healthz")) === 200, 20_000, "/readyz and /healthz 200 after the storm");

      const v2 = canary("hup2");
      writeFileSync(secret, v2);
      await waitFor(() => read(out) === `a=${v2}\n`, 20_000, "the rotated secret written after the storm");
      writeTpl("edited");
      await waitFor(() => read(out) === `edited=${v2}\n`, 20_000, "the edited template written after the storm");
      // A secret changed while a reload replaces the watches is not lost: each change lands.
      for (let i = 3; i < 13; i++) {
        const v = canary(`hup${i}`);
        d.proc.kill("SIGHUP");
        writeFileSync(secret, v);
        await waitFor(() => read(out) === `edited=${v}\n`, 20_000, `change ${i}, made during a reload, written`);
      }
      expect(d.lines.filter((l) => /internal error|uncaught|unhandled/i.test(l))).toEqual([]);
      expect(d.proc.exitCode).toBeNull();
      expect((await d.stop()).code).toBe(0);
    } finally {
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill("SIGKILL");
    }
  }, 90_000);
});
