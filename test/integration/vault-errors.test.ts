/**
 * How the vault backend classifies Vault's answers: 404 not set, 403 fatal naming the path,
 * 429 / 412 / 5xx / sealed / network transient, 400 fatal — with Vault's own error bodies.
 */
import { createServer } from "node:net";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { classifyError } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, caught, fetchVault, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import type { VaultBackend } from "../../backends/vault.js";

let fake: FakeVault;
let log: CapturedLog;
let backend: VaultBackend;
const errors: unknown[] = [];
const logs: CapturedLog[] = [];

beforeEach(async () => {
  fake = await FakeVault.start();
  fake.mount("secret", "kv", { version: 2 });
  fake.kvPut("secret/app", { pw: canary("pw") });
  const token = fake.createToken({ id: canary("token"), policies: ["secret/data/app"] });
  log = captureLog();
  logs.push(log);
  backend = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: token } });
});

afterEach(async () => {
  await backend.close();
  await fake.close();
});

afterAll(() => {
  for (const l of logs) l.flush("errors");
  expect(leakText({ ...logs[0]!, lines: logs.flatMap((l) => l.lines) }, errors)).not.toContain("CANARY");
});

async function failure(id = "secret/app"): Promise<Error & { code?: string; status?: number; retryAfterMs?: number }> {
  const err = await caught(() => fetchVault(backend, id));
  errors.push(err);
  return err;
}

describe("error classification", () => {
  it("403 on a path the policy does not grant is fatal and names the path", async () => {
    fake.kvPut("secret/other", { a: "b" });
    const err = await failure("secret/other");
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("secret/data/other");
    expect(err.message).toMatch(/permission denied/);
    expect(err.status).toBe(403);
  });

  it("403 from the preflight (nothing mounted there) is fatal and names the path", async () => {
    const err = await failure("nomount/x");
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("nomount/x");
  });

  it("429 rate limit is transient and carries Retry-After", async () => {
    await fetchVault(backend, "secret/app");
    fake.fail("secret/data/app", 429, { retryAfterS: 7 });
    const err = await failure();
    expect(classifyError(err)).toBe("transient");
    expect(err.retryAfterMs).toBe(7000);
    expect(err.message).toContain("rate limit quota exceeded");
  });

  it("a sealed Vault (503) is transient", async () => {
    fake.sealed = true;
    const err = await failure();
    expect(classifyError(err)).toBe("transient");
    expect(err.message).toContain("Vault is sealed");
    fake.sealed = false;
    expect(JSON.parse((await fetchVault(backend, "secret/app")).value)).toHaveProperty("pw");
  });

  it.each([500, 502, 504, 412, 473])("status %i is transient", async (status) => {
    await fetchVault(backend, "secret/app");
    fake.fail("secret/data/app", status);
    expect(classifyError(await failure())).toBe("transient");
  });

  it.each([400, 405])("status %i is fatal", async (status) => {
    await fetchVault(backend, "secret/app");
    fake.fail("secret/data/app", status, { errors: ["bad thing"] });
    const err = await failure();
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("bad thing");
  });

  it("a KV mount being upgraded to v2 (400 'Upgrading…') is transient", async () => {
    await fetchVault(backend, "secret/app");
    fake.fail("secret/data/app", 400, { errors: ["Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly."] });
    expect(classifyError(await failure())).toBe("transient");
  });

  it("a refused connection is transient", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const b = vaultBackend(log, { address: `http://127.0.0.1:${port}`, env: { VAULT_TOKEN: canary("token") } });
    const err = await caught(() => fetchVault(b, "secret/app"));
    errors.push(err);
    expect(classifyError(err)).toBe("transient");
    expect(err.message).toContain("ECONNREFUSED");
    await b.close();
  });

  it("an error string quoting a URL with credentials loses them", async () => {
    await fetchVault(backend, "secret/app");
    const pw = canary("dsnpw");
    fake.fail("secret/data/app", 500, { errors: [`failed to connect to postgres://admin:${pw}@db:5432/app`] });
    const err = await failure();
    expect(err.message).toContain("postgres://[redacted]@db:5432/app");
    expect(err.message).not.toContain(pw);
  });

  it("an error string quoting the token loses it", async () => {
    const tok = canary("tok2");
    fake.createToken({ id: tok });
    const b = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: tok } });
    await fetchVault(b, "secret/app");
    fake.fail("secret/data/app", 500, { errors: [`bad token ${tok} in request`] });
    const err = await caught(() => fetchVault(b, "secret/app"));
    errors.push(err);
    expect(err.message).toContain("bad token [redacted] in request");
    await b.close();
  });

  it("an aborted fetch rejects promptly", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stopping"));
    const err = await caught(() => fetchVault(backend, "secret/app", {}, ac.signal));
    expect(err.message).toBe("stopping");
  });

  it("a fetch after close() is refused", async () => {
    await backend.close();
    const err = await failure();
    expect(err.message).toMatch(/closed/);
  });
});
