/**
 * The vault backend against the fake answering as a real server (OpenBao, Vault) does:
 *
 * - Two mounts whose paths end alike: `team/legacy1/` (KV v2, the namespace `team` written in the
 *   path) and the root mount `legacy1/` (KV v1). Once the first is known, `vault:legacy1/app` must
 *   still be read from `legacy1/` as KV v1 — not as `legacy1/data/app` (which "disappears"). The
 *   same with the namespace in the config (`X-Vault-Namespace`) and a child namespace in the path.
 * - A token renewed in its last second: the server answers 500 "past the max TTL, cannot renew"
 *   while the token still works. That means "the token is ending": log in again at once (or say
 *   that a new token is needed), not a transient failure retried on a dying token.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canary } from "../helpers/canary.js";
import { waitFor } from "../helpers/e2e.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, fetchVault, field, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import type { VaultBackend } from "../../backends/vault.js";
import { MountCache } from "../../backends/vault/mounts.js";

let fake: FakeVault;
let log: CapturedLog;
const backends: VaultBackend[] = [];
const logs: CapturedLog[] = [];

function make(opts: Parameters<typeof vaultBackend>[1] = {}): VaultBackend {
  const b = vaultBackend(log, { address: fake.url, ...opts });
  backends.push(b);
  return b;
}

beforeEach(async () => {
  fake = await FakeVault.start();
  log = captureLog();
  logs.push(log);
});
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  await fake.close();
});
afterAll(() => {
  for (const l of logs) l.flush("mounts");
  expect(leakText({ ...logs[0]!, lines: logs.flatMap((l) => l.lines) }, [])).not.toContain("CANARY");
});

const reads = (): string[] => fake.calls.filter((c) => c.method === "GET" && !c.path.startsWith("sys/") && !c.path.startsWith("auth/")).map((c) => c.path);

describe("mounts whose paths end alike", () => {
  it("team/legacy1/ (KV v2, namespace in the path) cached first: vault:legacy1/app is still read from the KV v1 mount legacy1/", async () => {
    fake.mount("legacy1", "kv", { version: 2, namespace: "team" });
    fake.mount("legacy1", "kv", { version: 1 });
    const inTeam = canary("team");
    const inRoot = canary("root");
    fake.kvPut("team/legacy1/app", { v: inTeam });
    fake.kvPut("legacy1/app", { v: inRoot });
    const b = make({ env: { VAULT_TOKEN: fake.createToken({ id: canary("tok") }) } });
    expect(field(await fetchVault(b, "team/legacy1/app"), "vault:x#v")).toBe(inTeam);
    expect(field(await fetchVault(b, "legacy1/app"), "vault:x#v")).toBe(inRoot);
    // And again, from the cache this time: each path stays on its own mount.
    expect(field(await fetchVault(b, "team/legacy1/app"), "vault:x#v")).toBe(inTeam);
    expect(field(await fetchVault(b, "legacy1/app"), "vault:x#v")).toBe(inRoot);
    expect(reads()).toEqual(["team/legacy1/data/app", "legacy1/app", "team/legacy1/data/app", "legacy1/app"]);
  });

  it("the other order: legacy1/ (KV v1) cached first does not capture team/legacy1/", async () => {
    fake.mount("legacy1", "kv", { version: 2, namespace: "team" });
    fake.mount("legacy1", "kv", { version: 1 });
    fake.kvPut("team/legacy1/app", { v: "team" });
    fake.kvPut("legacy1/app", { v: "root" });
    const b = make({ env: { VAULT_TOKEN: fake.createToken() } });
    expect(field(await fetchVault(b, "legacy1/app"), "vault:x#v")).toBe("root");
    expect(field(await fetchVault(b, "team/legacy1/app"), "vault:x#v")).toBe("team");
    expect(reads()).toEqual(["legacy1/app", "team/legacy1/data/app"]);
  });

  it("with namespace: team in the config, a child namespace in the path (sub/legacy1/, KV v2) does not capture legacy1/ (KV v1)", async () => {
    fake.mount("legacy1", "kv", { version: 2, namespace: "team/sub" });
    fake.mount("legacy1", "kv", { version: 1, namespace: "team" });
    fake.kvPut("team/sub/legacy1/app", { v: "child" });
    fake.kvPut("team/legacy1/app", { v: "team" });
    const b = make({ config: { namespace: "team" }, env: { VAULT_TOKEN: fake.createToken() } });
    expect(field(await fetchVault(b, "sub/legacy1/app"), "vault:x#v")).toBe("child");
    expect(field(await fetchVault(b, "legacy1/app"), "vault:x#v")).toBe("team");
    expect(reads()).toEqual(["sub/legacy1/data/app", "legacy1/app"]);
  });

  it("MountCache matches only paths under the prefix the preflight answered for", () => {
    const cache = new MountCache();
    cache.set("team/legacy1/app", { path: "team/legacy1/", type: "kv", kvVersion: 2 });
    expect(cache.find("team/legacy1/other")?.kvVersion).toBe(2);
    expect(cache.find("team/legacy1")?.kvVersion).toBe(2);
    expect(cache.find("legacy1/app")).toBeUndefined();
    expect(cache.find("team/legacy10/app")).toBeUndefined();
    // A mount reported with the header's namespace in front: keyed by the path as asked.
    cache.set("secret/nomad", { path: "ns1/secret/", type: "kv", kvVersion: 2 });
    expect(cache.find("secret/consul")?.path).toBe("ns1/secret/");
    expect(cache.find("ns1/secret/consul")).toBeUndefined();
    cache.forget("secret/x");
    expect(cache.find("secret/consul")).toBeUndefined();
    expect(cache.find("team/legacy1/other")?.kvVersion).toBe(2);
  });
});

describe("a token renewal answered 500 \"past the max TTL, cannot renew\"", () => {
  // Exactly what Vault and OpenBao send (a handler error wrapped by multierror).
  const PAST_MAX = ["1 error occurred:\n\t* past the max TTL, cannot renew\n\n"];

  it("AppRole: logs in again at once instead of retrying the renewal", async () => {
    fake.mount("secret", "kv", { version: 2 });
    const value = canary("v");
    fake.kvPut("secret/app", { pw: value });
    fake.addAppRole({ roleId: "r", secretId: canary("sid"), policies: ["secret/data/app"], tokenTtl: 3 });
    const dir = mkdtempSync(join(tmpdir(), "emissary-vault-maxttl-"));
    try {
      writeFileSync(join(dir, "role_id"), "r");
      writeFileSync(join(dir, "secret_id"), fake.appRoles[0]!.secretId!);
      fake.fail("auth/token/renew-self", 500, { errors: PAST_MAX });
      const b = make({ config: { auth: { method: "approle", role_id_file: join(dir, "role_id"), secret_id_file: join(dir, "secret_id") } } });
      expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
      await fake.waitFor(() => fake.count((c) => c.path === "auth/approle/login" && c.status === 200) >= 2, 15_000, "a second login after the 500");
      const renewals = fake.calls.filter((c) => c.path === "auth/token/renew-self");
      expect(renewals.map((c) => c.status)).toEqual([500]); // no retry on the ending token
      expect(log.entries().some((e) => e.msg === "vault: token renewal failed")).toBe(false);
      expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a static token: says at once that it reached its max TTL and a new token is needed, and stops renewing", async () => {
    fake.mount("secret", "kv", { version: 2 });
    fake.kvPut("secret/app", { pw: "x" });
    const tok = fake.createToken({ id: canary("tok"), ttl: 3, renewable: true });
    fake.fail("auth/token/renew-self", 500, { errors: PAST_MAX });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    await fake.waitFor(() => fake.count((c) => c.path === "auth/token/renew-self") >= 1, 15_000, "the renewal");
    const said = (msg: string): boolean => log.entries().some((e) => e.msg === msg);
    await waitFor(() => said("vault: the token reached its max TTL and will expire; give emissary a new token") || said("vault: token renewal failed"), 15_000, "the renewal's outcome logged");
    expect(said("vault: the token reached its max TTL and will expire; give emissary a new token")).toBe(true);
    expect(log.entries().some((e) => e.msg === "vault: token renewal failed")).toBe(false);
    expect(b.tokens.timer).toBeUndefined();
  });
});
