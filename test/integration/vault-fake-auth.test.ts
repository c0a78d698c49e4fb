/**
 * The fake Vault's JWT and TLS-certificate logins and response wrapping, checked with plain
 * fetch, node:https and node:crypto against Vault's documented behaviour (api-docs/auth/jwt,
 * api-docs/auth/cert, api-docs/system/wrapping-unwrap, concepts/response-wrapping) and the error
 * texts of OpenBao's sources. No emissary code is involved.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeVault } from "../fakes/vault-server.js";
import { newCa, newKeyPair, toPem, type FakeCa, type KeyPairPem } from "../fakes/x509-util.js";

async function call(fake: FakeVault, method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${fake.url}/v1/${path}`, {
    method,
    headers: { ...(opts.token ? { "X-Vault-Token": opts.token } : {}), ...(opts.headers ?? {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const AUTH_KEYS = ["accessor", "client_token", "entity_id", "lease_duration", "metadata", "orphan", "policies", "renewable", "token_policies", "token_type"];

function jwt(key: KeyObject, alg: "RS256" | "ES256", claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc({ alg, typ: "JWT" })}.${enc(claims)}`;
  const sig = alg === "RS256" ? sign("sha256", Buffer.from(input), key) : sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

describe("auth/jwt/login", () => {
  let fake: FakeVault;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const now = (): number => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    fake = await FakeVault.start();
    fake.addJwtRole({
      name: "ci",
      publicKeys: [rsa.publicKey.export({ format: "pem", type: "spki" }) as string, ec.publicKey],
      boundAudiences: ["vault"],
      boundClaims: { project: ["emissary", "other"] },
      policies: ["secret/data/ci/*"],
      tokenTtl: 600,
    });
    fake.addJwtRole({ name: "plain", publicKeys: [rsa.publicKey], tokenTtl: 60 });
  });
  afterAll(() => fake.close());

  it("a JWT signed by a configured key logs in: auth block with the role in metadata", async () => {
    for (const [key, alg] of [[rsa.privateKey, "RS256"], [ec.privateKey, "ES256"]] as const) {
      const r = await call(fake, "POST", "auth/jwt/login", { body: { role: "ci", jwt: jwt(key, alg, { sub: "runner-1", aud: "vault", project: "emissary", iat: now(), exp: now() + 300 }) } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ data: null, lease_id: "", auth: { metadata: { role: "ci" }, lease_duration: 600, renewable: true, policies: ["default", "secret/data/ci/*"] } });
      expect(Object.keys(r.body.auth as object).sort()).toEqual(AUTH_KEYS);
      const tok = (r.body.auth as { client_token: string }).client_token;
      expect((await call(fake, "GET", "auth/token/lookup-self", { token: tok })).status).toBe(200);
    }
  });

  it("refuses a bad signature, an expired token, a wrong audience or claim, with 400 and Vault's text", async () => {
    const ok = { sub: "runner-1", aud: "vault", project: "emissary", iat: now(), exp: now() + 300 };
    const login = async (role: string, token: string): Promise<unknown> => {
      const r = await call(fake, "POST", "auth/jwt/login", { body: { role, jwt: token } });
      expect(r.status).toBe(400);
      return r.body;
    };
    expect(await login("ci", jwt(other.privateKey, "RS256", ok))).toEqual({ errors: ["error validating token: error verifying token signature: no known key successfully validated the token signature"] });
    // A valid signature over a different payload: tampering is caught.
    const [h, , s] = jwt(rsa.privateKey, "RS256", ok).split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...ok, sub: "admin" })).toString("base64url")}.${s}`;
    expect(await login("ci", forged)).toEqual({ errors: ["error validating token: error verifying token signature: no known key successfully validated the token signature"] });
    // Expired beyond the 60 s clock-skew leeway.
    expect(await login("ci", jwt(rsa.privateKey, "RS256", { ...ok, iat: now() - 600, exp: now() - 120 }))).toEqual({ errors: ["error validating token: invalid expiration time (exp) claim: token is expired"] });
    expect(await login("ci", jwt(rsa.privateKey, "RS256", { ...ok, aud: "someone-else" }))).toEqual({ errors: ["error validating token: invalid audience (aud) claim: audience claim does not match any expected audience"] });
    expect(await login("ci", jwt(rsa.privateKey, "RS256", { ...ok, project: "evil" }))).toEqual({ errors: [`error validating claims: claim "project" does not match any associated bound claim values`] });
    expect(await login("plain", jwt(rsa.privateKey, "RS256", { ...ok }))).toEqual({ errors: ["audience claim found in JWT but no audiences bound to the role"] });
    expect(await login("plain", jwt(rsa.privateKey, "RS256", { sub: "x" }))).toEqual({ errors: ["error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token"] });
    expect(await login("nope", jwt(rsa.privateKey, "RS256", ok))).toEqual({ errors: [`role "nope" could not be found`] });
    expect(await login("", "x")).toEqual({ errors: ["missing role"] });
    expect(await login("ci", "")).toEqual({ errors: ["missing token"] });
    // Just expired, but within the leeway: accepted, as Vault does.
    expect((await call(fake, "POST", "auth/jwt/login", { body: { role: "ci", jwt: jwt(rsa.privateKey, "RS256", { ...ok, exp: now() - 10 }) } })).status).toBe(200);
  });
});

/** An HTTPS request with an optional client certificate. */
function httpsCall(url: string, path: string, opts: { ca: string; key?: string; cert?: string; body?: unknown }): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/${path}`, { method: "POST", ca: opts.ca, ...(opts.key ? { key: opts.key, cert: opts.cert } : {}), agent: false }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(opts.body ?? {}));
  });
}

describe("auth/cert/login on an HTTPS listener", () => {
  let fake: FakeVault;
  let plain: FakeVault;
  let ca: FakeCa;
  let rogue: FakeCa;
  const t0 = new Date(Date.now() - 60_000);
  const t1 = new Date(Date.now() + 3600_000);

  async function leaf(issuer: FakeCa, cn: string, usage: { server?: boolean; client?: boolean }): Promise<{ key: KeyPairPem; pem: string }> {
    const key = await newKeyPair({ type: "ec", bits: 256 });
    const cert = await issuer.sign({ commonName: cn, ...(usage.server ? { ips: ["127.0.0.1"] } : {}), notBefore: t0, notAfter: t1, publicKey: key.spki, serverAuth: !!usage.server, clientAuth: !!usage.client });
    return { key, pem: toPem(cert.rawData, "CERTIFICATE") };
  }

  beforeAll(async () => {
    ca = await newCa({ commonName: "clients CA", notBefore: t0, notAfter: t1 });
    rogue = await newCa({ commonName: "rogue CA", notBefore: t0, notAfter: t1 });
    const server = await leaf(ca, "vault.test", { server: true });
    fake = await FakeVault.start({ tls: { key: server.key.privateKeyPem, cert: server.pem, clientCerts: "request" } });
    plain = await FakeVault.start();
    fake.addCertRole({ name: "web", certificate: ca.certPem, allowedCommonNames: ["web-*"], policies: ["secret/data/web"], tokenTtl: 900 });
    fake.addCertRole({ name: "db", certificate: ca.certPem, allowedCommonNames: ["db.internal"], policies: ["secret/data/db"] });
    plain.addCertRole({ certificate: ca.certPem });
  });
  afterAll(async () => {
    await fake.close();
    await plain.close();
  });

  it("a client certificate from the trusted CA logs in; the auth metadata describes it", async () => {
    const c = await leaf(ca, "web-01", { client: true });
    const r = await httpsCall(fake.url, "auth/cert/login", { ca: ca.certPem, key: c.key.privateKeyPem, cert: c.pem });
    expect(r.status).toBe(200);
    const auth = r.body.auth as { metadata: Record<string, string>; lease_duration: number; policies: string[] };
    expect(auth.lease_duration).toBe(900);
    expect(auth.policies).toEqual(["default", "secret/data/web"]);
    expect(auth.metadata).toMatchObject({ cert_name: "web", common_name: "web-01" });
    expect(auth.metadata.serial_number).toMatch(/^\d+$/);
    expect(auth.metadata.subject_key_id).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2})+$/);
    expect(fake.calls.at(-1)).toMatchObject({ path: "auth/cert/login", clientCert: true, status: 200 });
    // `name` picks the role; its constraints then apply.
    const db = await httpsCall(fake.url, "auth/cert/login", { ca: ca.certPem, key: c.key.privateKeyPem, cert: c.pem, body: { name: "db" } });
    expect(db).toEqual({ status: 400, body: { errors: ["no chain matching all constraints could be found for this login certificate"] } });
  });

  it("refuses an untrusted certificate, a missing one, and plain HTTP, with 400", async () => {
    const bad = await leaf(rogue, "web-01", { client: true });
    expect(await httpsCall(fake.url, "auth/cert/login", { ca: ca.certPem, key: bad.key.privateKeyPem, cert: bad.pem })).toEqual({ status: 400, body: { errors: ["invalid certificate or no client certificate supplied"] } });
    // A server-only certificate (no clientAuth EKU) from the right CA is refused too.
    const srv = await leaf(ca, "web-02", { server: true });
    expect((await httpsCall(fake.url, "auth/cert/login", { ca: ca.certPem, key: srv.key.privateKeyPem, cert: srv.pem })).status).toBe(400);
    expect(await httpsCall(fake.url, "auth/cert/login", { ca: ca.certPem })).toEqual({ status: 400, body: { errors: ["no client certificate found"] } });
    expect(await call(plain, "POST", "auth/cert/login", { body: {} })).toEqual({ status: 400, body: { errors: ["tls connection not found"] } });
  });
});

describe("response wrapping", () => {
  let fake: FakeVault;
  let t = Date.parse("2025-01-01T00:00:00Z");
  let admin: string;

  beforeAll(async () => {
    fake = await FakeVault.start({ now: () => t });
    fake.mount("secret", "kv", { version: 2 });
    fake.kvPut("secret/app", { pw: "s3cret" });
    admin = fake.createToken({ name: "admin" });
  });
  afterAll(() => fake.close());

  it("a wrapped AppRole secret_id unwraps once (wrapping token as X-Vault-Token), then is invalid", async () => {
    const role = fake.addAppRole({ roleId: "role-1", roleName: "web", policies: ["secret/data/app"] });
    const w = fake.wrappedSecretId(role, { ttl: 120 });
    const first = await call(fake, "POST", "sys/wrapping/unwrap", { token: w.wrappingToken });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ wrap_info: null, auth: null, lease_id: "", data: { secret_id: w.secretId, secret_id_accessor: w.accessor, secret_id_ttl: 0, secret_id_num_uses: 0 } });
    const again = await call(fake, "POST", "sys/wrapping/unwrap", { token: w.wrappingToken });
    expect(again).toEqual({ status: 400, body: { errors: ["wrapping token is not valid or does not exist"] } });
    // The unwrapped secret_id logs in.
    const login = await call(fake, "POST", "auth/approle/login", { body: { role_id: "role-1", secret_id: w.secretId } });
    expect(login.status).toBe(200);
    expect(fake.wraps.unwraps).toBe(1);
  });

  it("the wrapping token can also go in the body with another valid token; an expired one is invalid", async () => {
    const tok = fake.wrap({ hello: "world" }, 60);
    expect((await call(fake, "POST", "sys/wrapping/lookup", { token: admin, body: { token: tok } })).body.data).toEqual({ creation_path: "sys/wrapping/wrap", creation_time: new Date(t).toISOString(), creation_ttl: 60 });
    expect((await call(fake, "POST", "sys/wrapping/unwrap", { token: "hvs.bogus", body: { token: tok } })).status).toBe(403);
    expect((await call(fake, "POST", "sys/wrapping/unwrap", { token: admin, body: { token: tok } })).body.data).toEqual({ hello: "world" });
    const old = fake.wrap({ a: 1 }, 60);
    t += 61_000;
    expect(await call(fake, "POST", "sys/wrapping/unwrap", { token: old })).toEqual({ status: 400, body: { errors: ["wrapping token is not valid or does not exist"] } });
  });

  it("X-Vault-Wrap-TTL wraps any successful answer: a secret-id write and a KV read", async () => {
    fake.addAppRole({ roleId: "role-2", roleName: "api" });
    const r = await call(fake, "POST", "auth/approle/role/api/secret-id", { token: admin, headers: { "X-Vault-Wrap-TTL": "5m" } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ data: null, auth: null, wrap_info: { ttl: 300, creation_path: "auth/approle/role/api/secret-id", wrapped_accessor: "" } });
    expect(Object.keys(r.body.wrap_info as object).sort()).toEqual(["accessor", "creation_path", "creation_time", "token", "ttl", "wrapped_accessor"]);
    expect(fake.calls.at(-1)?.wrapped).toBe(true);
    const inner = await call(fake, "POST", "sys/wrapping/unwrap", { token: (r.body.wrap_info as { token: string }).token });
    const secretId = (inner.body.data as { secret_id: string }).secret_id;
    expect((await call(fake, "POST", "auth/approle/login", { body: { role_id: "role-2", secret_id: secretId } })).status).toBe(200);
    const kv = await call(fake, "GET", "secret/data/app", { token: admin, headers: { "X-Vault-Wrap-TTL": "60" } });
    expect(kv.body.data).toBeNull();
    const un = await call(fake, "POST", "sys/wrapping/unwrap", { token: (kv.body.wrap_info as { token: string }).token });
    expect(un.body.data).toMatchObject({ data: { pw: "s3cret" } });
    // Errors are not wrapped; sys/wrapping/wrap needs the header.
    expect((await call(fake, "GET", "secret/data/none", { token: admin, headers: { "X-Vault-Wrap-TTL": "60" } })).status).toBe(404);
    expect(await call(fake, "POST", "sys/wrapping/wrap", { token: admin, body: { a: 1 } })).toEqual({ status: 400, body: { errors: ["endpoint requires response wrapping to be used"] } });
    expect((await call(fake, "POST", "auth/approle/role/nope/secret-id", { token: admin })).body).toEqual({ errors: [`role "nope" does not exist`] });
  });
});
