/**
 * The fake Vault's leases (database-style credentials, sys/leases/renew|lookup|revoke), token
 * renewal at the max TTL and sys/capabilities-self, checked with plain fetch on a manual clock
 * against Vault's documented behaviour (api-docs/system/leases, api-docs/auth/token,
 * api-docs/system/capabilities-self) and OpenBao's sources (sdk/framework/lease.go
 * CalculateTTL, vault/logical_system.go). No emissary code is involved.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeVault } from "../fakes/vault-server.js";

let fake: FakeVault;
let t = Date.parse("2025-01-01T00:00:00.500Z");
let root: string;

beforeAll(async () => {
  fake = await FakeVault.start({ now: () => t });
  fake.mount("database", "database");
  fake.dbRole("database", "app", { ttl: 60, maxTtl: 300, renewable: true });
  fake.dbRole("database", "fixed", { ttl: 60, maxTtl: 60, renewable: false });
  root = fake.createToken({ name: "root" });
});

afterAll(() => fake.close());

async function call(method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(`${fake.url}/v1/${path}`, { method, headers: { "X-Vault-Token": opts.token ?? root }, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, text };
}

describe("leased database credentials", () => {
  it("a read mints credentials with a lease; renewing extends the same lease; counters tell the two apart", async () => {
    const a = await call("GET", "database/creds/app");
    expect(a.body).toMatchObject({ renewable: true, lease_duration: 60, data: { username: expect.any(String), password: expect.any(String) } });
    const leaseId = a.body.lease_id as string;
    expect(leaseId).toMatch(/^database\/creds\/app\/.+/);
    expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: 1, renewed: 0 });
    t += 40_000;
    const r = await call("PUT", "sys/leases/renew", { body: { lease_id: leaseId, increment: 60 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ lease_id: leaseId, renewable: true, lease_duration: 60, data: null });
    // The URL form renews too.
    t += 40_000;
    expect((await call("PUT", `sys/leases/renew/${leaseId}`)).body).toMatchObject({ lease_id: leaseId, lease_duration: 60 });
    expect(fake.leaseCounts("database", "app")).toEqual({ minted: 1, renewed: 2 });
    const b = await call("GET", "database/creds/app");
    expect(b.body.lease_id).not.toBe(leaseId);
    expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: 2, renewed: 2 });
    expect(fake.leaseLeft((a.body.data as { username: string }).username)).toBe(60_000);
  });

  it("sys/leases/lookup shows the lease; revoke ends it (204); a revoked lease is not found", async () => {
    const a = await call("GET", "database/creds/app");
    const id = a.body.lease_id as string;
    const issued = new Date(t).toISOString();
    t += 10_000;
    const look = await call("PUT", "sys/leases/lookup", { body: { lease_id: id } });
    expect(look.status).toBe(200);
    expect(look.body.data).toEqual({ expire_time: new Date(Date.parse(issued) + 60_000).toISOString(), id, issue_time: issued, last_renewal: null, path: "database/creds/app", renewable: true, ttl: 50 });
    await call("PUT", "sys/leases/renew", { body: { lease_id: id } });
    expect((await call("PUT", "sys/leases/lookup", { body: { lease_id: id } })).body.data).toMatchObject({ last_renewal: new Date(t).toISOString(), ttl: 60 });
    const rev = await call("PUT", "sys/leases/revoke", { body: { lease_id: id } });
    expect(rev.status).toBe(204);
    expect(rev.text).toBe("");
    expect(await call("PUT", "sys/leases/lookup", { body: { lease_id: id } })).toMatchObject({ status: 400, body: { errors: ["invalid lease"] } });
    expect(await call("PUT", "sys/leases/renew", { body: { lease_id: id } })).toMatchObject({ status: 400, body: { errors: ["lease not found"] } });
    expect(await call("PUT", "sys/leases/renew", { body: {} })).toMatchObject({ status: 400, body: { errors: ["lease_id must be specified"] } });
  });

  it("renewal is capped by the max TTL with Vault's warning; past it the renewal fails with 400; a non-renewable lease says so", async () => {
    const a = await call("GET", "database/creds/app");
    const id = a.body.lease_id as string;
    const start = t;
    // 4m30s in: 30 s are left of the 5 min max TTL.
    for (let i = 0; i < 6; i++) {
      t += 45_000;
      await call("PUT", "sys/leases/renew", { body: { lease_id: id } });
    }
    expect(t - start).toBe(270_000);
    const capped = await call("PUT", "sys/leases/renew", { body: { lease_id: id, increment: 3600 } });
    expect(capped.body).toMatchObject({ lease_duration: 30, warnings: [`TTL of "1h" exceeded the effective max_ttl of "30s"; TTL value is capped accordingly`] });
    // The lease was issued at x.500 s; Vault counts the max TTL from x.000, so it ends 299.5 s
    // in, while the lease (renewed at 270.5 s for 30 s) lives until 300.5 s. In between, the
    // lease is valid but cannot be renewed.
    t = start + 299_700;
    expect(fake.leaseLeft((a.body.data as { username: string }).username)).toBeGreaterThan(0);
    expect(await call("PUT", "sys/leases/renew", { body: { lease_id: id } })).toMatchObject({
      status: 400,
      body: { errors: ["failed to renew entry: resp: (*logical.Response)(nil) err: past the max TTL, cannot renew"] },
    });
    const fixed = await call("GET", "database/creds/fixed");
    expect(fixed.body).toMatchObject({ renewable: false, lease_duration: 60 });
    expect(await call("PUT", "sys/leases/renew", { body: { lease_id: fixed.body.lease_id } })).toMatchObject({ status: 400, body: { errors: ["lease is not renewable"] } });
  });
});

describe("auth/token/renew-self at the max TTL", () => {
  it("caps the TTL to what is left, then — in the last second, while the token is still valid — answers 500 'past the max TTL, cannot renew'", async () => {
    t = Date.parse("2025-02-01T00:00:00.500Z");
    const tok = fake.createToken({ ttl: 6, maxTtl: 10, renewable: true });
    t += 4_000;
    const r1 = await call("PUT", "auth/token/renew-self", { token: tok, body: { increment: "6s" } });
    expect(r1.body.auth).toMatchObject({ lease_duration: 6 });
    t += 4_000;
    const r2 = await call("PUT", "auth/token/renew-self", { token: tok, body: { increment: 6 } });
    expect(r2.status).toBe(200);
    expect(r2.body.auth).toMatchObject({ lease_duration: 2 });
    expect(r2.body.warnings).toEqual([`TTL of "6s" exceeded the effective max_ttl of "2s"; TTL value is capped accordingly`]);
    // 9.7 s after issue: the token (issued at x.500, renewed at x+8.500 for 2 s) is valid until
    // x+10.500, but Vault counts the max TTL from x.000 with the time truncated to x+10: nothing left.
    t += 1_700;
    expect((await call("GET", "auth/token/lookup-self", { token: tok })).status).toBe(200);
    const r3 = await call("PUT", "auth/token/renew-self", { token: tok, body: { increment: 6 } });
    expect(r3.status).toBe(500);
    expect(r3.text).toBe(JSON.stringify({ errors: ["1 error occurred:\n\t* past the max TTL, cannot renew\n\n"] }));
    t += 400;
    expect((await call("GET", "auth/token/lookup-self", { token: tok })).status).toBe(403);
  });
});

describe("sys/capabilities-self", () => {
  beforeAll(() => {
    fake.setPolicy("app", {
      "secret/data/app/*": ["read", "list"],
      "secret/data/app/admin": ["deny"],
      "pki/issue/+": ["update"],
      "pki/issue/root-only": ["read"],
    });
    fake.setPolicy("ops", { "secret/data/app/*": ["update"] });
  });

  it("one path: its capabilities, also as `capabilities`, at the top level and in data (Vault injects data for this route)", async () => {
    const tok = fake.createToken({ policies: ["app"] });
    expect((await call("GET", "auth/token/lookup-self", { token: tok })).body.data).toMatchObject({ policies: ["default", "app"] });
    const r = await call("POST", "sys/capabilities-self", { token: tok, body: { paths: ["secret/data/app/db"] } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ capabilities: ["list", "read"], "secret/data/app/db": ["list", "read"], data: { capabilities: ["list", "read"], "secret/data/app/db": ["list", "read"] } });
  });

  it("several paths: one entry each and no `capabilities`; denied and unknown paths are ['deny']", async () => {
    const tok = fake.createToken({ policies: ["app", "ops"] });
    const paths = ["secret/data/app/db", "secret/data/app/admin", "secret/data/other", "pki/issue/web", "pki/issue/root-only"];
    const r = await call("POST", "sys/capabilities-self", { token: tok, body: { paths } });
    expect(r.body.data).toEqual({
      // Two policies on the same path merge.
      "secret/data/app/db": ["list", "read", "update"],
      // An exact rule beats the glob; deny wins.
      "secret/data/app/admin": ["deny"],
      "secret/data/other": ["deny"],
      "pki/issue/web": ["update"],
      "pki/issue/root-only": ["read"],
    });
    expect(r.body).not.toHaveProperty("capabilities");
    expect(await call("POST", "sys/capabilities-self", { token: tok, body: {} })).toMatchObject({ status: 400, body: { errors: ["paths must be supplied"] } });
  });

  it("a root token has ['root']; a bad token is 403", async () => {
    expect((await call("POST", "sys/capabilities-self", { body: { paths: ["anything"] } })).body.capabilities).toEqual(["root"]);
    expect((await call("POST", "sys/capabilities-self", { token: "hvs.bogus", body: { paths: ["x"] } })).status).toBe(403);
  });

  it("the capabilities are the ones enforced: read allowed, read denied", async () => {
    fake.mount("secret", "kv", { version: 2 });
    fake.kvPut("secret/app/db", { pw: "x" });
    fake.kvPut("secret/app/admin", { pw: "y" });
    const tok = fake.createToken({ policies: ["app"] });
    expect((await call("GET", "secret/data/app/db", { token: tok })).status).toBe(200);
    expect((await call("GET", "secret/data/app/admin", { token: tok })).status).toBe(403);
  });
});
