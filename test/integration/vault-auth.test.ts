/**
 * Authentication: token (env/config), token file (re-read on change, and every 2s while a
 * reference is refused), AppRole (files, re-login once on revocation then back off), AWS IAM
 * (signature checked by the fake), token renewal at ~2/3 of the TTL, re-login when renewal fails
 * or the max TTL nears, and timers that never keep the process alive.
 */
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { classifyError } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { waitFor } from "../helpers/e2e.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, caught, fetchVault, field, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import type { VaultBackend } from "../../backends/vault.js";

let fake: FakeVault;
let log: CapturedLog;
let dir: string;
const backends: VaultBackend[] = [];
const errors: unknown[] = [];
const logs: CapturedLog[] = [];
const value = canary("value");

function make(opts: Parameters<typeof vaultBackend>[1] = {}): VaultBackend {
  const b = vaultBackend(log, { address: fake.url, ...opts });
  backends.push(b);
  return b;
}

async function failure(b: VaultBackend, id = "secret/app"): Promise<Error & { code?: string; status?: number }> {
  const err = await caught(() => fetchVault(b, id));
  errors.push(err);
  return err;
}

const logins = (mount = "approle"): number => fake.count((c) => c.path === `auth/${mount}/login` && c.status === 200);

beforeEach(async () => {
  fake = await FakeVault.start();
  fake.mount("secret", "kv", { version: 2 });
  fake.kvPut("secret/app", { pw: value });
  fake.kvPut("secret/denied", { pw: "x" });
  dir = mkdtempSync(join(tmpdir(), "emissary-vault-auth-"));
  log = captureLog();
  logs.push(log);
});

afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

afterAll(() => {
  for (const l of logs) l.flush("auth");
  expect(leakText({ ...logs[0]!, lines: logs.flatMap((l) => l.lines) }, errors)).not.toContain("CANARY");
});

describe("token", () => {
  it("VAULT_TOKEN wins over auth.token in the config", async () => {
    const envTok = fake.createToken({ id: canary("envtok"), name: "from-env" });
    const cfgTok = fake.createToken({ id: canary("cfgtok"), name: "from-config" });
    const b = make({ config: { auth: { method: "token", token: cfgTok } }, env: { VAULT_TOKEN: envTok } });
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(new Set(fake.calls.map((c) => c.tokenName))).toEqual(new Set(["from-env"]));
    const c = make({ config: { auth: { method: "token", token: cfgTok } } });
    await fetchVault(c, "secret/app");
    expect(fake.calls.at(-1)?.tokenName).toBe("from-config");
  });

  it("without any token, fetching fails loudly (fatal) and says how to give one", async () => {
    const err = await failure(make());
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("VAULT_TOKEN");
  });

  it("a revoked static token is fatal: there is no way to log in again", async () => {
    const tok = fake.createToken({ id: canary("tok") });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    fake.revokeToken(tok);
    const err = await failure(b);
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toMatch(/permission denied/);
  });

  it("renews a renewable token at about 2/3 of its TTL, again and again", async () => {
    const tok = fake.createToken({ id: canary("tok"), ttl: 3, renewable: true, name: "short" });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    expect(b.tokens.timer?.hasRef()).toBe(false);
    await fake.waitFor(() => fake.count((c) => c.path === "auth/token/renew-self" && c.status === 200) >= 2, 15_000, "two renewals");
    // Still valid long after its first TTL.
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
  });

  it("a token lookup that fails at startup (Vault briefly down) is retried, and renewal still happens", async () => {
    const tok = fake.createToken({ id: canary("tok"), ttl: 8, renewable: true });
    fake.fail("auth/token/lookup-self", 503, { times: 2 });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    await fake.waitFor(() => fake.count((c) => c.path === "auth/token/renew-self" && c.status === 200) >= 1, 15_000, "a renewal after the retried lookup");
    expect(fake.count((c) => c.path === "auth/token/lookup-self")).toBeGreaterThanOrEqual(3);
  });

  // Seen against OpenBao (token -ttl=15s -explicit-max-ttl=40s): renewals were capped (11s, 4s,
  // 2s), then renew-self answered 500 "past the max TTL, cannot renew", which was retried as
  // transient, and the "give emissary a new token" error came only after the token had expired.
  it("a static token whose renewal is capped by its max TTL: says once, before it expires, when it ends, and stops renewing", async () => {
    // Created with 6s of a 7s max TTL: the renewal at ~4s gets the 3-4s that are left.
    const tok = fake.createToken({ id: canary("tok"), ttl: 6, maxTtl: 7, renewable: true });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    const renewals = (): number => fake.count((c) => c.path === "auth/token/renew-self");
    await waitFor(() => log.entries().some((e) => String(e.msg).includes("at its max TTL")), 15_000, "the max TTL message");
    const atMax = log.entries().filter((e) => String(e.msg).includes("at its max TTL"));
    expect(atMax).toHaveLength(1);
    expect(Date.parse(String(atMax[0]!.expiresAt))).toBeGreaterThan(Date.now());
    // Nothing more to ask for: no timer, so no 500 "past the max TTL" and no misleading retries.
    expect(b.tokens.timer).toBeUndefined();
    expect(renewals()).toBe(1);
    // The token still works until then.
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
  });

  it("renew-self's 500 'past the max TTL' is the end, not a failure to retry", async () => {
    const tok = fake.createToken({ id: canary("tok"), ttl: 3, renewable: true });
    fake.fail("auth/token/renew-self", 500, { errors: ["1 error occurred:\n\t* past the max TTL, cannot renew\n\n"] });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    await waitFor(() => log.entries().some((e) => String(e.msg).includes("reached its max TTL")), 15_000, "the max TTL message");
    expect(log.entries().filter((e) => e.msg === "vault: token renewal failed")).toHaveLength(0);
    expect(log.entries().some((e) => String(e.msg).includes("reached its max TTL"))).toBe(true);
    expect(b.tokens.timer).toBeUndefined();
  });

  it("close() cancels the renewal timer", async () => {
    const tok = fake.createToken({ id: canary("tok"), ttl: 3, renewable: true });
    const b = make({ env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    expect(b.tokens.timer).toBeDefined();
    await b.close();
    expect(b.tokens.timer).toBeUndefined();
  });
});

describe("token file", () => {
  it("re-reads the file when it changes (a Vault Agent sink)", async () => {
    const a = fake.createToken({ id: canary("a"), name: "agent-1" });
    const bTok = fake.createToken({ id: canary("b"), name: "agent-2" });
    const file = join(dir, "token");
    writeFileSync(file, a + "\n");
    const b = make({ config: { auth: { method: "token_file", path: file } } });
    await fetchVault(b, "secret/app");
    expect(fake.calls.at(-1)?.tokenName).toBe("agent-1");
    writeFileSync(file, bTok + "\n");
    await fetchVault(b, "secret/app");
    expect(fake.calls.at(-1)?.tokenName).toBe("agent-2");
    // The sink's token is renewed by the agent, not by emissary.
    expect(fake.count((c) => c.path.startsWith("auth/token/"))).toBe(0);
  });

  it("re-reads the file on a 403 even when its size and mtime did not change", async () => {
    const a = fake.createToken({ id: canary("a"), name: "agent-1" });
    const bTok = fake.createToken({ id: a.replace(/.$/, (ch) => (ch === "0" ? "1" : "0")), name: "agent-2" });
    const file = join(dir, "token");
    writeFileSync(file, a);
    const b = make({ config: { auth: { method: "token_file", path: file } } });
    await fetchVault(b, "secret/app");
    const st = statSync(file);
    writeFileSync(file, bTok);
    utimesSync(file, st.atime, st.mtime);
    fake.revokeToken(a);
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(fake.calls.at(-1)?.tokenName).toBe("agent-2");
  });

  it("while a reference is refused (403), the file is re-read every 2s and its watcher told of a new token; the re-check stops when nothing is refused, and on close", async () => {
    const good = fake.createToken({ id: canary("good"), name: "agent-new" });
    const file = join(dir, "token");
    writeFileSync(file, canary("stale") + "\n");
    const b = make({ config: { auth: { method: "token_file", path: file } } });
    let told = 0;
    const off = b.watch!({ backend: "vault", id: "secret/app", options: {} }, () => told++);
    const err = await failure(b);
    expect(err.message).toMatch(/permission denied/);
    expect(b.refused!.size).toBe(1);
    expect(b.refused!.timer?.hasRef()).toBe(false);
    // An unchanged file tells no one.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(told).toBe(0);
    writeFileSync(file, good + "\n");
    await waitFor(() => told === 1, 15_000, "the refused reference's watcher told of the new token");
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(fake.calls.at(-1)?.tokenName).toBe("agent-new");
    expect(b.refused!.size).toBe(0);
    expect(b.refused!.timer).toBeUndefined();
    // Refused again, then no one uses the reference any more: the re-check stops.
    writeFileSync(file, canary("stale2") + "\n");
    await failure(b);
    expect(b.refused!.timer).toBeDefined();
    off();
    expect(b.refused!.timer).toBeUndefined();
    // Refused again, then closed: the re-check stops.
    await failure(b);
    expect(b.refused!.timer).toBeDefined();
    await b.close();
    expect(b.refused!.timer).toBeUndefined();
    expect(told).toBe(1);
  });

  it("other auth methods do not watch", () => {
    const b = make({ env: { VAULT_TOKEN: fake.createToken({ id: canary("tok") }) } });
    expect(b.watch).toBeUndefined();
    expect(b.refused).toBeUndefined();
  });

  it("a token file that does not exist yet is transient", async () => {
    const b = make({ config: { auth: { method: "token_file", path: join(dir, "nope") } } });
    const err = await failure(b);
    expect(classifyError(err)).toBe("transient");
    expect(err.message).toContain("does not exist yet");
  });
});

describe("AppRole", () => {
  function approle(extra: Record<string, unknown> = {}): { roleIdFile: string; secretIdFile: string; config: Record<string, unknown> } {
    const roleIdFile = join(dir, "role_id");
    const secretIdFile = join(dir, "secret_id");
    return { roleIdFile, secretIdFile, config: { auth: { method: "approle", role_id_file: roleIdFile, secret_id_file: secretIdFile, ...extra } } };
  }

  it("logs in with role_id_file and secret_id_file, once for many fetches", async () => {
    const roleId = canary("roleid");
    const secretId = canary("secretid");
    fake.addAppRole({ roleId, secretId, policies: ["secret/data/app"] });
    const a = approle();
    writeFileSync(a.roleIdFile, roleId + "\n");
    writeFileSync(a.secretIdFile, secretId + "\n");
    const b = make({ config: a.config, env: { VAULT_TOKEN: canary("ignored") } });
    for (let i = 0; i < 3; i++) expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(logins()).toBe(1);
    expect(log.entries().some((e) => e.msg === "vault: logged in" && e.method === "approle")).toBe(true);
  });

  it("uses a custom mount", async () => {
    fake.addAppRole({ mount: "machines", roleId: "r1", secretId: canary("sid"), policies: ["secret/*"] });
    const a = approle({ mount: "machines" });
    writeFileSync(a.roleIdFile, "r1");
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    await fetchVault(make({ config: a.config }), "secret/app");
    expect(logins("machines")).toBe(1);
  });

  // Seen against OpenBao 2.x: `auth.mount: approle-typo` answered 403 "permission denied" (no auth
  // method there, so the login path needs a token), which read like a policy problem.
  it("a login where no auth method is mounted is fatal and says to check auth.mount", async () => {
    fake.addAppRole({ roleId: "r1", secretId: canary("sid"), policies: ["secret/*"] });
    const a = approle({ mount: "approle-typo" });
    writeFileSync(a.roleIdFile, "r1");
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    const err = await failure(make({ config: a.config }));
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toBe("vault approle login at auth/approle-typo/login failed: 403 permission denied (is the auth method mounted there? check auth.mount)");
    expect(fake.calls.at(-1)).toMatchObject({ path: "auth/approle-typo/login", status: 403 });
  });

  it("a revoked token: logs in again once and retries; a second revocation at once is not chased; later it is", async () => {
    let t = 1_000_000;
    const roleId = canary("roleid");
    fake.addAppRole({ roleId, secretId: canary("sid"), policies: ["secret/data/app"], tokenTtl: 0 });
    const a = approle();
    writeFileSync(a.roleIdFile, roleId);
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    const b = make({ config: a.config, now: () => t });
    await fetchVault(b, "secret/app");
    fake.revokeLoginTokens();
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(logins()).toBe(2);
    // The new token changes nothing else: the mount is still known, no second preflight.
    expect(fake.count((c) => c.path.startsWith("sys/internal/ui/mounts/"))).toBe(1);
    fake.revokeLoginTokens();
    const err = await failure(b);
    expect(classifyError(err)).toBe("fatal");
    expect(logins()).toBe(2);
    t += 5_000;
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(logins()).toBe(3);
  });

  it("a policy 403 with a valid token does not log in again", async () => {
    fake.addAppRole({ roleId: "r", secretId: canary("sid"), policies: ["secret/data/app"], tokenTtl: 0 });
    const a = approle();
    writeFileSync(a.roleIdFile, "r");
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    const b = make({ config: a.config });
    await fetchVault(b, "secret/app");
    const err = await failure(b, "secret/denied");
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("secret/data/denied");
    expect(logins()).toBe(1);
  });

  it("a wrong secret_id is fatal, and the message does not quote it", async () => {
    fake.addAppRole({ roleId: "r", secretId: canary("right") });
    const a = approle();
    writeFileSync(a.roleIdFile, "r");
    const wrong = canary("wrong");
    writeFileSync(a.secretIdFile, wrong);
    const err = await failure(make({ config: a.config }));
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("invalid role or secret ID");
    expect(err.message).not.toContain(wrong);
  });

  it("a role_id file that is not there yet is transient", async () => {
    const err = await failure(make({ config: approle().config }));
    expect(classifyError(err)).toBe("transient");
  });

  it("renews at ~2/3 TTL; when renewal fails it logs in again", async () => {
    fake.addAppRole({ roleId: "r", secretId: canary("sid"), policies: ["secret/data/app"], tokenTtl: 3 });
    const a = approle();
    writeFileSync(a.roleIdFile, "r");
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    const b = make({ config: a.config });
    await fetchVault(b, "secret/app");
    await fake.waitFor(() => fake.count((c) => c.path === "auth/token/renew-self" && c.status === 200) >= 1, 15_000, "a renewal");
    fake.fail("auth/token/renew-self", 403);
    await fake.waitFor(() => logins() >= 2, 15_000, "a second login");
    expect(log.entries().some((e) => e.msg === "vault: token renewal failed")).toBe(true);
  });

  it("a renewal capped by the max TTL is the last one: it logs in again at ~2/3 of what is left, not renewing into the last second", async () => {
    // A 6s token with a 7s max TTL: the renewal at ~4s is capped to the 3-4s left.
    fake.addAppRole({ roleId: "r", secretId: canary("sid"), policies: ["secret/data/app"], tokenTtl: 6, tokenMaxTtl: 7 });
    const a = approle();
    writeFileSync(a.roleIdFile, "r");
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    const b = make({ config: a.config });
    await fetchVault(b, "secret/app");
    await fake.waitFor(() => logins() >= 2, 15_000, "a login before the max TTL");
    const firstToken = fake.calls.filter((c) => c.path === "auth/token/renew-self").map((c) => c.status);
    expect(firstToken).toEqual([200]);
  });

  it("logs in again when the token nears its max TTL", async () => {
    fake.addAppRole({ roleId: "r", secretId: canary("sid"), policies: ["secret/data/app"], tokenTtl: 3, tokenMaxTtl: 4 });
    const a = approle();
    writeFileSync(a.roleIdFile, "r");
    writeFileSync(a.secretIdFile, fake.appRoles[0]!.secretId!);
    const b = make({ config: a.config });
    await fetchVault(b, "secret/app");
    await fake.waitFor(() => logins() >= 2, 15_000, "a login before the max TTL");
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
  });
});

describe("AWS IAM", () => {
  const accessKeyId = "AKIAEXAMPLE1234";

  it("logs in with a signed sts:GetCallerIdentity that Vault (the fake) verifies", async () => {
    const secretAccessKey = canary("awssecret");
    const sessionToken = canary("awssession");
    fake.addAwsRole({ role: "web", accessKeyId, secretAccessKey, policies: ["secret/data/app"], serverId: "vault.example.com" });
    const b = make({
      config: { auth: { method: "aws", role: "web", header_value: "vault.example.com" } },
      env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken },
    });
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
    expect(logins("aws")).toBe(1);
  });

  it("a bad signature is fatal", async () => {
    fake.addAwsRole({ role: "web", accessKeyId, secretAccessKey: canary("real") });
    const b = make({ config: { auth: { method: "aws", role: "web" } }, env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: canary("wrong") } });
    const err = await failure(b);
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("SignatureDoesNotMatch");
  });

  it("a missing server-ID header is refused", async () => {
    fake.addAwsRole({ role: "web", accessKeyId, secretAccessKey: canary("k"), serverId: "vault.example.com" });
    const b = make({ config: { auth: { method: "aws", role: "web" } }, env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: fake.awsRoles[0]!.secretAccessKey } });
    expect((await failure(b)).message).toContain("X-Vault-AWS-IAM-Server-ID");
  });

  it("signs for a regional STS endpoint when a region is given", async () => {
    fake.addAwsRole({ role: "web", accessKeyId, secretAccessKey: canary("k"), stsEndpoint: "https://sts.eu-west-1.amazonaws.com/", policies: ["secret/*"] });
    const b = make({
      config: { auth: { method: "aws", role: "web", region: "eu-west-1", mount: "aws" } },
      awsCredentials: async () => ({ accessKeyId, secretAccessKey: fake.awsRoles[0]!.secretAccessKey }),
    });
    expect(field(await fetchVault(b, "secret/app"), "vault:x#pw")).toBe(value);
  });
});
