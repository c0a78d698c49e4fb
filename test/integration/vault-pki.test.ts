/**
 * The vault backend's writes against the fake Vault's PKI engine: one POST per issuance, the
 * certificate held until `renew_at` of its validity (with per-issuance jitter, never after
 * expiry), kept in a real state directory and restored from it, `private_key: local` (a CSR goes
 * out, never a key), Vault's 400 as a fatal error naming the reference, raw PEM endpoints as text,
 * leased writes/reads restored and renewed instead of re-minted, and Vault's `warnings` (a capped
 * ttl) logged once per reference.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { VaultBackend } from "../../backends/vault.js";
import { StateDir } from "../../src/sources/state.js";
import { refKey, silentLogger, type FetchContext, type Secret, type SecretRef } from "../../src/index.js";
import { canary, plantCanary } from "../helpers/canary.js";
import { captureLog, caught, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import { FakeVault, type FakePki } from "../fakes/vault-server.js";

let t: number;
let fake: FakeVault;
let pki: FakePki;
let token: string;
const logs: CapturedLog[] = [];
const backends: VaultBackend[] = [];

function backend(opts: { random?: () => number } = {}): { b: VaultBackend; log: CapturedLog } {
  const log = captureLog();
  logs.push(log);
  const b = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: token }, now: () => t, ...opts });
  backends.push(b);
  return { b, log };
}

function stateDir(log: CapturedLog): StateDir {
  return new StateDir({ dir: join(mkdtempSync(join(tmpdir(), "emissary-pki-")), "state"), logger: log.logger });
}

const issueRef = (params: Record<string, string | number> = {}, options: SecretRef["options"] = {}): SecretRef => ({
  backend: "vault",
  id: "pki/issue/web",
  options,
  params: { common_name: "web.example.com", ttl: "1h", ...params },
});

function ctx(extra: Partial<FetchContext> = {}): FetchContext {
  return { signal: new AbortController().signal, logger: silentLogger(), ...extra };
}

const posts = (path = "pki/issue/web"): number => fake.count((c) => c.method === "POST" && c.path === path);
type CertData = { certificate: string; private_key: string; ca_chain: string[]; issuing_ca: string };
const dataOf = (s: Secret): CertData => s.data as CertData;

beforeEach(async () => {
  t = Date.now();
  fake = await FakeVault.start({ now: () => t });
  pki = await fake.mountPki("pki", { intermediate: true });
  pki.role("web", { allowed_domains: ["example.com"], allow_subdomains: true, max_ttl: "24h", key_type: "ec" });
  token = fake.createToken({ id: canary("token") });
});

afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  await fake.close();
});

afterAll(() => {
  for (const l of logs) l.flush("pki");
});

describe("issuing a certificate", () => {
  it("POSTs the params once, returns the response's data with a matching key, and holds it until the renewal point", async () => {
    const { b, log } = backend({ random: () => 0.5 });
    const ref = issueRef({ alt_names: "api.example.com", ip_sans: "127.0.0.1" });
    const s = await b.fetch(ref, ctx());
    expect(posts()).toBe(1);
    const call = fake.calls.find((c) => c.path === "pki/issue/web")!;
    expect(call.body).toEqual({ common_name: "web.example.com", ttl: "1h", alt_names: "api.example.com", ip_sans: "127.0.0.1" });
    const d = dataOf(s);
    plantCanary(d.private_key, "pki-key");
    plantCanary(d.certificate, "pki-cert");
    const cert = new X509Certificate(d.certificate);
    expect(cert.checkPrivateKey(createPrivateKey(d.private_key))).toBe(true);
    expect(cert.subjectAltName).toContain("DNS:api.example.com");
    expect(d.ca_chain).toHaveLength(2);
    expect(JSON.parse(s.value)).toEqual(s.data);
    // renew_at 0.67 of one hour, counted from the issue time (NotBefore is backdated 30 s), no jitter at random() = 0.5.
    expect(s.certificate).toMatchObject({ notAfter: Date.parse(cert.validTo), issuedAt: t, renewAt: t + Math.round(0.67 * (Date.parse(cert.validTo) - t)) });
    expect(Date.parse(cert.validFrom)).toBeLessThan(t);
    // The core comes back no later than the renewal point.
    expect(s.ttlMs! * 0.9 * 1.05).toBeLessThanOrEqual(s.certificate!.renewAt - t + 1);
    // Before the renewal point: the same certificate, no request.
    t = s.certificate!.renewAt - 1000;
    const again = await b.fetch(ref, ctx());
    expect(posts()).toBe(1);
    expect(again.value).toBe(s.value);
    expect(again.ttlMs).toBeGreaterThanOrEqual(250);
    // At the renewal point: a new certificate.
    t = s.certificate!.renewAt;
    const next = await b.fetch(ref, ctx());
    expect(posts()).toBe(2);
    expect(dataOf(next).certificate).not.toBe(d.certificate);
    expect(leakText(log, [])).not.toContain(d.private_key.split("\n")[1]!);
  });

  it("places the renewal at renew_at ± 5% of the validity, by the jitter draw, and never at or after expiry", async () => {
    const points: number[] = [];
    for (const r of [0, 0.25, 0.5, 0.75, 0.999999]) {
      const { b } = backend({ random: () => r });
      const s = await b.fetch(issueRef({ ttl: "10h" }, { renew_at: 0.5 }), ctx());
      const v = s.certificate!.notAfter - s.certificate!.issuedAt;
      points.push((s.certificate!.renewAt - s.certificate!.issuedAt) / v);
    }
    expect(points[0]).toBeCloseTo(0.45, 3);
    expect(points[2]).toBeCloseTo(0.5, 3);
    expect(points[4]).toBeCloseTo(0.55, 3);
    expect(points).toEqual([...points].sort());
    // renew_at 0.95 plus the full jitter would be the expiry itself: it stays before it.
    const { b } = backend({ random: () => 0.999999 });
    const late = await b.fetch(issueRef({ ttl: "10h" }, { renew_at: 0.95 }), ctx());
    expect(late.certificate!.renewAt).toBeLessThan(late.certificate!.notAfter);
    expect((late.certificate!.notAfter - late.certificate!.renewAt) / (late.certificate!.notAfter - late.certificate!.issuedAt)).toBeCloseTo(0.02, 3);
  });

  it("a denied common name is a fatal error with Vault's message and the reference", async () => {
    const { b } = backend();
    const err = await caught(() => b.fetch(issueRef({ common_name: "evil.attacker.org" }), ctx()));
    expect(err.code).toBe("FATAL");
    expect(err.message).toContain("vault:pki/issue/web");
    expect(err.message).toContain("common name evil.attacker.org not allowed by this role");
  });

  it("refuses a write to a KV mount, and private_key: local on a path that does not sign a CSR", async () => {
    fake.mount("secret", "kv", { version: 2 });
    const { b } = backend();
    const kv = await caught(() => b.fetch({ backend: "vault", id: "secret/app", options: {}, params: { a: "b" } }, ctx()));
    expect(kv.message).toMatch(/write to the KV mount secret\/ would overwrite the secret/);
    expect(fake.count((c) => c.method === "POST" && c.path.startsWith("secret/"))).toBe(0);
    expect(() => b.validate({ ...issueRef(), options: { private_key: "local" } })).toThrow(/only for a PKI sign path/);
    expect(() => b.validate({ backend: "vault", id: "secret/app", options: { renew_at: 0.6 } })).toThrow(/renew_at/);
  });

  it("reads raw PEM endpoints as text", async () => {
    const { b } = backend();
    const ca = await b.fetch({ backend: "vault", id: "pki/ca/pem", options: {} }, ctx());
    expect(ca.value).toBe(pki.caPem);
    const chain = await b.fetch({ backend: "vault", id: "pki/ca_chain", options: {} }, ctx());
    expect(chain.value).toBe(pki.chainPem.join("\n"));
    const crl = await b.fetch({ backend: "vault", id: "pki/crl/pem", options: {} }, ctx());
    expect(crl.value).toMatch(/^-----BEGIN X509 CRL-----/);
  });

  it("an HTML page (a proxy or a captive portal at the address) is not a value", async () => {
    const portal = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<html><body>${canary("portal")}</body></html>`);
    });
    await new Promise<void>((r) => portal.listen(0, "127.0.0.1", r));
    try {
      const log = captureLog();
      logs.push(log);
      const b = vaultBackend(log, { address: `http://127.0.0.1:${(portal.address() as AddressInfo).port}`, env: { VAULT_TOKEN: token } });
      backends.push(b);
      const err = await caught(() => b.fetch({ backend: "vault", id: "pki/ca/pem", options: {} }, ctx()));
      expect(err.code).toBe("TRANSIENT");
      expect(err.message).toBe("vault:pki/ca/pem: the response from pki/ca/pem is not JSON (status 200, text/html)");
    } finally {
      await new Promise<void>((r) => portal.close(() => r()));
    }
  });
});

describe("private_key: local", () => {
  it("sends a CSR with the params' names and never a private key; the local key matches the certificate", async () => {
    pki.role("csr", { allowed_domains: ["example.com"], allow_subdomains: true, key_type: "any" });
    const { b, log } = backend();
    for (const options of [{ private_key: "local" }, { private_key: "local", key_type: "rsa", key_bits: 2048 }] as Record<string, string | number>[]) {
      const ref: SecretRef = { backend: "vault", id: "pki/sign/csr", options, params: { common_name: "local.example.com", alt_names: "a.example.com", ip_sans: "10.0.0.1", ttl: "1h" } };
      const s = await b.fetch(ref, ctx());
      const d = dataOf(s);
      plantCanary(d.private_key, "local-key");
      const call = fake.calls.filter((c) => c.path === "pki/sign/csr").at(-1)!;
      expect(typeof call.body.csr).toBe("string");
      expect(JSON.stringify(call.body)).not.toMatch(/PRIVATE KEY/);
      expect(call.body.csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
      const signed = pki.issued.at(-1)!;
      expect(signed.via).toBe("sign");
      const cert = new X509Certificate(d.certificate);
      expect(cert.checkPrivateKey(createPrivateKey(d.private_key))).toBe(true);
      expect(cert.subject).toBe("CN=local.example.com");
      expect(cert.subjectAltName).toContain("DNS:a.example.com");
      expect(cert.subjectAltName).toContain("IP Address:10.0.0.1");
      expect(d.private_key).toMatch(options.key_type === "rsa" ? /^-----BEGIN RSA PRIVATE KEY-----/ : /^-----BEGIN EC PRIVATE KEY-----/);
      expect(leakText(log, [])).not.toContain(d.private_key.split("\n")[1]!);
    }
  });
});

/** A proxy in front of the fake that adds `extra` to the `warnings` of every 200 answer of a POST to a sign endpoint. */
async function signWarningProxy(extra: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const h of ["x-vault-token", "x-vault-namespace", "x-vault-request", "content-type"]) if (typeof req.headers[h] === "string") headers[h] = req.headers[h];
      void fetch(fake.url + req.url, { method: req.method!, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) }).then(async (r) => {
        let text = await r.text();
        if (req.method === "POST" && r.status === 200 && /\/sign\//.test(req.url ?? "")) {
          const body = JSON.parse(text) as { warnings?: string[] | null };
          text = JSON.stringify({ ...body, warnings: [...(body.warnings ?? []), extra] });
        }
        res.writeHead(r.status, { "content-type": "application/json" });
        res.end(text);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("Vault's warnings", () => {
  const warned = (log: CapturedLog): Record<string, unknown>[] => log.entries().filter((e) => e.msg === "vault: Vault answered with a warning");

  it("a ttl above the role's max: Vault's warning is logged at warn, once per reference and text, naming the reference and the path, never the data", async () => {
    const { b, log } = backend({ random: () => 0.5 });
    const ref = issueRef({ ttl: "48h" });
    const s = await b.fetch(ref, ctx());
    const d = dataOf(s);
    plantCanary(d.private_key, "warned-key");
    const w = warned(log);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ level: 40, ref: "vault:pki/issue/web", path: "pki/issue/web", warning: `TTL "48h0m0s" is longer than permitted maxTTL "24h0m0s", so maxTTL is being used` });
    expect(Object.keys(w[0]!)).not.toContain("data");
    // The capped certificate is re-issued at its renewal point: the same warning is not repeated.
    t = s.certificate!.renewAt;
    await b.fetch(ref, ctx());
    expect(posts()).toBe(2);
    expect(warned(log)).toHaveLength(1);
    // Another reference (other params) says it once too; a ttl within the max says nothing.
    await b.fetch(issueRef({ ttl: "48h", common_name: "api.example.com" }), ctx());
    await b.fetch(issueRef({ ttl: "2h", common_name: "ok.example.com" }), ctx());
    expect(warned(log)).toHaveLength(2);
    expect(leakText(log, [])).not.toContain(d.private_key.split("\n")[1]!);
    expect(leakText(log, [])).not.toContain(d.certificate.split("\n")[1]!);
  });

  it("private_key: local: the max-TTL warning is logged, a warning about use_csr_ fields is dropped", async () => {
    pki.role("csr", { allowed_domains: ["example.com"], allow_subdomains: true, key_type: "any", max_ttl: "24h" });
    // The fake does not say it; a proxy adds what a role's CSR settings might make Vault say.
    const proxy = await signWarningProxy(`the common name in the CSR is used as use_csr_common_name is true`);
    try {
      const log = captureLog();
      logs.push(log);
      const b = vaultBackend(log, { address: proxy.url, env: { VAULT_TOKEN: token }, now: () => t });
      backends.push(b);
      const s = await b.fetch({ backend: "vault", id: "pki/sign/csr", options: { private_key: "local" }, params: { common_name: "local.example.com", ttl: "48h" } }, ctx());
      plantCanary(dataOf(s).private_key, "local-warned-key");
      const w = warned(log);
      expect(w.map((e) => e.warning)).toEqual([`TTL "48h0m0s" is longer than permitted maxTTL "24h0m0s", so maxTTL is being used`]);
      expect(w[0]).toMatchObject({ ref: "vault:pki/sign/csr", path: "pki/sign/csr" });
      expect(leakText(log, [])).not.toContain(dataOf(s).private_key.split("\n")[1]!);
    } finally {
      await proxy.close();
    }
  });
});

describe("the state directory", () => {
  it("keeps the issuance; a new backend (a restart) uses it without a POST until the renewal point", async () => {
    const first = backend();
    const state = stateDir(first.log);
    const ref = issueRef();
    const key = refKey(ref);
    const s = await first.b.fetch(ref, ctx({ state: state.refs }));
    expect(posts()).toBe(1);
    const dir = state.dir;
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    // Restart: a new backend and a new state object on the same directory.
    const second = backend();
    const state2 = new StateDir({ dir, logger: second.log.logger });
    const r = await second.b.fetch(ref, ctx({ state: state2.refs }));
    expect(posts()).toBe(1);
    expect(r.value).toBe(s.value);
    expect(r.certificate!.renewAt).toBe(s.certificate!.renewAt);
    expect(second.log.entries().some((l) => l.msg === "vault: using the kept certificate")).toBe(true);
    // Changed params: another reference, issued anew; the old entry goes when no template uses it.
    const changed = issueRef({ ttl: "2h" });
    expect(refKey(changed)).not.toBe(key);
    await second.b.fetch(changed, ctx({ state: state2.refs }));
    expect(posts()).toBe(2);
    expect(await state2.retain(new Set([refKey(changed)]))).toBe(1);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it("a corrupt entry is ignored with a warning and the certificate issued anew", async () => {
    const first = backend();
    const state = stateDir(first.log);
    await first.b.fetch(issueRef(), ctx({ state: state.refs }));
    const file = join(state.dir, readdirSync(state.dir)[0]!);
    writeFileSync(file, '{"emissary_state":1,"key":"trunc');
    const second = backend();
    const state2 = new StateDir({ dir: state.dir, logger: second.log.logger });
    await second.b.fetch(issueRef(), ctx({ state: state2.refs }));
    expect(posts()).toBe(2);
    expect(second.log.entries().filter((l) => l.level === 40 && String(l.msg).includes("corrupt"))).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, "utf8")).value.kind).toBe("issued");
  });

  it("render (issue: false) uses what is kept, and names what it would issue otherwise", async () => {
    const first = backend();
    const state = stateDir(first.log);
    await first.b.fetch(issueRef(), ctx({ state: state.refs }));
    const ro = new StateDir({ dir: state.dir, logger: first.log.logger, readOnly: true });
    const r = await backend().b.fetch(issueRef(), ctx({ state: ro.refs, issue: false }));
    expect(JSON.parse(r.value).certificate).toMatch(/BEGIN CERTIFICATE/);
    const err = await caught(() => backend().b.fetch(issueRef({ ttl: "3h" }), ctx({ state: ro.refs, issue: false })));
    expect(err.code).toBe("WOULD_ISSUE");
    expect(err.message).toContain("vault:pki/issue/web");
    expect(posts()).toBe(1);
  });

  it("a leased read kept there is renewed after a restart, not read again", async () => {
    fake.mount("database", "database");
    fake.dbRole("database", "app", { ttl: 600, maxTtl: 7200, renewable: true, password: () => canary("dbpw") });
    const first = backend();
    const state = stateDir(first.log);
    const ref: SecretRef = { backend: "vault", id: "database/creds/app", options: {} };
    const s = await first.b.fetch(ref, ctx({ state: state.refs }));
    expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: 1, renewed: 0 });
    t += 60_000;
    const second = backend();
    const r = await second.b.fetch(ref, ctx({ state: new StateDir({ dir: state.dir, logger: second.log.logger }).refs }));
    expect(r.value).toBe(s.value);
    expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: 1, renewed: 1 });
    // A lease made under another token is not restored: Vault revokes a token's leases with it.
    const other = backend();
    const otherToken = fake.createToken({ name: "other" });
    const b3 = vaultBackend(other.log, { address: fake.url, env: { VAULT_TOKEN: otherToken }, now: () => t });
    backends.push(b3);
    await b3.fetch(ref, ctx({ state: new StateDir({ dir: state.dir, logger: other.log.logger }).refs }));
    expect(fake.leaseCounts("database/creds/app").minted).toBe(2);
  });
});
