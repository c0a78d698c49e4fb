/**
 * The vault backend reading KV v1, KV v2 and other engines from the fake Vault, with a token.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, caught, fetchVault, field, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import type { VaultBackend } from "../../backends/vault.js";

let fake: FakeVault;
let log: CapturedLog;
let backend: VaultBackend;
let token: string;
const errors: unknown[] = [];
const logs: CapturedLog[] = [];

beforeEach(async () => {
  fake = await FakeVault.start();
  fake.mount("secret", "kv", { version: 2 });
  fake.mount("kv1", "kv", { version: 1 });
  token = fake.createToken({ id: canary("token"), name: "root-ish" });
  log = captureLog();
  logs.push(log);
  backend = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: token } });
});

afterEach(async () => {
  await backend.close();
  await fake.close();
});

afterAll(() => {
  for (const l of logs) l.flush("kv");
  const text = leakText({ ...logs[0]!, lines: logs.flatMap((l) => l.lines) }, errors);
  expect(text).not.toContain("CANARY");
});

async function failure(id: string, options: Record<string, string | number> = {}): Promise<Error & { code?: string; status?: number; retryAfterMs?: number }> {
  const err = await caught(() => fetchVault(backend, id, options));
  errors.push(err);
  return err;
}

describe("KV version 2", () => {
  it("reads data.data as JSON text, so #field works, with the KV version as version", async () => {
    const pw = canary("pw");
    fake.kvPut("secret/nomad", { token: pw, region: "eu" });
    const s = await fetchVault(backend, "secret/nomad");
    expect(JSON.parse(s.value)).toEqual({ token: pw, region: "eu" });
    expect(field(s, "vault:secret/nomad#token")).toBe(pw);
    expect(s.version).toMatch(/^kv2:1:/);
    expect(s.ttlMs).toBeUndefined();
    // A token lookup (for its TTL), the mounts preflight, then <mount>/data/<path>; all with X-Vault-Request.
    expect(fake.calls.map((c) => c.path)).toEqual(["auth/token/lookup-self", "sys/internal/ui/mounts/secret/nomad", "secret/data/nomad"]);
    expect(fake.calls.every((c) => c.vaultRequestHeader && c.tokenName === "root-ish")).toBe(true);
  });

  it("picks up a rotation on the next fetch: new value, new version", async () => {
    fake.kvPut("secret/app", { key: "one" });
    const a = await fetchVault(backend, "secret/app");
    fake.kvPut("secret/app", { key: "two" });
    const b = await fetchVault(backend, "secret/app");
    expect(field(b, "vault:secret/app#key")).toBe("two");
    expect(b.version).not.toBe(a.version);
    // One preflight serves both reads.
    expect(fake.count((c) => c.path.startsWith("sys/internal/ui/mounts/"))).toBe(1);
  });

  it("asks the mount preflight once for many paths under one mount fetched at the same time", async () => {
    for (let i = 0; i < 20; i++) fake.kvPut(`secret/app${i}`, { key: `v${i}` });
    fake.kvPut("kv1/other", { key: "x" });
    const got = await Promise.all([...Array.from({ length: 20 }, (_, i) => fetchVault(backend, `secret/app${i}`)), fetchVault(backend, "kv1/other")]);
    expect(field(got[7]!, "vault:secret/app7#key")).toBe("v7");
    expect(field(got[20]!, "vault:kv1/other#key")).toBe("x");
    // One for secret/, one for kv1/ — not one per path.
    expect(fake.count((c) => c.path.startsWith("sys/internal/ui/mounts/"))).toBe(2);
  });

  it("reads an older version with the long-form version option", async () => {
    fake.kvPut("secret/app", { key: "one" });
    fake.kvPut("secret/app", { key: "two" });
    const s = await fetchVault(backend, "secret/app", { version: 1 });
    expect(field(s, "vault:secret/app#key")).toBe("one");
    expect(fake.calls.at(-1)?.query).toEqual({ version: "1" });
    const bad = await failure("secret/app", { version: "latest" });
    expect(bad.code).toBe("FATAL");
  });

  it("treats a missing secret as not yet set, then resolves once written", async () => {
    const err = await failure("secret/later");
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toContain("secret/data/later");
    fake.kvPut("secret/later", { v: "now" });
    expect(field(await fetchVault(backend, "secret/later"), "vault:secret/later#v")).toBe("now");
  });

  it("treats a deleted latest version as not set", async () => {
    fake.kvPut("secret/gone", { v: "x" });
    fake.kvDelete("secret/gone");
    const err = await failure("secret/gone");
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toMatch(/version 1 .* deleted/);
  });

  it("accepts the API spelling secret/data/x as well", async () => {
    fake.kvPut("secret/app", { k: "v" });
    expect(field(await fetchVault(backend, "secret/data/app"), "vault:x#k")).toBe("v");
    expect(fake.calls.at(-1)?.path).toBe("secret/data/app");
  });

  it("refuses a reference to the mount itself", async () => {
    expect((await failure("secret")).code).toBe("FATAL");
  });

  it("a version number reused after the secret is recreated still changes the version string", async () => {
    let t = Date.parse("2024-01-01T00:00:00Z");
    const clockFake = await FakeVault.start({ now: () => t });
    try {
      clockFake.mount("secret", "kv", { version: 2 });
      const tok = clockFake.createToken({});
      const b = vaultBackend(log, { address: clockFake.url, env: { VAULT_TOKEN: tok } });
      clockFake.kvPut("secret/re", { v: "a" });
      const first = await fetchVault(b, "secret/re");
      clockFake.kv2.delete("secret/re");
      t += 5000;
      clockFake.kvPut("secret/re", { v: "b" });
      const second = await fetchVault(b, "secret/re");
      expect(first.version).toMatch(/^kv2:1:/);
      expect(second.version).toMatch(/^kv2:1:/);
      expect(second.version).not.toBe(first.version);
      await b.close();
    } finally {
      await clockFake.close();
    }
  });
});

describe("KV version 1 and other engines", () => {
  it("reads a KV v1 path as written, without a lease even though Vault reports lease_duration", async () => {
    fake.kvPut("kv1/app", { user: "u", ttl: "1h" });
    const s = await fetchVault(backend, "kv1/app");
    expect(field(s, "vault:kv1/app#user")).toBe("u");
    expect(s.ttlMs).toBeUndefined();
    expect(fake.calls.at(-1)?.path).toBe("kv1/app");
    expect((await failure("kv1/missing")).code).toBe("NOT_FOUND");
  });

  it("rejects the version option on a KV v1 mount", async () => {
    fake.kvPut("kv1/app", { user: "u" });
    const err = await failure("kv1/app", { version: 2 });
    expect(err.code).toBe("FATAL");
    expect(err.message).toContain("KV version 2");
  });

  it("reads a database engine path as written and returns the lease as ttlMs", async () => {
    fake.mount("database", "database");
    fake.dbRole("database", "app", { ttl: 3600, maxTtl: 7200, renewable: false });
    const s = await fetchVault(backend, "database/creds/app");
    expect(field(s, "vault:database/creds/app#username")).toMatch(/^v-token-app-/);
    expect(s.ttlMs).toBe(3600_000);
    expect(fake.calls.at(-1)?.path).toBe("database/creds/app");
  });

  it("falls back to a plain read when the Vault has no mounts preflight (404)", async () => {
    fake.kvPut("kv1/old", { a: "b" });
    fake.fail("sys/internal/ui/mounts/", 404);
    expect(field(await fetchVault(backend, "kv1/old"), "vault:x#a")).toBe("b");
  });
});

describe("namespaces, standby, references", () => {
  it("sends X-Vault-Namespace from VAULT_NAMESPACE and reads mounts inside it", async () => {
    fake.mount("secret", "kv", { version: 2, namespace: "ops" });
    fake.kvPut("ops/secret/db", { pw: "in-ns" });
    const b = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: token, VAULT_NAMESPACE: "ops" } });
    expect(field(await fetchVault(b, "secret/db"), "vault:x#pw")).toBe("in-ns");
    expect(fake.calls.slice(-2).map((c) => [c.namespace, c.path])).toEqual([
      ["ops", "sys/internal/ui/mounts/secret/db"],
      ["ops", "secret/data/db"],
    ]);
    await b.close();
  });

  it("takes the namespace from the config when the environment has none", async () => {
    fake.mount("secret", "kv", { version: 2, namespace: "team" });
    fake.kvPut("team/secret/x", { a: "1" });
    const b = vaultBackend(log, { address: fake.url, config: { namespace: "team" }, env: { VAULT_TOKEN: token } });
    expect(field(await fetchVault(b, "secret/x"), "vault:x#a")).toBe("1");
    await b.close();
  });

  // Seen against OpenBao 2.x: with `team/legacy1/` (v2) mounted next to `legacy1/` (v1), the
  // cached answer for `team/legacy1/` was taken for `legacy1/app` on its next fetch, which then
  // read `legacy1/data/app` (404): the secret "disappeared" on the first refresh.
  it.each([
    ["the nested mount first", ["team/legacy1/app", "legacy1/app"]],
    ["the top-level mount first", ["legacy1/app", "team/legacy1/app"]],
  ])("keeps a mount apart from a nested mount of the same name (%s), on every fetch", async (_, order) => {
    fake.mount("legacy1", "kv", { version: 1 });
    fake.mount("team/legacy1", "kv", { version: 2 });
    fake.kvPut("legacy1/app", { pw: "v1-value" });
    fake.kvPut("team/legacy1/app", { pw: "v2-value" });
    const want: Record<string, string> = { "legacy1/app": "v1-value", "team/legacy1/app": "v2-value" };
    for (let round = 0; round < 3; round++) {
      for (const id of order) expect(field(await fetchVault(backend, id), "vault:x#pw")).toBe(want[id]);
    }
    const reads = fake.calls.filter((c) => !c.path.startsWith("sys/") && !c.path.startsWith("auth/")).map((c) => c.path);
    expect(new Set(reads)).toEqual(new Set(["legacy1/app", "team/legacy1/data/app"]));
    // One preflight per mount: the cache still serves the later rounds.
    expect(fake.count((c) => c.path.startsWith("sys/internal/ui/mounts/"))).toBe(2);
  });

  it("follows a standby's 307 redirect to the active node", async () => {
    const standby = await FakeVault.start();
    try {
      standby.activeAddress = fake.url;
      fake.kvPut("secret/app", { k: "active" });
      const b = vaultBackend(log, { address: standby.url, env: { VAULT_TOKEN: token } });
      expect(field(await fetchVault(b, "secret/app"), "vault:x#k")).toBe("active");
      expect(standby.count((c) => c.status === 307)).toBe(3);
      expect(standby.count((c) => c.status !== 307)).toBe(0);
      await b.close();
    } finally {
      await standby.close();
    }
  });

  it("validate() rejects unknown options and bad paths without fetching", () => {
    expect(() => backend.validate({ backend: "vault", id: "secret/app", options: { version_stage: "AWSCURRENT" } })).toThrow(/version_stage/);
    expect(() => backend.validate({ backend: "vault", id: "secret/../x", options: {} })).toThrow(/segment/);
    expect(() => backend.validate({ backend: "vault", id: "secret/app", options: { version: 0 } })).toThrow(/positive/);
    expect(() => backend.validate({ backend: "vault", id: "secret/app", options: { version: 3 } })).not.toThrow();
    expect(fake.calls).toHaveLength(0);
  });

  it("encodes path segments and ignores leading/trailing slashes", async () => {
    fake.kvPut("secret/my app/key#1", { k: "spaced" });
    // (the core splits "#field" off before the backend sees the id)
    expect(field(await fetchVault(backend, "/secret/my app/key#1/"), "vault:x#k")).toBe("spaced");
    expect(fake.calls.at(-1)?.path).toBe("secret/data/my app/key#1");
  });

  it("defaults to refreshing every 5 minutes", () => {
    expect(backend.defaultRefreshMs).toBe(300_000);
  });
});
