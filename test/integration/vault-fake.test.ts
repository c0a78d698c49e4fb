/**
 * The fake Vault checked against Vault's published API documentation, with raw HTTP and no code
 * of the backend, so the backend's tests do not merely agree with themselves. Each case names
 * the page (developer.hashicorp.com/vault/api-docs/…) whose documented response it checks.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeVault } from "../fakes/vault-server.js";

let fake: FakeVault;
let root: string;

beforeAll(async () => {
  fake = await FakeVault.start();
  fake.mount("secret", "kv", { version: 2 });
  fake.mount("kv", "kv", { version: 1 });
  fake.mount("database", "database");
  fake.dbRole("database", "app", { ttl: 3600, maxTtl: 86400, renewable: true });
  root = fake.createToken({ name: "root" });
});

afterAll(async () => {
  await fake.close();
});

async function call(method: string, path: string, opts: { token?: string; body?: unknown; namespace?: string } = {}): Promise<{ status: number; body: Record<string, unknown> | undefined; headers: Headers }> {
  const res = await fetch(`${fake.url}/v1/${path}`, {
    method,
    headers: {
      ...(opts.token ? { "X-Vault-Token": opts.token } : {}),
      ...(opts.namespace ? { "X-Vault-Namespace": opts.namespace } : {}),
      ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined, headers: res.headers };
}

const ENVELOPE = ["auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"];

describe("the fake follows Vault's documented responses", () => {
  it("secret/kv/kv-v2 'Read Secret Version': data.data and data.metadata {created_time, custom_metadata, deletion_time, destroyed, version}", async () => {
    fake.kvPut("secret/my-secret", { foo: "bar" });
    fake.kvPut("secret/my-secret", { foo: "baz" });
    const r = await call("GET", "secret/data/my-secret?version=1", { token: root });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body!).sort()).toEqual(ENVELOPE);
    const data = r.body!.data as { data: unknown; metadata: Record<string, unknown> };
    expect(data.data).toEqual({ foo: "bar" });
    expect(Object.keys(data.metadata).sort()).toEqual(["created_time", "custom_metadata", "deletion_time", "destroyed", "version"]);
    expect(data.metadata).toMatchObject({ deletion_time: "", destroyed: false, version: 1 });
    expect(data.metadata.created_time).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect((await call("GET", "secret/data/my-secret", { token: root })).body).toMatchObject({ data: { metadata: { version: 2 } } });
  });

  it("kv-v2: a missing secret is 404 with an empty errors list; a deleted version is 404 with data null and its metadata", async () => {
    expect(await call("GET", "secret/data/nope", { token: root })).toMatchObject({ status: 404, body: { errors: [] } });
    fake.kvPut("secret/del", { a: "b" });
    fake.kvDelete("secret/del");
    const r = await call("GET", "secret/data/del", { token: root });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ data: { data: null, metadata: { destroyed: false, version: 1 } } });
    expect((r.body!.data as { metadata: { deletion_time: string } }).metadata.deletion_time).not.toBe("");
  });

  it("secret/kv/kv-v1 'Read Secret': data as stored, empty lease_id, lease_duration from the advisory ttl", async () => {
    fake.kvPut("kv/my-secret", { foo: "bar", ttl: "1h" });
    const r = await call("GET", "kv/my-secret", { token: root });
    expect(r.body).toMatchObject({ auth: null, data: { foo: "bar", ttl: "1h" }, lease_duration: 3600, lease_id: "", renewable: false });
  });

  it("system/internal-ui-mounts per path (the CLI's kv preflight): the mount's info with path, type and options.version", async () => {
    const r = await call("GET", "sys/internal/ui/mounts/secret/my-secret", { token: root });
    expect(r.status).toBe(200);
    expect(r.body!.data).toMatchObject({ path: "secret/", type: "kv", options: { version: "2" } });
    expect(Object.keys(r.body!.data as object)).toEqual(expect.arrayContaining(["accessor", "config", "description", "local", "options", "path", "seal_wrap", "type", "uuid"]));
    const v1 = await call("GET", "sys/internal/ui/mounts/kv/x", { token: root });
    expect(v1.body!.data).toMatchObject({ path: "kv/", options: { version: "1" } });
    const none = await call("GET", "sys/internal/ui/mounts/nowhere/x", { token: root });
    expect(none.status).toBe(403);
    expect((none.body!.errors as string[])[0]).toMatch(/^preflight capability check returned 403/);
  });

  it("auth/token 'Lookup a Token (Self)': data with ttl, creation_ttl, renewable, expire_time, policies…", async () => {
    const tok = fake.createToken({ ttl: 3600, renewable: true });
    const r = await call("GET", "auth/token/lookup-self", { token: tok });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body!.data as object).sort()).toEqual(
      ["accessor", "creation_time", "creation_ttl", "display_name", "entity_id", "expire_time", "explicit_max_ttl", "id", "issue_time", "meta", "num_uses", "orphan", "path", "policies", "renewable", "ttl", "type"].sort(),
    );
    expect(r.body!.data).toMatchObject({ creation_ttl: 3600, renewable: true });
  });

  it("auth/token 'Renew a Token (Self)': auth {client_token, policies, metadata, lease_duration, renewable}", async () => {
    const tok = fake.createToken({ ttl: 3600, renewable: true });
    const r = await call("POST", "auth/token/renew-self", { token: tok, body: { increment: "1h" } });
    expect(r.status).toBe(200);
    expect(r.body!.auth).toMatchObject({ client_token: tok, lease_duration: 3600, renewable: true });
    expect(Object.keys(r.body!.auth as object)).toEqual(expect.arrayContaining(["client_token", "policies", "metadata", "lease_duration", "renewable"]));
  });

  it("api-docs 'HTTP status codes': a bad token is 403 with errors; sealed is 503; every error body is {errors: [...]}", async () => {
    expect(await call("GET", "secret/data/my-secret", { token: "hvs.nope" })).toMatchObject({ status: 403, body: { errors: ["permission denied"] } });
    fake.sealed = true;
    try {
      expect(await call("GET", "secret/data/my-secret", { token: root })).toMatchObject({ status: 503, body: { errors: ["Vault is sealed"] } });
    } finally {
      fake.sealed = false;
    }
    fake.fail("secret/data/my-secret", 429, { retryAfterS: 3 });
    const limited = await call("GET", "secret/data/my-secret", { token: root });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
    expect((limited.body!.errors as string[])[0]).toMatch(/rate limit quota exceeded/);
  });

  it("auth/approle 'Login With AppRole': auth block with client_token, lease_duration, renewable, policies, accessor", async () => {
    fake.addAppRole({ roleId: "59d6d1ca", secretId: "84896a0c", tokenTtl: 1200 });
    const r = await call("POST", "auth/approle/login", { body: { role_id: "59d6d1ca", secret_id: "84896a0c" } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ data: null, lease_duration: 0, lease_id: "", renewable: false, auth: { renewable: true, lease_duration: 1200 } });
    expect(Object.keys(r.body!.auth as object)).toEqual(expect.arrayContaining(["client_token", "accessor", "policies", "metadata", "lease_duration", "renewable"]));
    expect((await call("POST", "auth/approle/login", { body: { role_id: "59d6d1ca", secret_id: "wrong" } })).status).toBe(400);
  });

  it("system/leases 'Renew lease': {lease_id, renewable, lease_duration}; a dynamic read carries lease_id and lease_duration", async () => {
    const creds = await call("GET", "database/creds/app", { token: root });
    expect(creds.body).toMatchObject({ renewable: true, lease_duration: 3600, data: { username: expect.any(String), password: expect.any(String) } });
    const leaseId = creds.body!.lease_id as string;
    expect(leaseId).toMatch(/^database\/creds\/app\//);
    const r = await call("POST", "sys/leases/renew", { token: root, body: { lease_id: leaseId, increment: 1800 } });
    expect(r.body).toMatchObject({ lease_id: leaseId, renewable: true, lease_duration: 1800 });
    expect((await call("POST", "sys/leases/renew", { token: root, body: { lease_id: "database/creds/app/unknown" } })).status).toBe(400);
  });

  it("api-docs 'Namespaces': X-Vault-Namespace ns1/ prefixes the request path", async () => {
    fake.mount("secret", "kv", { version: 2, namespace: "ns1/ns2" });
    fake.kvPut("ns1/ns2/secret/foo", { a: "b" });
    expect((await call("GET", "secret/data/foo", { token: root, namespace: "ns1/ns2/" })).body).toMatchObject({ data: { data: { a: "b" } } });
    expect((await call("GET", "ns2/secret/data/foo", { token: root, namespace: "ns1/" })).body).toMatchObject({ data: { data: { a: "b" } } });
    expect((await call("GET", "sys/internal/ui/mounts/secret/foo", { token: root, namespace: "ns1/ns2" })).body).toMatchObject({ data: { path: "secret/" } });
  });
});
