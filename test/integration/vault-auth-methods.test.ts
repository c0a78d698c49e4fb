/**
 * The auth methods of issued-secret deployments, against the fake Vault: `jwt` (a Nomad workload
 * identity file, re-read at each login), `cert` (a TLS client certificate over HTTPS), and AppRole
 * with `secret_id_wrapped` (unwrapped once; the secret_id kept in the state directory, so a restart
 * logs in without a second unwrap). No JWT, secret_id or wrapping token reaches a log line.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { VaultBackend } from "../../backends/vault.js";
import { StateDir } from "../../src/sources/state.js";
import { canary, plantCanary } from "../helpers/canary.js";
import { captureLog, caught, fetchVault, field, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import { FakeVault } from "../fakes/vault-server.js";
import { newCa, newKeyPair, toPem, type FakeCa } from "../fakes/x509-util.js";

const logs: CapturedLog[] = [];
const backends: VaultBackend[] = [];
const fakes: FakeVault[] = [];
const value = canary("value");

afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  for (const f of fakes.splice(0)) await f.close();
});

afterAll(() => {
  for (const l of logs) l.flush("auth-methods");
  expect(leakText({ ...logs[0]!, lines: logs.flatMap((l) => l.lines) }, [])).not.toContain("CANARY");
});

async function fakeWithSecret(opts: Parameters<typeof FakeVault.start>[0] = {}): Promise<FakeVault> {
  const fake = await FakeVault.start(opts);
  fakes.push(fake);
  fake.mount("secret", "kv", { version: 2 });
  fake.kvPut("secret/app", { password: value });
  return fake;
}

function make(fake: FakeVault, config: Record<string, unknown>, state?: StateDir): { b: VaultBackend; log: CapturedLog } {
  const log = captureLog();
  logs.push(log);
  const b = vaultBackend(log, { address: fake.url, config, ...(state ? { state: state.forBackend("vault") } : {}) });
  backends.push(b);
  return { b, log };
}

const tmp = (): string => mkdtempSync(join(tmpdir(), "emissary-auth-"));

function jwt(key: KeyObject, claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc({ alg: "RS256", typ: "JWT" })}.${enc(claims)}`;
  return `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}`;
}

describe("auth method jwt", () => {
  it("logs in with role and the JWT file, re-reading the file at each login", async () => {
    const fake = await fakeWithSecret();
    const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
    fake.addJwtRole({ name: "nomad-app", publicKeys: [keys.publicKey], boundAudiences: ["vault.io"], policies: ["secret/*"], tokenTtl: 600 });
    const dir = tmp();
    const file = join(dir, "nomad_token");
    const now = Math.floor(Date.now() / 1000);
    const first = jwt(keys.privateKey, { sub: "alloc-1", aud: "vault.io", iat: now, exp: now + 600 });
    plantCanary(first, "jwt");
    writeFileSync(file, first + "\n");
    const { b, log } = make(fake, { auth: { method: "jwt", role: "nomad-app", jwt_file: file } });
    expect(field(await fetchVault(b, "secret/app"), "vault:secret/app#password")).toBe(value);
    const call = fake.calls.find((c) => c.path === "auth/jwt/login")!;
    expect(call.body).toEqual({ role: "nomad-app", jwt: first });
    // Nomad rotates the identity; a forced login (the token revoked) reads the new one.
    const second = jwt(keys.privateKey, { sub: "alloc-1", aud: "vault.io", iat: now + 1, exp: now + 900 });
    plantCanary(second, "jwt");
    writeFileSync(file, second);
    fake.revokeLoginTokens();
    expect(field(await fetchVault(b, "secret/app"), "vault:secret/app#password")).toBe(value);
    expect(fake.calls.filter((c) => c.path === "auth/jwt/login").map((c) => c.body.jwt)).toEqual([first, second]);
    // A refused JWT: fatal, with Vault's reason and never the JWT.
    writeFileSync(file, "not.a.jwt");
    fake.revokeLoginTokens();
    const err = await caught(() => fetchVault(b, "secret/app"));
    expect(leakText(log, [err])).not.toContain(second.split(".")[2]!);
    expect(leakText(log, [err])).not.toContain(first.split(".")[2]!);
  });

  it("a JWT file that does not exist yet is transient (Nomad writes it after the task starts)", async () => {
    const fake = await fakeWithSecret();
    const { b } = make(fake, { auth: { method: "jwt", role: "r", jwt_file: join(tmp(), "missing") } });
    const err = await caught(() => fetchVault(b, "secret/app"));
    expect(err.code).toBe("TRANSIENT");
    expect(err.message).toContain("jwt_file");
  });

  it("needs role and jwt_file", () => {
    const log = captureLog();
    expect(() => vaultBackend(log, { address: "http://127.0.0.1:1", config: { auth: { method: "jwt", jwt_file: "/x" } } })).toThrow(/backends\.vault\.auth\.role: is required/);
    expect(() => vaultBackend(log, { address: "http://127.0.0.1:1", config: { auth: { method: "jwt", role: "r" } } })).toThrow(/auth\.jwt_file: is required/);
  });
});

describe("auth method cert", () => {
  let ca: FakeCa;
  const t0 = new Date(Date.now() - 60_000);
  const t1 = new Date(Date.now() + 3600_000);

  async function leaf(cn: string, usage: { server?: boolean; client?: boolean }): Promise<{ key: string; cert: string }> {
    const key = await newKeyPair({ type: "ec", bits: 256 });
    const c = await ca.sign({ commonName: cn, ...(usage.server ? { ips: ["127.0.0.1"] } : {}), notBefore: t0, notAfter: t1, publicKey: key.spki, serverAuth: !!usage.server, clientAuth: !!usage.client });
    return { key: key.privateKeyPem, cert: toPem(c.rawData, "CERTIFICATE") };
  }

  it("logs in over HTTPS with the auth section's client certificate, naming the role", async () => {
    ca = await newCa({ commonName: "clients CA", notBefore: t0, notAfter: t1 });
    const server = await leaf("vault.test", { server: true });
    const fake = await fakeWithSecret({ tls: { key: server.key, cert: server.cert, clientCerts: "request" } });
    fake.addCertRole({ name: "web", certificate: ca.certPem, allowedCommonNames: ["web-*"], policies: ["secret/*"], tokenTtl: 900 });
    const client = await leaf("web-01", { client: true });
    plantCanary(client.key, "client-key");
    const dir = tmp();
    for (const [f, text] of [["ca.pem", ca.certPem], ["client.pem", client.cert], ["client-key.pem", client.key]] as const) writeFileSync(join(dir, f), text);
    const { b, log } = make(fake, { ca_cert: join(dir, "ca.pem"), auth: { method: "cert", name: "web", client_cert: join(dir, "client.pem"), client_key: join(dir, "client-key.pem") } });
    expect(field(await fetchVault(b, "secret/app"), "vault:secret/app#password")).toBe(value);
    expect(fake.calls.find((c) => c.path === "auth/cert/login")).toMatchObject({ clientCert: true, status: 200, body: { name: "web" } });
    // Reads go over the backend's own connection (no client certificate configured there).
    expect(fake.calls.find((c) => c.path.startsWith("secret/data/app"))!.clientCert).toBe(false);
    expect(log.entries().some((l) => l.msg === "vault: logged in" && l.method === "cert")).toBe(true);
  });

  it("is a configuration error on http, or without a client certificate", () => {
    const log = captureLog();
    expect(() => vaultBackend(log, { address: "http://127.0.0.1:1", config: { auth: { method: "cert", client_cert: "/c", client_key: "/k" } } })).toThrow(/must be https/);
    expect(() => vaultBackend(log, { address: "https://127.0.0.1:1", config: { auth: { method: "cert" } } })).toThrow(/auth\.client_cert: is required/);
    expect(() => vaultBackend(log, { address: "https://127.0.0.1:1", config: { auth: { method: "cert", client_cert: "/c" } } })).toThrow(/client_cert and client_key go together/);
  });
});

describe("AppRole with secret_id_wrapped", () => {
  it("unwraps once, keeps the secret_id in the state directory, and logs in with it after a restart", async () => {
    const fake = await fakeWithSecret();
    const role = fake.addAppRole({ roleId: "role-web", roleName: "web", policies: ["secret/*"] });
    const w = fake.wrappedSecretId(role, { ttl: 300 });
    plantCanary(w.secretId, "secret-id");
    plantCanary(w.wrappingToken, "wrapping-token");
    const dir = tmp();
    writeFileSync(join(dir, "role_id"), "role-web\n");
    writeFileSync(join(dir, "secret_id"), w.wrappingToken + "\n");
    const auth = { method: "approle", role_id_file: join(dir, "role_id"), secret_id_file: join(dir, "secret_id"), secret_id_wrapped: true };
    const stateLog = captureLog();
    logs.push(stateLog);
    const state = new StateDir({ dir: join(dir, "state"), logger: stateLog.logger });
    const first = make(fake, { auth }, state);
    expect(field(await fetchVault(first.b, "secret/app"), "vault:secret/app#password")).toBe(value);
    expect(fake.wraps.unwraps).toBe(1);
    expect(fake.calls.find((c) => c.path === "auth/approle/login")!.body).toEqual({ role_id: "role-web", secret_id: w.secretId });
    // A forced re-login uses the secret_id held in memory: no second unwrap.
    fake.revokeLoginTokens();
    expect(field(await fetchVault(first.b, "secret/app"), "vault:secret/app#password")).toBe(value);
    expect(fake.wraps.unwraps).toBe(1);
    // Restart: a new backend on the same state directory; the file still holds the used wrapping token.
    const second = make(fake, { auth }, new StateDir({ dir: join(dir, "state"), logger: stateLog.logger }));
    expect(field(await fetchVault(second.b, "secret/app"), "vault:secret/app#password")).toBe(value);
    expect(fake.wraps.unwraps).toBe(1);
    expect(fake.count((c) => c.path === "sys/wrapping/unwrap")).toBe(1);
    // Without the state directory a restart cannot unwrap the used token: fatal, saying why.
    const third = make(fake, { auth });
    const err = await caught(() => fetchVault(third.b, "secret/app"));
    expect(err.code).toBe("FATAL");
    expect(err.message).toContain("wrapping token is not valid or does not exist");
    expect(err.message).toContain("a wrapping token works once");
    for (const l of [first.log, second.log, third.log]) {
      expect(leakText(l, [err])).not.toContain(w.secretId);
      expect(leakText(l, [err])).not.toContain(w.wrappingToken);
    }
  });

  it("keeps the login token beside a kept lease, so a restart renews the lease under the same token instead of re-minting", async () => {
    const fake = await fakeWithSecret();
    fake.mount("database", "database");
    fake.dbRole("database", "app", { ttl: 600, maxTtl: 7200, renewable: true, password: () => canary("dbpw") });
    fake.addAppRole({ roleId: "role-db", roleName: "db", secretId: canary("sid"), policies: ["database/*", "sys/leases/*"] });
    const dir = tmp();
    const auth = { method: "approle", role_id: "role-db", secret_id: fake.appRoles.at(-1)!.secretId };
    const stateLog = captureLog();
    logs.push(stateLog);
    const stateDir = join(dir, "state");
    const first = make(fake, { auth }, new StateDir({ dir: stateDir, logger: stateLog.logger }));
    const stateOf = (): StateDir => new StateDir({ dir: stateDir, logger: stateLog.logger });
    const fetchDb = (b: VaultBackend, st: StateDir): Promise<unknown> =>
      b.fetch({ backend: "vault", id: "database/creds/app", options: {} }, { signal: new AbortController().signal, logger: stateLog.logger, state: st.refs });
    const s1 = (await fetchDb(first.b, stateOf())) as { value: string };
    expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: 1, renewed: 0 });
    const logins = (): number => fake.count((c) => c.path === "auth/approle/login" && c.status === 200);
    expect(logins()).toBe(1);
    // Restart: the kept token is alive, so no login, and the lease made under it is renewed.
    const second = make(fake, { auth }, stateOf());
    const s2 = (await fetchDb(second.b, stateOf())) as { value: string };
    expect(s2.value).toBe(s1.value);
    expect(logins()).toBe(1);
    expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: 1, renewed: 1 });
    expect(second.log.entries().some((l) => l.msg === "vault: using the token kept in the state directory")).toBe(true);
    // The token revoked while emissary was down (its leases with it): log in, mint new credentials.
    fake.revokeLoginTokens();
    const third = make(fake, { auth }, stateOf());
    await fetchDb(third.b, stateOf());
    expect(logins()).toBe(2);
    expect(fake.leaseCounts("database/creds/app").minted).toBe(2);
  });

  it("needs secret_id_file", () => {
    const log = captureLog();
    expect(() => vaultBackend(log, { address: "http://127.0.0.1:1", config: { auth: { method: "approle", role_id: "r", secret_id_wrapped: true } } })).toThrow(/secret_id_wrapped: needs secret_id_file/);
  });
});
