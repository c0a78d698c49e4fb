/**
 * Small descriptor limits. A minimal container or a systemd unit may give emissary 64 file
 * descriptors: it must start (Node's ESM loader opens every file of a module graph at once, and a
 * dependency with dozens of modules used to fail with EMFILE before main ran), and a local user
 * holding hundreds of idle connections to the status port must not take the descriptors the
 * daemon needs to read secrets and write files.
 */
import { writeFileSync, readFileSync, existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

const read = (f: string): string | undefined => (existsSync(f) ? readFileSync(f, "utf8") : undefined);

/** GET on the status server; undefined when the connection is refused or closed without an answer. */
async function get(port: number, path: string): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

describe("small descriptor limits", () => {
  let daemon: Daemon | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    const d = daemon;
    daemon = undefined;
    if (!d) return;
    try {
      expect((await d.stop()).code).toBe(0);
    } finally {
      if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill("SIGKILL");
    }
  });

  it("once starts and renders a file template under ulimit -n 64", async () => {
    const dir = tmpDir("emissary-nofile-");
    const value = canary("nofile");
    writeFileSync(join(dir, "s.json"), JSON.stringify({ v: value }));
    const dest = join(dir, "out.conf");
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${dest}\nsecrets:\n  v: file:s.json#v\n---\nv={{v}}\n`);
    const r = await runEmissary(["once", "--templates", dir], { nofile: 64 });
    expect(r.stderr).not.toContain("EMFILE");
    expect(r.code).toBe(0);
    expect(read(dest)).toBe(`v=${value}\n`);
  });

  it("600 idle connections to the status port under a 256 descriptor limit: a rotation is still written, no EMFILE", async () => {
    const dir = tmpDir("emissary-conns-");
    const secret = join(dir, "s");
    const v1 = canary("conn1");
    writeFileSync(secret, v1);
    const dest = join(dir, "out.conf");
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${dest}\nsecrets:\n  v: file:${secret}\n---\n{{v}}\n`);
    daemon = spawnEmissary(["run", "--templates", dir, "--status-addr", "127.0.0.1:0"], { nofile: 256 });
    const listening = await daemon.waitForLog((l) => l.msg === "status server listening", 15_000, "the status server");
    const port = Number(String(listening.address).split(":").pop());
    await waitFor(() => read(dest) === `${v1}\n`, 15_000, "first render");

    // Idle connections: connected, never a byte sent. The server may refuse or close some of them.
    await Promise.all(
      Array.from({ length: 600 }, () => {
        const s = connect(port, "127.0.0.1");
        sockets.push(s);
        s.on("error", () => undefined);
        return new Promise<void>((r) => {
          s.once("connect", () => r());
          s.once("close", () => r());
        });
      }),
    );
    const v2 = canary("conn2");
    writeFileSync(secret, v2);
    await waitFor(() => read(dest) === `${v2}\n`, 20_000, "the rotated value written while the idle connections are held");
    expect(daemon.lines.filter((l) => l.includes("EMFILE"))).toEqual([]);
    expect(daemon.proc.exitCode).toBeNull();
    // The idle connections time out: the status server answers again while they are still held open.
    await waitFor(async () => (await get(port, "/healthz")) === 200, 30_000, "/healthz answering again after the idle connections timed out");
  }, 90_000);
});
