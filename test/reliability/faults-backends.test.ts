/**
 * Backend fault injection through the built daemon. One `emissary run` renders four templates:
 * one each from the http secret server, the fake Vault and the fake Secrets Manager — each
 * reached through a fault-injecting proxy — and a control template from a local file.
 *
 * For every fault (hanging, 500, 429 with Retry-After, connection reset, refused, flapping, and
 * slow) the three remote backends misbehave at once while their values rotate upstream; then
 * the fault clears. What a user would notice is asserted:
 * - each destination keeps the last good, complete content while its backend is failing;
 * - the control template keeps following its secret (the others are unaffected);
 * - a warning names the failing reference (never its value) for each backend;
 * - the daemon stays alive, and every destination catches up once the backend recovers.
 *
 * And a server that streams a body without end (chunked, no length) is cut off at the size limit
 * instead of filling the daemon's memory.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { startHttpSecrets, type HttpSecrets } from "../helpers/http-secrets.js";
import { DUMMY_AWS_ENV } from "../helpers/moto.js";
import { FakeSecretsManager } from "../fakes/aws-secretsmanager.js";
import { FakeVault } from "../fakes/vault-server.js";
import { startFaultProxy, type FaultMode, type FaultProxy } from "./helpers/fault-proxy.js";

type Remote = "http" | "vault" | "awssm";
const REMOTES: readonly Remote[] = ["http", "vault", "awssm"];
const REF: Record<Remote, string> = { http: "http:rel/app", vault: "vault:secret/rel#password", awssm: "awssm:rel/app" };

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

describe("backend faults: the daemon keeps the last good files and recovers", () => {
  let dir: string;
  let http: HttpSecrets;
  let vault: FakeVault;
  let aws: FakeSecretsManager;
  const proxy = {} as Record<Remote, FaultProxy>;
  let daemon: Daemon | undefined;
  const out = (name: string): string => join(dir, "out", `${name}.txt`);
  const value = {} as Record<Remote | "control", string>;
  let generation = 0;

  /** Puts a new value upstream (not yet visible through a failing proxy). */
  function rotate(r: Remote | "control"): void {
    const v = canary(`${r}${++generation}`);
    value[r] = v;
    if (r === "http") http.values.set("rel/app", v);
    else if (r === "vault") vault.kvPut("secret/rel", { password: v });
    else if (r === "awssm") aws.put("rel/app", v);
    else writeFileSync(join(dir, "secrets", "control"), v);
  }

  beforeAll(async () => {
    dir = tmpDir("emissary-faults-");
    mkdirSync(join(dir, "tpl"));
    mkdirSync(join(dir, "secrets"));
    http = await startHttpSecrets();
    vault = await FakeVault.start();
    vault.mount("secret", "kv", { version: 2 });
    const token = vault.createToken({ name: "emissary", policies: ["root"] });
    aws = await FakeSecretsManager.start({ region: "eu-west-1" });
    proxy.http = await startFaultProxy(http.url);
    proxy.vault = await startFaultProxy(vault.url);
    proxy.awssm = await startFaultProxy(aws.endpoint);
    for (const r of [...REMOTES, "control"] as const) rotate(r);

    // Short timeouts and intervals so each fault shows and clears within seconds.
    writeFileSync(
      join(dir, "emissary.yaml"),
      `defaults: { retry: 1s }
backends:
  http: { url: "${proxy.http.url}", timeout: 1s }
  vault: { address: "${proxy.vault.url}", timeout: 1s }
  awssm: { region: eu-west-1, endpoint: "${proxy.awssm.url}", request_timeout: 1s, max_attempts: 1 }
`,
    );
    for (const r of REMOTES) {
      writeFileSync(join(dir, "tpl", `${r}.tpl`), `---\ndest: ${out(r)}\nrefresh: 1s\nsecrets:\n  v: ${REF[r]}\n---\n{{v}}\n`);
    }
    writeFileSync(join(dir, "tpl", "control.tpl"), `---\ndest: ${out("control")}\nsecrets:\n  v: file:../secrets/control\n---\n{{v}}\n`);
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl"), "--config", join(dir, "emissary.yaml")], {
      env: { ...DUMMY_AWS_ENV, VAULT_TOKEN: token },
    });
    await waitFor(() => [...REMOTES, "control" as const].every((r) => read(out(r)) === `${value[r]}\n`), 30_000, "first render of every template");
  });

  afterAll(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
      expect(daemon.lines.join("\n")).not.toContain("CANARY");
    }
    for (const p of Object.values(proxy)) await p.close();
    await http?.close();
    await vault?.close();
    await aws?.close();
  });

  /** Warnings about failed fetches of `r` logged after line `from`. */
  function failures(r: Remote, from: number): Record<string, unknown>[] {
    return daemon!
      .logs()
      .slice(from)
      .filter((l) => l.ref === REF[r] && (l.level === 40 || l.level === 50));
  }

  const faults: { name: string; mode: FaultMode }[] = [
    { name: "hanging (no answer until the request timeout)", mode: { kind: "hang" } },
    { name: "500 Internal Server Error", mode: { kind: "status", status: 500 } },
    { name: "429 Too Many Requests with Retry-After", mode: { kind: "status", status: 429, retryAfterS: 1 } },
    { name: "connection reset", mode: { kind: "reset" } },
    { name: "down (connection refused)", mode: { kind: "refused" } },
    { name: "flapping (at random: ok, 500 or reset)", mode: { kind: "flap" } },
  ];

  for (const { name, mode } of faults) {
    it(`${name}: last good file kept, others unaffected, a warning per backend, recovery`, async () => {
      const from = daemon!.logs().length;
      const good = Object.fromEntries(REMOTES.map((r) => [r, value[r]])) as Record<Remote, string>;
      for (const r of REMOTES) await proxy[r].setMode(mode);
      for (const r of REMOTES) rotate(r);

      if (mode.kind !== "flap") {
        // Every backend reports the failure, naming the reference.
        await waitFor(() => REMOTES.every((r) => failures(r, from).length > 0), 30_000, `a failure logged for each backend (${name})`);
        for (const r of REMOTES) {
          const line = failures(r, from)[0]!;
          expect(line.ref).toBe(REF[r]);
          expect(JSON.stringify(line)).not.toContain("CANARY");
          expect(read(out(r)), `${r} keeps its last good file while failing`).toBe(`${good[r]}\n`);
        }
        // The other templates carry on: the control secret rotates and is rendered.
        rotate("control");
        await waitFor(() => read(out("control")) === `${value.control}\n`, 15_000, "control template follows its secret during the fault");
        for (const r of REMOTES) expect(read(out(r)), `${r} still holds the last good file`).toBe(`${good[r]}\n`);
      } else {
        // While the backends flap, values get through between failures; whatever a destination
        // holds at any moment is one complete value. (Waiting for them to catch up during the
        // flapping would be a lottery: each failure doubles the backoff.)
        const seen = new Set<string>();
        const end = Date.now() + 6_000;
        let rotated = false;
        while (Date.now() < end) {
          for (const r of REMOTES) seen.add(`${r}:${read(out(r))}`);
          if (!rotated && end - Date.now() < 3_000) {
            for (const r of REMOTES) rotate(r);
            rotated = true;
          }
          await new Promise((res) => setTimeout(res, 10));
        }
        for (const s of seen) expect(s).toMatch(/^(http|vault|awssm):[a-z]+\d+-CANARY-[0-9a-f]{12}\n$/);
        expect(REMOTES.some((r) => failures(r, from).length > 0), "the flapping was noticed").toBe(true);
      }

      expect(daemon!.proc.exitCode, "the daemon is still running").toBeNull();
      for (const r of REMOTES) await proxy[r].setMode({ kind: "pass" });
      // The longest backoff a few seconds of faults can build up is well under this.
      await waitFor(() => REMOTES.every((r) => read(out(r)) === `${value[r]}\n`), 60_000, `every destination catches up after ${name}`);
    }, 120_000);
  }

  it("a slow backend (answers within its timeout) is waited for, not treated as failed", async () => {
    const from = daemon!.logs().length;
    for (const r of REMOTES) await proxy[r].setMode({ kind: "slow", delayMs: 400 });
    for (const r of REMOTES) rotate(r);
    await waitFor(() => REMOTES.every((r) => read(out(r)) === `${value[r]}\n`), 30_000, "slow backends still deliver");
    for (const r of REMOTES) expect(failures(r, from), `${r}: no failure logged for a slow answer`).toEqual([]);
    for (const r of REMOTES) await proxy[r].setMode({ kind: "pass" });
  }, 60_000);

  it("leaves no temporary files behind", () => {
    expect(readdirSync(join(dir, "out")).sort()).toEqual(["awssm.txt", "control.txt", "http.txt", "vault.txt"]);
  });
});

describe("an http server streaming a body without end", () => {
  it("is cut off at the size limit with a clear error; memory stays bounded; the other template carries on", async () => {
    const chunk = Buffer.alloc(1 << 20, "x");
    const server = createServer((req, res) => {
      if (req.url === "/small") return void res.writeHead(200).end("small-value");
      res.writeHead(200, { "content-type": "text/plain" }); // no content-length: chunked
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on("drain", pump);
      req.on("close", () => res.destroy());
      pump();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = tmpDir("emissary-bigbody-");
    mkdirSync(join(dir, "tpl"));
    for (const [name, id] of [["endless", "endless"], ["small", "small"]]) {
      writeFileSync(join(dir, "tpl", `${name}.tpl`), `---\ndest: ${join(dir, "out", `${name}.txt`)}\nsecrets:\n  v: http:${id}\n---\n{{v}}\n`);
    }
    const d = spawnEmissary(["run", "--templates", join(dir, "tpl")], { env: { EMISSARY_HTTP_URL: url } });
    try {
      const line = await d.waitForLog((l) => l.ref === "http:endless" && l.level === 50, 30_000, "the oversized body refused");
      expect(JSON.stringify(line.err)).toContain("larger than 16777216 bytes");
      await waitFor(() => read(join(dir, "out", "small.txt")) === "small-value\n", 15_000, "the other template");
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.proc.pid}/status`, "utf8"))![1]) / 1024;
      expect(rss, "RSS in MiB").toBeLessThan(400);
      expect(existsSync(join(dir, "out", "endless.txt"))).toBe(false);
      expect(d.proc.exitCode).toBeNull();
    } finally {
      expect((await d.stop()).code).toBe(0);
      server.closeAllConnections();
      server.close();
    }
  }, 60_000);
});

describe("backends down when the daemon starts (boot before the network)", () => {
  it("the templates wait without touching their destinations, then render once the backends answer", async () => {
    const http = await startHttpSecrets({ "boot/key": canary("boot") });
    const proxy = await startFaultProxy(http.url);
    await proxy.setMode({ kind: "refused" });
    const dir = tmpDir("emissary-boot-");
    mkdirSync(join(dir, "tpl"));
    const dest = join(dir, "out", "boot.txt");
    writeFileSync(join(dir, "tpl", "boot.tpl"), `---\ndest: ${dest}\nsecrets:\n  v: http:boot/key\n---\n{{v}}\n`);
    const d = spawnEmissary(["run", "--templates", join(dir, "tpl")], { env: { EMISSARY_HTTP_URL: proxy.url } });
    try {
      await d.waitForLog((l) => l.ref === "http:boot/key" && l.msg === "fetching secret failed; backing off", 20_000, "the refused fetch");
      expect(existsSync(dest)).toBe(false);
      await proxy.setMode({ kind: "pass" });
      await waitFor(() => read(dest) === `${http.values.get("boot/key")}\n`, 30_000, "rendered once the backend answers");
      expect(d.proc.exitCode).toBeNull();
    } finally {
      expect((await d.stop()).code).toBe(0);
      await proxy.close();
      await http.close();
    }
  }, 60_000);
});
