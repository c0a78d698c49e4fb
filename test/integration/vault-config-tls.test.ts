/**
 * The `backends.vault` section and the VAULT_* variables, and TLS against an HTTPS fake Vault:
 * CA from ca_cert / VAULT_CACERT, VAULT_SKIP_VERIFY parsed as a boolean ("false" verifies),
 * client certificates, tls_server_name. Certificates are made with the openssl CLI.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, classifyError, silentLogger } from "../../src/index.js";
import createVaultBackend, { parseBool, parseVaultConfig } from "../../backends/vault.js";
import { canary } from "../helpers/canary.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, caught, fetchVault, field, leakText, vaultBackend } from "../fakes/vault-helpers.js";

const log = captureLog();
const errors: unknown[] = [];

afterAll(() => {
  log.flush("config-tls");
  expect(leakText(log, errors)).not.toContain("CANARY");
});

function configError(config: Record<string, unknown>, env: Record<string, string> = {}): ConfigError {
  try {
    createVaultBackend({ config, env, logger: silentLogger(), configFile: "/etc/emissary.yaml" });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("configuration", () => {
  it("an unknown key is a ConfigError naming the key path", () => {
    const e = configError({ adress: "https://v:8200" });
    expect(e.field).toBe("backends.vault.adress");
    expect(e.message).toContain("backends.vault.adress");
    expect(e.file).toBe("/etc/emissary.yaml");
  });

  it("an unknown auth key names backends.vault.auth.<key>", () => {
    const e = configError({ auth: { method: "approle", role_id_file: "/r", rol_id: "x" } });
    expect(e.field).toBe("backends.vault.auth.rol_id");
  });

  it.each([
    [{ auth: { method: "kerberos" } }, "backends.vault.auth.method"],
    [{ auth: { method: "approle" } }, "backends.vault.auth.role_id_file"],
    [{ auth: { method: "token_file" } }, "backends.vault.auth.path"],
    [{ auth: { method: "approle", role_id: "a", role_id_file: "/b" } }, "backends.vault.auth.role_id"],
    [{ address: "ftp://vault" }, "backends.vault.address"],
    [{ skip_verify: "perhaps" }, "backends.vault.skip_verify"],
    [{ client_cert: "/c.pem" }, "backends.vault.client_key"],
    [{ timeout: "soon" }, "backends.vault.timeout"],
    [{ auth: { method: "aws", region: "Not A Region" } }, "backends.vault.auth.region"],
  ])("%j is rejected naming %s", (config, fieldPath) => {
    expect(configError(config).field).toBe(fieldPath);
  });

  it("VAULT_SKIP_VERIFY that is not a boolean is a ConfigError naming the variable", () => {
    expect(configError({}, { VAULT_SKIP_VERIFY: "maybe" }).field).toBe("VAULT_SKIP_VERIFY");
  });

  it("parses booleans as Go's strconv.ParseBool: 'false' and '0' mean false", () => {
    for (const v of ["false", "FALSE", "0", "f", "F"]) expect(parseBool(v)).toBe(false);
    for (const v of ["true", "True", "1", "t"]) expect(parseBool(v)).toBe(true);
    expect(parseBool("yes please")).toBeUndefined();
  });

  it("environment variables win over the config file; defaults as the Vault CLI", () => {
    const s = parseVaultConfig(
      { address: "https://from-config:8200", namespace: "cfg", ca_cert: "/cfg.pem", skip_verify: true, timeout: "10s", refresh: "1m" },
      { VAULT_ADDR: "http://127.0.0.1:8200/", VAULT_NAMESPACE: "/env/", VAULT_CACERT: "/env.pem", VAULT_SKIP_VERIFY: "false", VAULT_CLIENT_TIMEOUT: "5" },
    );
    expect(s).toMatchObject({ address: "http://127.0.0.1:8200", namespace: "env", caCert: "/env.pem", skipVerify: false, timeoutMs: 5000 });
    const d = parseVaultConfig({}, {});
    expect(d).toMatchObject({ address: "https://127.0.0.1:8200", skipVerify: false, timeoutMs: 30_000 });
    expect(d.auth).toMatchObject({ method: "token", source: "none" });
    expect(parseVaultConfig({ timeout: "10s" }, {}).timeoutMs).toBe(10_000);
  });

  it("auth defaults: approle mount approle, aws mount aws with the global STS endpoint, token_file not renewed", () => {
    expect(parseVaultConfig({ auth: { method: "approle", role_id_file: "/r" } }, {}).auth).toMatchObject({ mount: "approle", renew: true });
    expect(parseVaultConfig({ auth: { method: "aws" } }, {}).auth).toMatchObject({ mount: "aws", region: "us-east-1", stsEndpoint: "https://sts.amazonaws.com/" });
    expect(parseVaultConfig({ auth: { method: "aws", region: "eu-west-1" } }, {}).auth).toMatchObject({ stsEndpoint: "https://sts.eu-west-1.amazonaws.com/" });
    expect(parseVaultConfig({ auth: { method: "token_file", path: "/run/token" } }, {}).auth).toMatchObject({ renew: false });
  });
});

// ---- TLS ----

function haveOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const OPENSSL = haveOpenssl();
if (!OPENSSL) {
  if (process.env.CI === "true") throw new Error("openssl is required for the vault TLS tests in CI");
  process.stdout.write("vault TLS tests skipped: the openssl CLI is not installed\n");
}

describe.runIf(OPENSSL)("TLS", () => {
  let dir: string;
  let fake: FakeVault;
  let mtls: FakeVault;
  let named: FakeVault;
  let token: string;
  const value = canary("tlsvalue");

  function ossl(...args: string[]): void {
    execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  }

  function leaf(name: string, san: string, usage: string): void {
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `${san ? `subjectAltName=${san}\n` : ""}extendedKeyUsage=${usage}\n`);
    ossl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "emissary-vault-tls-"));
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=emissary test CA");
    leaf("server", "IP:127.0.0.1,DNS:localhost", "serverAuth");
    leaf("named", "DNS:vault.internal", "serverAuth");
    leaf("client", "", "clientAuth");
    const read = (f: string): Buffer => readFileSync(join(dir, f));
    fake = await FakeVault.start({ tls: { key: read("server.key"), cert: read("server.pem") } });
    mtls = await FakeVault.start({ tls: { key: read("server.key"), cert: read("server.pem"), ca: read("ca.pem"), requestCert: true } });
    named = await FakeVault.start({ tls: { key: read("named.key"), cert: read("named.pem") } });
    token = canary("token");
    for (const f of [fake, mtls, named]) {
      f.mount("secret", "kv", { version: 2 });
      f.kvPut("secret/app", { v: value });
      f.createToken({ id: token });
    }
  });

  afterAll(async () => {
    await Promise.all([fake?.close(), mtls?.close(), named?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function attempt(address: string, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<string | Error> {
    const b = vaultBackend(log, { address, config, env: { VAULT_TOKEN: token, ...env } });
    try {
      return field(await fetchVault(b, "secret/app"), "vault:x#v");
    } catch (err) {
      errors.push(err);
      return err as Error;
    } finally {
      await b.close();
    }
  }

  it("trusts the CA from ca_cert, or from VAULT_CACERT", async () => {
    expect(await attempt(fake.url, { ca_cert: join(dir, "ca.pem") })).toBe(value);
    expect(await attempt(fake.url, {}, { VAULT_CACERT: join(dir, "ca.pem") })).toBe(value);
  });

  it("without the CA, verification fails loudly (fatal), naming TLS and what to set", async () => {
    const err = await attempt(fake.url, {});
    expect(err).toBeInstanceOf(Error);
    expect(classifyError(err)).toBe("fatal");
    expect((err as Error).message).toMatch(/TLS: .*ca_cert/);
  });

  it('VAULT_SKIP_VERIFY="false" and "0" still verify (unlike node-vault)', async () => {
    for (const v of ["false", "0"]) {
      const err = await attempt(fake.url, {}, { VAULT_SKIP_VERIFY: v });
      expect(err).toBeInstanceOf(Error);
    }
  });

  it('VAULT_SKIP_VERIFY="true" or skip_verify: true skip verification', async () => {
    expect(await attempt(fake.url, {}, { VAULT_SKIP_VERIFY: "true" })).toBe(value);
    expect(await attempt(fake.url, { skip_verify: true })).toBe(value);
  });

  it("presents a client certificate when the server asks for one", async () => {
    const ca = join(dir, "ca.pem");
    const err = await attempt(mtls.url, { ca_cert: ca });
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("client_cert");
    expect(await attempt(mtls.url, { ca_cert: ca, client_cert: join(dir, "client.pem"), client_key: join(dir, "client.key") })).toBe(value);
  });

  it("checks the certificate against tls_server_name when given", async () => {
    const ca = join(dir, "ca.pem");
    const err = await attempt(named.url, { ca_cert: ca });
    expect((err as Error).message).toContain("tls_server_name");
    expect(await attempt(named.url, { ca_cert: ca, tls_server_name: "vault.internal" })).toBe(value);
  });

  it("a CA file that cannot be read is fatal and names the file", async () => {
    const missing = join(dir, "nope.pem");
    const err = (await caught(async () => {
      const r = await attempt(fake.url, { ca_cert: missing });
      if (r instanceof Error) throw r;
    })) as Error;
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain(missing);
  });
});
