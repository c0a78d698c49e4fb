/**
 * Every file emissary reads that someone else names — the config file, the http backend's URL
 * file, Vault's token file, AppRole id files and CA certificate, templates — goes through one
 * reader that refuses a FIFO, socket or device and reads up to a size limit. Opening a FIFO blocks
 * until a writer comes (a thread of libuv's pool stuck for good, and with four of them every file
 * operation of the daemon), `/dev/zero` never ends, and a 4 GiB file is read into memory: each
 * must be a clear error naming the path, and the daemon carries on with everything else.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { FakeVault } from "../fakes/vault-server.js";

const read = (f: string): string | undefined => (existsSync(f) ? readFileSync(f, "utf8") : undefined);

/** Runs `body` with the daemon; a daemon that froze (the bug) is killed so that it does not outlive the test. */
async function using(d: Daemon, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill("SIGKILL");
  }
}

function fifo(path: string): string {
  execFileSync("mkfifo", [path]);
  return path;
}

/** A directory with a template of a file secret (`ok.tpl`) that must render whatever else fails. */
function withFileTemplate(prefix: string): { dir: string; tpl: string; okOut: string; value: string } {
  const dir = tmpDir(prefix);
  const tpl = join(dir, "tpl");
  mkdirSync(tpl);
  const value = canary("ok");
  writeFileSync(join(dir, "ok-secret"), value);
  const okOut = join(dir, "ok.out");
  writeFileSync(join(tpl, "ok.tpl"), `---\ndest: ${okOut}\nsecrets:\n  v: file:${join(dir, "ok-secret")}\n---\n{{v}}\n`);
  return { dir, tpl, okOut, value };
}

/** True when a printed line names `path` and says it is not a regular file. */
const namesRefusal = (path: string) => (l: Record<string, unknown>) => {
  const text = JSON.stringify(l);
  return text.includes(path) && text.includes("not a regular file");
};

describe("a FIFO, a device or a huge file where emissary reads", () => {
  it("EMISSARY_INSECURE_URLFILE is a FIFO: an error naming it, other templates render, SIGTERM stops the daemon", async () => {
    const { dir, tpl, okOut, value } = withFileTemplate("emissary-urlfifo-");
    const urlFile = fifo(join(dir, "url"));
    writeFileSync(join(tpl, "legacy.tpl"), `---\ndest: ${join(dir, "legacy.out")}\n---\n{{poll "insecure" "consul_key"}}\n`);
    const d = spawnEmissary(["run", "--templates", tpl], { env: { EMISSARY_INSECURE_URLFILE: urlFile } });
    await using(d, async () => {
      await d.waitForLog(namesRefusal(urlFile), 15_000, "an error naming the FIFO");
      await waitFor(() => read(okOut) === `${value}\n`, 15_000, "the file template rendered");
      // Still responsive: a change of the other template's secret is written.
      const v2 = canary("ok2");
      writeFileSync(join(dir, "ok-secret"), v2);
      await waitFor(() => read(okOut) === `${v2}\n`, 15_000, "a rotation written while the URL file is a FIFO");
      expect(existsSync(join(dir, "legacy.out"))).toBe(false);
      expect((await d.stop()).code).toBe(0);
    });
  });

  it("--config is a FIFO, /dev/zero or a 4 GiB file: a config error (exit 2) naming it, at once", async () => {
    const dir = tmpDir("emissary-cfgfifo-");
    const big = join(dir, "big.yml");
    writeFileSync(big, "");
    truncateSync(big, 4 * 1024 ** 3); // sparse: no disk used, but 4 GiB to whoever reads it all
    for (const [path, reason] of [
      [fifo(join(dir, "config.yml")), /not a regular file/],
      ["/dev/zero", /not a regular file/],
      [big, /larger than \d+ bytes/],
    ] as const) {
      const r = await runEmissary(["once", "--templates", dir, "--config", path], { timeoutMs: 15_000 });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(path);
      expect(r.stderr).toMatch(reason);
    }
  });

  it("render FILE is a FIFO, and a template file is larger than the limit: clear errors, the other templates carry on", async () => {
    const { dir, tpl, okOut, value } = withFileTemplate("emissary-tplfifo-");
    const f = fifo(join(dir, "fifo.tpl"));
    const r = await runEmissary(["render", f], { timeoutMs: 15_000, stdoutIsLog: false });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(f);
    expect(r.stderr).toMatch(/not a regular file/);

    writeFileSync(join(tpl, "huge.tpl"), `---\ndest: ${join(dir, "huge.out")}\n---\n${"x".repeat(2 * 1024 * 1024)}\n`);
    const o = await runEmissary(["once", "--templates", tpl, "--timeout", "20s"]);
    expect(o.code).toBe(1);
    expect(o.stderr).toContain(join(tpl, "huge.tpl"));
    expect(o.stderr).toMatch(/larger than \d+ bytes/);
    expect(read(okOut)).toBe(`${value}\n`);
    expect(existsSync(join(dir, "huge.out"))).toBe(false);
  });

  describe("Vault files", () => {
    let fake: FakeVault;
    beforeAll(async () => {
      fake = await FakeVault.start();
      fake.mount("secret", "kv", { version: 2 });
      fake.kvPut("secret/app", { password: canary("vaultpw") });
    });
    afterAll(async () => {
      await fake?.close();
    });

    for (const which of ["token_file", "role_id_file", "ca_cert"] as const) {
      it(`${which} is a FIFO: an error naming it, the daemon carries on`, async () => {
        const { dir, tpl, okOut, value } = withFileTemplate(`emissary-vault-${which}-`);
        const path = fifo(join(dir, which));
        writeFileSync(join(dir, "secret_id"), canary("secretid"));
        writeFileSync(join(tpl, "vault.tpl"), `---\ndest: ${join(dir, "vault.out")}\nsecrets:\n  pw: vault:secret/app#password\n---\n{{pw}}\n`);
        const vault =
          which === "token_file"
            ? `address: ${fake.url}\n    auth: { method: token_file, path: ${path} }`
            : which === "role_id_file"
              ? `address: ${fake.url}\n    auth: { method: approle, role_id_file: ${path}, secret_id_file: ${join(dir, "secret_id")} }`
              : // The CA is read before the first request to an https address.
                `address: https://127.0.0.1:9\n    ca_cert: ${path}\n    auth: { method: token, token: ${canary("tok")} }`;
        const config = join(dir, "config.yml");
        writeFileSync(config, `defaults: { retry: 200ms }\nbackends:\n  vault:\n    ${vault}\n`);
        const d = spawnEmissary(["run", "--templates", tpl, "--config", config]);
        await using(d, async () => {
          await d.waitForLog(namesRefusal(path), 15_000, `an error naming the ${which} FIFO`);
          await waitFor(() => read(okOut) === `${value}\n`, 15_000, "the file template rendered");
          const v2 = canary("ok2");
          writeFileSync(join(dir, "ok-secret"), v2);
          await waitFor(() => read(okOut) === `${v2}\n`, 15_000, "a rotation written meanwhile");
          expect(existsSync(join(dir, "vault.out"))).toBe(false);
          expect((await d.stop()).code).toBe(0);
        });
      });
    }
  });
});
