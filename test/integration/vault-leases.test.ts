/**
 * Leased secrets (dynamic database credentials) on a manual clock shared by the fake Vault and the
 * backend. The core is simulated as the scheduler behaves: the next fetch comes at
 * ttlMs × 0.9 (± 5% jitter), or at the refresh interval when that is sooner.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, fetchVault, field, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import type { VaultBackend } from "../../backends/vault.js";
import type { Secret } from "../../src/index.js";

let t: number;
let fake: FakeVault;
let log: CapturedLog;
let backend: VaultBackend;
const logs: CapturedLog[] = [];
const REFRESH_MS = 300_000;

beforeEach(async () => {
  t = Date.parse("2025-01-01T00:00:00Z");
  fake = await FakeVault.start({ now: () => t });
  fake.mount("database", "database");
  const token = fake.createToken({ id: canary("token") });
  log = captureLog();
  logs.push(log);
  backend = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: token }, now: () => t });
});

afterEach(async () => {
  await backend.close();
  await fake.close();
});

afterAll(() => {
  for (const l of logs) l.flush("leases");
  expect(leakText({ ...logs[0]!, lines: logs.flatMap((l) => l.lines) }, [])).not.toContain("CANARY");
});

const user = (s: Secret): string => field(s, "vault:database/creds/app#username");
const reads = (): number => fake.count((c) => c.path === "database/creds/app");
const renewals = (): number => fake.count((c) => c.path === "sys/leases/renew");

/** When the core fetches next after `s` (its scheduler: min(refresh, 0.9·ttl ± 5%)). */
function nextFetchIn(s: Secret, jitter: number): number {
  return Math.min(REFRESH_MS, s.ttlMs !== undefined ? s.ttlMs * 0.9 * jitter : Infinity);
}

describe("renewable leases", () => {
  it("returns the held credentials while the lease is good, renews at ~2/3, and swaps them before the max TTL ends", async () => {
    fake.dbRole("database", "app", { ttl: 60, maxTtl: 600, renewable: true, password: () => canary("dbpw") });
    for (const jitter of [0.95, 1.05, 1.0]) {
      backend.leases.clear();
      const start = t;
      const readsBefore = reads();
      let s = await fetchVault(backend, "database/creds/app");
      const seen = new Set([user(s)]);
      // Simulate 30 minutes of the core's loop.
      while (t - start < 1_800_000) {
        const held = user(s);
        t += nextFetchIn(s, jitter);
        // The credentials the core holds are still valid when it comes back, with a margin.
        expect(fake.leaseLeft(held)).toBeGreaterThan(2_000);
        s = await fetchVault(backend, "database/creds/app");
        seen.add(user(s));
      }
      // One new credential per max TTL (600s), not one per lease period (60s).
      expect(reads() - readsBefore).toBeGreaterThanOrEqual(3);
      expect(reads() - readsBefore).toBeLessThanOrEqual(5);
      expect(seen.size).toBe(reads() - readsBefore);
    }
    expect(renewals()).toBeGreaterThan(10);
  });

  it("a second fetch right away returns the same credentials without reading or renewing", async () => {
    fake.dbRole("database", "app", { ttl: 60, maxTtl: 600, renewable: true });
    const a = await fetchVault(backend, "database/creds/app");
    t += 10_000;
    const b = await fetchVault(backend, "database/creds/app");
    expect(user(b)).toBe(user(a));
    expect(b.version).toBe(a.version);
    expect(reads()).toBe(1);
    expect(renewals()).toBe(0);
    // The ttl brings the core back at about 2/3 of the lease.
    expect(a.ttlMs! * 0.9).toBeGreaterThan(38_000);
    expect(a.ttlMs! * 0.9).toBeLessThan(42_000);
  });

  it("a transient renewal failure keeps the credentials and retries; a lost lease reads new ones", async () => {
    fake.dbRole("database", "app", { ttl: 60, maxTtl: 600, renewable: true });
    const a = await fetchVault(backend, "database/creds/app");
    t += 40_000;
    fake.fail("sys/leases/renew", 500);
    const b = await fetchVault(backend, "database/creds/app");
    expect(user(b)).toBe(user(a));
    expect(b.ttlMs!).toBeLessThan(20_000);
    t += b.ttlMs! * 0.9;
    const c = await fetchVault(backend, "database/creds/app");
    expect(user(c)).toBe(user(a));
    expect(renewals()).toBe(2);
    // The lease is revoked behind emissary's back: the renewal's 400 leads to new credentials.
    t += c.ttlMs! * 0.9;
    fake.revokeLease(user(a));
    const d = await fetchVault(backend, "database/creds/app");
    expect(user(d)).not.toBe(user(a));
    expect(reads()).toBe(2);
  });
});

describe("leases that cannot be renewed", () => {
  it("returns lease_duration as ttlMs and reads new credentials at the core's ~90% fetch", async () => {
    fake.dbRole("database", "app", { ttl: 60, maxTtl: 60, renewable: false });
    const a = await fetchVault(backend, "database/creds/app");
    expect(a.ttlMs).toBe(60_000);
    // An earlier fetch (a short template refresh) keeps them.
    t += 20_000;
    const early = await fetchVault(backend, "database/creds/app");
    expect(user(early)).toBe(user(a));
    expect(early.ttlMs).toBe(40_000);
    t = t - 20_000 + 54_000;
    expect(fake.leaseLeft(user(a))).toBeGreaterThan(0);
    const b = await fetchVault(backend, "database/creds/app");
    expect(user(b)).not.toBe(user(a));
    expect(b.version).not.toBe(a.version);
    expect(renewals()).toBe(0);
  });

  it("KV secrets carry no ttl and are read again on every fetch", async () => {
    fake.mount("secret", "kv", { version: 2 });
    fake.kvPut("secret/x", { a: "1" });
    await fetchVault(backend, "secret/x");
    await fetchVault(backend, "secret/x");
    expect(fake.count((c) => c.path === "secret/data/x")).toBe(2);
    expect(backend.leases.size).toBe(0);
  });
});

describe("a new token", () => {
  it("reads new credentials for leases made under the old token (Vault revokes them with it)", async () => {
    fake.addAppRole({ roleId: "r", secretId: "s", policies: ["database/*", "secret/*"], tokenTtl: 0 });
    const b = vaultBackend(log, { address: fake.url, config: { auth: { method: "approle", role_id: "r", secret_id: "s" } }, now: () => t });
    try {
      fake.dbRole("database", "app", { ttl: 600, maxTtl: 3600, renewable: true });
      fake.mount("secret", "kv", { version: 2 });
      fake.kvPut("secret/x", { a: "1" });
      const a = await fetchVault(b, "database/creds/app");
      await fetchVault(b, "secret/x");
      fake.revokeLoginTokens();
      // A KV read meets the revoked token, logs in again, and succeeds.
      await fetchVault(b, "secret/x");
      expect(fake.count((c) => c.path === "auth/approle/login")).toBe(2);
      const c = await fetchVault(b, "database/creds/app");
      expect(user(c)).not.toBe(user(a));
    } finally {
      await b.close();
    }
  });
});
