/**
 * The fake Vault's PKI engine, checked with plain fetch and node:crypto against Vault's documented
 * behaviour (api-docs/secret/pki "Generate certificate and key", "Sign certificate", "Read issuer
 * certificate", "Read default issuer certificate chain", "Read issuer CRL"; error texts from
 * OpenBao's builtin/logical/pki). No emissary code is involved.
 */
import "reflect-metadata";
import { PublicKey, X509Crl } from "@peculiar/x509";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeVault, type FakePki } from "../fakes/vault-server.js";
import { newCsr, newKeyPair } from "../fakes/x509-util.js";

let fake: FakeVault;
let pki: FakePki;
let root: string;

beforeAll(async () => {
  fake = await FakeVault.start();
  pki = await fake.mountPki();
  pki.role("web", { allowed_domains: ["example.com"], allow_subdomains: true, max_ttl: "1h", ttl: "10m", key_type: "ec" });
  pki.role("rsa", { allowed_domains: "example.com", allow_bare_domains: true, allow_subdomains: true });
  pki.role("any", { allow_any_name: true, allow_ip_sans: false, key_type: "ec" });
  root = fake.createToken({ name: "root" });
});

afterAll(async () => {
  await fake.close();
});

interface Res {
  status: number;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

async function call(method: string, path: string, opts: { token?: string | null; body?: unknown } = {}): Promise<Res> {
  const token = opts.token === undefined ? root : opts.token;
  const res = await fetch(`${fake.url}/v1/${path}`, {
    method,
    headers: { ...(token ? { "X-Vault-Token": token } : {}), ...(opts.body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* raw */
  }
  return { status: res.status, body, text, headers: res.headers };
}

type CertData = { certificate: string; issuing_ca: string; ca_chain: string[]; private_key: string; private_key_type: string; serial_number: string; expiration: number };
const data = (r: Res): CertData => r.body.data as CertData;
const ENVELOPE = ["auth", "data", "lease_duration", "lease_id", "renewable", "request_id", "warnings", "wrap_info"];

describe("issue", () => {
  it("returns a real certificate signed by the CA, with its private key, CN, SANs and validity", async () => {
    const before = Date.now();
    const r = await call("POST", "pki/issue/web", { body: { common_name: "web.example.com", alt_names: "alt.example.com,api.example.com", ip_sans: "127.0.0.1", ttl: "5m" } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(ENVELOPE);
    expect(r.body).toMatchObject({ lease_id: "", renewable: false, lease_duration: 0, auth: null, wrap_info: null });
    expect(Object.keys(r.body.data as object).sort()).toEqual(["ca_chain", "certificate", "expiration", "issuing_ca", "not_before", "private_key", "private_key_type", "serial_number"]);
    const d = data(r);
    const cert = new X509Certificate(d.certificate);
    const ca = new X509Certificate(d.issuing_ca);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(d.private_key))).toBe(true);
    expect(d.private_key).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    expect(d.private_key_type).toBe("ec");
    expect(cert.subject).toBe("CN=web.example.com");
    expect(cert.subjectAltName).toBe("DNS:web.example.com, DNS:alt.example.com, DNS:api.example.com, IP Address:127.0.0.1");
    expect(cert.checkHost("api.example.com")).toBe("api.example.com");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    // 5 minutes from now; notBefore 30 s back (Vault's not_before_duration).
    const to = Date.parse(cert.validTo);
    expect(to).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 300_000);
    expect(to).toBeLessThanOrEqual(Date.now() + 300_000);
    expect(to - Date.parse(cert.validFrom)).toBe(330_000);
    expect(d.expiration).toBe(to / 1000);
    expect(d.serial_number).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2})+$/);
    expect(d.serial_number.replace(/:/g, "")).toBe(cert.serialNumber.toLowerCase());
    expect(d.ca_chain).toEqual([d.issuing_ca]);
    expect(d.issuing_ca).toBe((await call("GET", "pki/ca/pem", { token: null })).text);
  });

  it("uses the role's key type: RSA 2048 by default, as a PKCS#1 PEM (private_key_format pkcs8 gives PKCS#8)", async () => {
    const r = await call("POST", "pki/issue/rsa", { body: { common_name: "example.com" } });
    expect(r.status).toBe(200);
    const d = data(r);
    const key = createPrivateKey(d.private_key);
    expect(d.private_key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    expect(d.private_key_type).toBe("rsa");
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(new X509Certificate(d.certificate).checkPrivateKey(key)).toBe(true);
    // No ttl on the role or the request: the mount's default (768h).
    const cert = new X509Certificate(d.certificate);
    expect(Date.parse(cert.validTo) - Date.now()).toBeGreaterThan(767 * 3600_000);
    const p8 = await call("POST", "pki/issue/rsa", { body: { common_name: "example.com", private_key_format: "pkcs8" } });
    expect(data(p8).private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it("takes TTLs of a few seconds, and caps a TTL above the role's max_ttl with Vault's warning", async () => {
    const short = data(await call("POST", "pki/issue/web", { body: { common_name: "a.example.com", ttl: "3s" } }));
    const cert = new X509Certificate(short.certificate);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBe(33_000);
    const long = await call("POST", "pki/issue/web", { body: { common_name: "a.example.com", ttl: "48h" } });
    expect(long.status).toBe(200);
    expect(long.body.warnings).toEqual([`TTL "48h0m0s" is longer than permitted maxTTL "1h0m0s", so maxTTL is being used`]);
    const c = new X509Certificate(data(long).certificate);
    expect(Date.parse(c.validTo) - Date.parse(c.validFrom)).toBe(3600_000 + 30_000);
    // The role's ttl when the request has none.
    const def = new X509Certificate(data(await call("POST", "pki/issue/web", { body: { common_name: "a.example.com" } })).certificate);
    expect(Date.parse(def.validTo) - Date.parse(def.validFrom)).toBe(600_000 + 30_000);
  });

  it("format der returns base64 DER; pem_bundle puts key, certificate and chain in `certificate`", async () => {
    const der = data(await call("POST", "pki/issue/web", { body: { common_name: "d.example.com", format: "der" } }));
    const cert = new X509Certificate(Buffer.from(der.certificate, "base64"));
    expect(cert.subject).toBe("CN=d.example.com");
    expect(createPrivateKey({ key: Buffer.from(der.private_key, "base64"), format: "der", type: "sec1" }).asymmetricKeyType).toBe("ec");
    const bundle = data(await call("POST", "pki/issue/web", { body: { common_name: "b.example.com", format: "pem_bundle" } }));
    expect(bundle.certificate.startsWith(bundle.private_key)).toBe(true);
    expect(bundle.certificate.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect((await call("POST", "pki/issue/web", { body: { common_name: "b.example.com", format: "p12" } })).body).toEqual({ errors: [`the "format" path parameter must be "pem", "der", or "pem_bundle"`] });
  });

  it("answers a GET on issue and sign with 405 'unsupported operation'", async () => {
    for (const path of ["pki/issue/web", "pki/sign/web"]) {
      const r = await call("GET", path);
      expect(r.status).toBe(405);
      expect(r.text).toBe(JSON.stringify({ errors: ["1 error occurred:\n\t* unsupported operation\n\n"] }));
    }
  });

  it("refuses names the role does not allow with 400 and Vault's error text", async () => {
    const deny = async (role: string, body: Record<string, unknown>): Promise<unknown> => {
      const r = await call("POST", `pki/issue/${role}`, { body });
      expect(r.status).toBe(400);
      return r.body;
    };
    expect(await deny("web", { common_name: "evil.org" })).toEqual({ errors: ["common name evil.org not allowed by this role"] });
    // allowed_domains without allow_bare_domains: the domain itself is refused, subdomains are fine.
    expect(await deny("web", { common_name: "example.com" })).toEqual({ errors: ["common name example.com not allowed by this role"] });
    expect(await deny("web", { common_name: "ok.example.com", alt_names: "evil.org" })).toEqual({ errors: ["subject alternate name evil.org not allowed by this role"] });
    expect(await deny("web", { common_name: "ok.example.com", ip_sans: "not-an-ip" })).toEqual({ errors: [`the value "not-an-ip" is not a valid IP address`] });
    expect(await deny("any", { common_name: "anything.test", ip_sans: "10.0.0.1" })).toEqual({ errors: ["IP Subject Alternative Names are not allowed in this role, but was provided via the API"] });
    expect(await deny("web", {})).toEqual({ errors: [`the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`] });
    expect(await deny("nope", { common_name: "x.example.com" })).toEqual({ errors: ["unknown role: nope"] });
    // The same names pass where the role allows them.
    expect((await call("POST", "pki/issue/rsa", { body: { common_name: "example.com" } })).status).toBe(200);
    expect((await call("POST", "pki/issue/any", { body: { common_name: "anything.test" } })).status).toBe(200);
    expect((await call("POST", "pki/issue/web", { body: { common_name: "localhost" } })).status).toBe(200);
  });

  it("a TTL past the CA's expiry is refused (leaf_not_after_behavior err)", async () => {
    const r = await call("POST", "pki/issue/rsa", { body: { common_name: "example.com", ttl: "700h" } });
    expect(r.status).toBe(200);
    const short = await fake.mountPki("pki_short", { caTtl: 3600 });
    short.role("r", { allow_any_name: true, key_type: "ec", max_ttl: "100h" });
    const bad = await call("POST", "pki_short/issue/r", { body: { common_name: "x", ttl: "2h" } });
    expect(bad.status).toBe(400);
    expect((bad.body.errors as string[])[0]).toMatch(/^cannot satisfy request, as TTL would result in notAfter of .* that is beyond the expiration of the CA certificate at /);
  });
});

describe("sign", () => {
  it("certifies the CSR's public key, returns no private key, and the fake records the CSR", async () => {
    const key = await newKeyPair({ type: "ec", bits: 256 });
    const csr = await newCsr(key, { type: "ec", bits: 256 }, { commonName: "svc.example.com", dnsNames: ["svc2.example.com"] });
    const posts = fake.count((c) => c.method === "POST" && c.path === "pki/sign/web");
    const r = await call("PUT", "pki/sign/web", { body: { csr, common_name: "ignored.example.com", ttl: "2m" } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.data as object).sort()).toEqual(["ca_chain", "certificate", "expiration", "issuing_ca", "not_before", "serial_number"]);
    const cert = new X509Certificate(data(r).certificate);
    expect(cert.verify(new X509Certificate(data(r).issuing_ca).publicKey)).toBe(true);
    expect(cert.publicKey.export({ format: "der", type: "spki" }).equals(key.spki)).toBe(true);
    expect(cert.checkPrivateKey(key.privateKey)).toBe(true);
    // use_csr_common_name / use_csr_sans (Vault's defaults): names come from the CSR, the CN
    // appended to the CSR's DNS names; the request's common_name is ignored.
    expect(cert.subject).toBe("CN=svc.example.com");
    expect(cert.subjectAltName).toBe("DNS:svc2.example.com, DNS:svc.example.com");
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBe(150_000);
    // What the fake saw: one more POST (a PUT on the wire), carrying the CSR and no private key.
    expect(fake.count((c) => c.method === "POST" && c.path === "pki/sign/web")).toBe(posts + 1);
    const seen = fake.calls.at(-1)!;
    expect(seen.httpMethod).toBe("PUT");
    expect(seen.body.csr).toBe(csr);
    expect(JSON.stringify(seen.body)).not.toContain("PRIVATE KEY");
    const issued = pki.issued.at(-1)!;
    expect(issued).toMatchObject({ via: "sign", role: "web", commonName: "svc.example.com", serialNumber: data(r).serial_number });
    expect(issued.csr?.signatureValid).toBe(true);
  });

  it("checks the CSR: key type against the role, names against the role, empty or garbage input", async () => {
    const rsa = await newKeyPair({ type: "rsa", bits: 2048 });
    const rsaCsr = await newCsr(rsa, { type: "rsa", bits: 2048 }, { commonName: "x.example.com" });
    expect((await call("POST", "pki/sign/web", { body: { csr: rsaCsr } })).body).toEqual({ errors: ["role requires keys of type ec"] });
    expect((await call("POST", "pki/sign/rsa", { body: { csr: rsaCsr } })).status).toBe(200);
    const ec = await newKeyPair({ type: "ec", bits: 256 });
    const evil = await newCsr(ec, { type: "ec", bits: 256 }, { commonName: "evil.org" });
    expect((await call("POST", "pki/sign/web", { body: { csr: evil } })).body).toEqual({ errors: ["common name evil.org not allowed by this role"] });
    expect((await call("POST", "pki/sign/web", { body: {} })).body).toEqual({ errors: [`"csr" is empty`] });
    expect((await call("POST", "pki/sign/web", { body: { csr: "hello" } })).body).toEqual({ errors: ["csr contains no data"] });
  });
});

describe("CA, chain and CRL endpoints", () => {
  it("serve raw PEM/DER without a token, with Vault's content types and no trailing newline", async () => {
    const pem = await call("GET", "pki/ca/pem", { token: null });
    expect(pem.status).toBe(200);
    expect(pem.headers.get("content-type")).toBe("application/pem-certificate-chain");
    expect(pem.text).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----$/);
    const ca = new X509Certificate(pem.text);
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    const der = await fetch(`${fake.url}/v1/pki/ca`);
    expect(der.headers.get("content-type")).toBe("application/pkix-cert");
    expect(new X509Certificate(Buffer.from(await der.arrayBuffer())).fingerprint256).toBe(ca.fingerprint256);
    const chain = await call("GET", "pki/ca_chain", { token: null });
    expect(chain.headers.get("content-type")).toBe("application/pkix-cert");
    expect(chain.text).toBe(pem.text);
    const json = await call("GET", "pki/cert/ca", { token: null });
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(json.body.data).toEqual({ certificate: pem.text, revocation_time: 0, revocation_time_rfc3339: "" });
  });

  it("the CRL is signed by the CA and lists revoked serials", async () => {
    const d = data(await call("POST", "pki/issue/web", { body: { common_name: "gone.example.com" } }));
    const rev = await call("POST", "pki/revoke", { body: { serial_number: d.serial_number } });
    expect(rev.body.data).toMatchObject({ state: "revoked", revocation_time: expect.any(Number) });
    const r = await call("GET", "pki/crl/pem", { token: null });
    expect(r.headers.get("content-type")).toBe("application/x-pem-file");
    expect(r.text).toMatch(/^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----$/);
    const crl = new X509Crl(r.text.replace(/X509 CRL/g, "CRL"));
    const caPem = (await call("GET", "pki/ca/pem", { token: null })).text;
    expect(await crl.verify({ publicKey: new PublicKey(new X509Certificate(caPem).publicKey.export({ format: "der", type: "spki" })) })).toBe(true);
    expect(crl.entries.map((e) => e.serialNumber.toLowerCase())).toContain(d.serial_number.replace(/:/g, ""));
    const byserial = await call("GET", `pki/cert/${d.serial_number}`, { token: null });
    expect(byserial.body.data).toMatchObject({ certificate: d.certificate, revocation_time: expect.any(Number) });
    expect((await call("GET", "pki/cert/00:11", { token: null })).status).toBe(404);
  });

  it("an intermediate at another mount: ca_chain holds the intermediate then the root, and the leaf verifies up to the root", async () => {
    const int = await fake.mountPki("pki_int", { intermediate: true, caKey: { type: "rsa", bits: 2048 } });
    int.role("svc", { allow_any_name: true, key_type: "ec", key_bits: 384 });
    const d = data(await call("POST", "pki_int/issue/svc", { body: { common_name: "svc.internal" } }));
    expect(d.ca_chain).toHaveLength(2);
    expect(d.ca_chain[0]).toBe(d.issuing_ca);
    const [inter, top] = d.ca_chain.map((p) => new X509Certificate(p));
    const leaf = new X509Certificate(d.certificate);
    expect(leaf.verify(inter!.publicKey)).toBe(true);
    expect(inter!.verify(top!.publicKey)).toBe(true);
    expect(top!.verify(top!.publicKey)).toBe(true);
    expect(top!.toString()).toBe(int.rootPem + "\n");
    expect(createPrivateKey(d.private_key).asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect((await call("GET", "pki_int/ca_chain", { token: null })).text).toBe(d.ca_chain.join("\n"));
  });
});

describe("roles and policies", () => {
  it("a role written through the API reads back with Vault's defaults", async () => {
    const w = await call("POST", "pki/roles/api", { body: { allowed_domains: "corp.test", allow_subdomains: true, max_ttl: "72h" } });
    expect(w.status).toBe(200);
    const r = await call("GET", "pki/roles/api");
    expect(r.body.data).toMatchObject({ allowed_domains: ["corp.test"], allow_subdomains: true, allow_bare_domains: false, allow_ip_sans: true, allow_localhost: true, key_type: "rsa", key_bits: 2048, max_ttl: 259200, ttl: 0 });
    expect((await call("GET", "pki/roles/missing")).status).toBe(404);
  });

  it("the token needs update on the path: a policy for issue does not grant sign", async () => {
    fake.setPolicy("issue-web", { "pki/issue/web": ["update"] });
    const tok = fake.createToken({ policies: ["issue-web"] });
    expect((await call("POST", "pki/issue/web", { token: tok, body: { common_name: "p.example.com" } })).status).toBe(200);
    const denied = await call("POST", "pki/sign/web", { token: tok, body: { csr: "x" } });
    expect(denied.status).toBe(403);
    expect(denied.body).toEqual({ errors: ["1 error occurred:\n\t* permission denied\n\n"] });
    expect((await call("POST", "pki/issue/web", { token: "hvs.bogus", body: { common_name: "p.example.com" } })).status).toBe(403);
  });
});
