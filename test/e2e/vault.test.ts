/**
 * The built `emissary` daemon with vault references against the fake Vault: AppRole login from
 * files, KV v2 rendering and rotation on refresh, a pinned KV version, dynamic credentials whose
 * lease is renewed and then replaced, a revoked token re-logged without re-rendering anything,
 * `emissary once` with VAULT_TOKEN and a namespace, and a token file whose new token is picked up
 * within seconds while a reference is refused. Every planted value, the token and the secret_id
 * contain CANARY; all daemon output is scanned for it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { FakeVault } from "../fakes/vault-server.js";

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
function runs(file: string): string[] {
  return (read(file) ?? "").split("\n").filter(Boolean);
}

describe("e2e: vault", () => {
  let fake: FakeVault;
  let daemon: Daemon | undefined;

  beforeAll(async () => {
    fake = await FakeVault.start();
  });
  afterEach(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
      expect(daemon.lines.join("\n")).not.toContain("CANARY");
    }
    daemon = undefined;
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("AppRole from files; KV v2 rendered and rotated; leases renewed then replaced; a revoked token re-logged", async () => {
    fake.mount("secret", "kv", { version: 2 });
    fake.mount("database", "database");
    const tok1 = canary("nomadtok1");
    fake.kvPut("secret/nomad", { token: tok1, gossip: canary("gossip") });
    fake.dbRole("database", "app", { ttl: 4, maxTtl: 14, renewable: true, password: () => canary("dbpw") });
    const roleId = canary("roleid");
    const secretId = canary("secretid");
    fake.addAppRole({ roleId, secretId, policies: ["secret/*", "database/*"], tokenTtl: 0 });

    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    writeFileSync(join(dir, "role_id"), roleId + "\n");
    writeFileSync(join(dir, "secret_id"), secretId + "\n");
    const nomadOut = join(dir, "out", "nomad.hcl");
    const pinnedOut = join(dir, "out", "pinned.txt");
    const dbOut = join(dir, "out", "db.env");
    const runLog = join(dir, "runs.log");

    writeFileSync(
      join(tpl, "nomad.tpl"),
      `---
dest: ${nomadOut}
refresh: 300ms
command: ["/bin/sh", "-c", "echo nomad >> ${runLog}"]
secrets:
  token: vault:secret/nomad#token
  gossip: vault:secret/nomad#gossip
---
consul { token = "{{token}}" }
encrypt = "{{gossip}}"
`,
    );
    writeFileSync(
      join(tpl, "pinned.tpl"),
      `---
dest: ${pinnedOut}
refresh: 300ms
secrets:
  first:
    ref: vault:secret/nomad#token
    version: 1
---
{{first}}
`,
    );
    writeFileSync(
      join(tpl, "db.tpl"),
      `---
dest: ${dbOut}
command: ["/bin/sh", "-c", "echo db >> ${runLog}"]
secrets:
  user: vault:database/creds/app#username
  pw: vault:database/creds/app#password
---
DB_USER={{user}}
DB_PASSWORD={{pw}}
`,
    );
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      `defaults: { retry: 200ms }
backends:
  vault:
    address: ${fake.url}
    auth: { method: approle, role_id_file: ${join(dir, "role_id")}, secret_id_file: ${join(dir, "secret_id")} }
`,
    );

    daemon = spawnEmissary(["run", "--templates", tpl, "--config", config, "--log-level", "debug"], { env: { VAULT_TOKEN: canary("unused") } });
    const d = daemon;

    await waitFor(() => read(nomadOut) !== undefined && read(pinnedOut) !== undefined && read(dbOut) !== undefined, 20_000, "all rendered");
    expect(read(nomadOut)).toMatch(new RegExp(`^consul \\{ token = "${tok1}" \\}\\nencrypt = "gossip-CANARY-[0-9a-f]{12}"\\n$`));
    expect(read(pinnedOut)).toBe(`${tok1}\n`);
    const firstUser = /DB_USER=(\S+)/.exec(read(dbOut)!)![1]!;
    expect(fake.count((c) => c.path === "auth/approle/login")).toBe(1);

    // Rotation: a new KV version is picked up at the next refresh; the pinned version stays.
    const tok2 = canary("nomadtok2");
    fake.kvPut("secret/nomad", { token: tok2, gossip: "g2" });
    await waitFor(() => read(nomadOut) === `consul { token = "${tok2}" }\nencrypt = "g2"\n`, 20_000, "nomad re-rendered");
    await waitFor(() => runs(runLog).filter((l) => l === "nomad").length === 2, 10_000, "nomad command again");
    expect(read(pinnedOut)).toBe(`${tok1}\n`);

    // The lease (4s, max 14s) is renewed, then new credentials are rendered before it runs out.
    await waitFor(() => fake.count((c) => c.path === "sys/leases/renew" && c.status === 200) >= 1, 20_000, "a lease renewal");
    await waitFor(() => !read(dbOut)!.includes(firstUser), 30_000, "new database credentials");
    expect(fake.leaseLeft(firstUser)).toBeGreaterThan(0);
    await waitFor(() => runs(runLog).filter((l) => l === "db").length >= 2, 10_000, "db command again");

    // The token is revoked: the next fetch logs in again; nothing is re-rendered for it.
    const nomadRuns = runs(runLog).filter((l) => l === "nomad").length;
    fake.revokeLoginTokens();
    await waitFor(() => fake.count((c) => c.path === "auth/approle/login") >= 2, 20_000, "a second login");
    const tok3 = canary("nomadtok3");
    fake.kvPut("secret/nomad", { token: tok3, gossip: "g2" });
    await waitFor(() => read(nomadOut)?.includes(tok3) === true, 20_000, "rendered with the new token");
    await waitFor(() => runs(runLog).filter((l) => l === "nomad").length === nomadRuns + 1, 10_000, "one more nomad command");
    expect(d.logs().some((l) => l.msg === "vault: the token was revoked or has expired; logging in again")).toBe(true);
  }, 120_000);

  it("`emissary once` with VAULT_TOKEN and VAULT_NAMESPACE reads KV v1 and exits 0", async () => {
    fake.mount("kv", "kv", { version: 1, namespace: "ops" });
    const pw = canary("oncepw");
    fake.kvPut("ops/kv/app", { password: pw });
    const token = fake.createToken({ id: canary("token"), policies: ["ops/kv/*"] });
    const dir = tmpDir();
    const out = join(dir, "app.conf");
    writeFileSync(join(dir, "app.tpl"), `---\ndest: ${out}\nsecrets:\n  pw: vault:kv/app#password\n---\npassword={{pw}}\n`);
    const r = await runEmissary(["once", "--templates", dir, "--timeout", "20s"], { env: { VAULT_ADDR: fake.url, VAULT_TOKEN: token, VAULT_NAMESPACE: "ops", VAULT_SKIP_VERIFY: "false" } });
    expect(r.lines.join("\n")).not.toContain("CANARY");
    expect(r.code).toBe(0);
    expect(read(out)).toBe(`password=${pw}\n`);
    expect(fake.calls.filter((c) => c.path === "kv/app").every((c) => c.namespace === "ops")).toBe(true);
  }, 60_000);

  it("token_file: a reference refused under a stale token is rendered within seconds of the agent writing a new one, not at the 5-minute cap", async () => {
    fake.mount("agentkv", "kv", { version: 2 });
    const pw = canary("agentpw");
    fake.kvPut("agentkv/app", { pw });
    const dir = tmpDir();
    const tokenFile = join(dir, "agent-token");
    writeFileSync(tokenFile, canary("staletoken") + "\n");
    const out = join(dir, "app.txt");
    writeFileSync(join(dir, "app.tpl"), `---\ndest: ${out}\nsecrets:\n  pw: vault:agentkv/app#pw\n---\n{{pw}}\n`);
    const config = join(dir, "config.yml");
    writeFileSync(config, `backends:\n  vault:\n    address: ${fake.url}\n    auth: { method: token_file, path: ${tokenFile} }\n`);
    daemon = spawnEmissary(["run", "--templates", dir, "--config", config], {});
    await daemon.waitForLog((l) => l.level === 50 && JSON.stringify(l).includes("agentkv/app"), 20_000, "the refused reference");
    expect(read(out)).toBeUndefined();
    // The Vault Agent renews its sink with a good token.
    writeFileSync(tokenFile, fake.createToken({ id: canary("agenttoken"), name: "agent" }) + "\n");
    await waitFor(() => read(out) === `${pw}\n`, 30_000, "rendered with the new token");
    expect(daemon.logs().some((l) => l.msg === "vault: the token file changed; using the new token")).toBe(true);
  }, 60_000);

  it("a permission error names the path in the log and the daemon keeps running", async () => {
    fake.mount("locked", "kv", { version: 2 });
    fake.kvPut("locked/app", { a: canary("locked") });
    const token = fake.createToken({ id: canary("token"), policies: ["kv/*"] });
    const dir = tmpDir();
    writeFileSync(join(dir, "locked.tpl"), `---\ndest: ${join(dir, "locked.txt")}\nsecrets:\n  a: vault:locked/app#a\n---\n{{a}}\n`);
    daemon = spawnEmissary(["run", "--templates", dir], { env: { VAULT_ADDR: fake.url, VAULT_TOKEN: token } });
    const line = await daemon.waitForLog((l) => l.level === 50 && JSON.stringify(l).includes("locked/app"), 20_000, "permission error");
    expect(JSON.stringify(line)).toMatch(/permission denied/);
    expect(read(join(dir, "locked.txt"))).toBeUndefined();
    expect(daemon.proc.exitCode).toBeNull();
  }, 60_000);
});
