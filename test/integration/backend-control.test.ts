/**
 * The built-in backends' side of operator control, against the fakes: `fresh` skips every
 * shortcut (awssm's DescribeSecret, an HTTP If-None-Match, Vault's mount cache), `reissue` gives
 * up a held Vault lease, and `check` classifies Vault writes (update), logins, KV v1 reads and
 * dynamic engines without reading what would issue credentials.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import createHttpBackend from "../../backends/http.js";
import { FakeSecretsManager } from "../fakes/aws-secretsmanager.js";
import { CapturedLog as AwsLog, makeAwsSm } from "../fakes/aws-harness.js";
import { FakeVault } from "../fakes/vault-server.js";
import { captureLog, leakText, vaultBackend, type CapturedLog } from "../fakes/vault-helpers.js";
import { DUMMY_AWS_ENV, useDummyAwsEnv } from "../helpers/moto.js";
import { canary } from "../helpers/canary.js";
import { silentLogger, type FetchContext, type SecretRef } from "../../src/index.js";

const ctx = (over: Partial<FetchContext> = {}): FetchContext => ({ signal: new AbortController().signal, logger: silentLogger(), ...over });
const check = { signal: new AbortController().signal, logger: silentLogger() };

describe("fresh and reissue", () => {
  let restore: () => void;
  beforeAll(() => {
    restore = useDummyAwsEnv();
  });
  afterAll(() => restore());

  it("awssm: a fresh fetch reads the value instead of asking DescribeSecret", async () => {
    const fake = await FakeSecretsManager.start({ region: "eu-west-1" });
    const log = new AwsLog("control-awssm");
    const b = makeAwsSm(log, { region: "eu-west-1", endpoint: fake.endpoint }, DUMMY_AWS_ENV);
    fake.put("app/db", canary("db"));
    const ref: SecretRef = { backend: "awssm", id: "app/db", options: {} };
    const first = await b.fetch(ref, ctx());
    fake.resetCalls();
    await b.fetch(ref, ctx({ previous: first }));
    expect(fake.calls.map((c) => c.op)).toEqual(["DescribeSecret"]);
    fake.resetCalls();
    await b.fetch(ref, ctx({ previous: first, fresh: true }));
    expect(fake.calls.map((c) => c.op)).toEqual(["GetSecretValue"]);
    await b.close();
    await fake.close();
    log.flush();
    expect(log.lines.join("\n")).not.toContain("CANARY");
  });

  it("http: a fresh fetch sends no If-None-Match", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const srv = createServer((req, res) => {
      seen.push(req.headers);
      if (req.headers["if-none-match"] === '"v1"') {
        res.writeHead(304).end();
        return;
      }
      res.writeHead(200, { etag: '"v1"' }).end("value");
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const b = createHttpBackend({ config: {}, env: { EMISSARY_HTTP_URL: `http://127.0.0.1:${(srv.address() as { port: number }).port}` }, logger: silentLogger() });
    const ref: SecretRef = { backend: "http", id: "x", options: {} };
    const first = await b.fetch(ref, ctx());
    await b.fetch(ref, ctx({ previous: first }));
    await b.fetch(ref, ctx({ previous: first, fresh: true }));
    expect(seen.map((h) => h["if-none-match"])).toEqual([undefined, '"v1"', undefined]);
    await b.close?.();
    await new Promise((r) => srv.close(r));
  });
});

describe("vault: fresh, reissue and check", () => {
  let fake: FakeVault;
  let log: CapturedLog;
  beforeAll(async () => {
    fake = await FakeVault.start();
    fake.mount("secret", "kv", { version: 2 });
    fake.mount("kv1", "kv", { version: 1 });
    fake.mount("database", "database");
    fake.kvPut("secret/app", { token: canary("kv2") });
    fake.kvPut("kv1/app", { token: canary("kv1") });
    fake.dbRole("database", "app", { ttl: 3600, maxTtl: 7200, renewable: true, password: () => canary("dbpw") });
    fake.setPolicy("issuer", { "pki/issue/*": ["update"], "secret/data/app": ["read"], "kv1/*": ["read"], "database/creds/*": ["read"] });
  });
  afterEach(() => log?.flush("control"));
  afterAll(async () => {
    await fake?.close();
  });

  it("fresh asks for the mount again; reissue reads new credentials instead of the held lease", async () => {
    log = captureLog();
    const b = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: fake.createToken({ policies: ["root"] }) } });
    const kv: SecretRef = { backend: "vault", id: "secret/app", options: {} };
    const preflights = (): number => fake.count((c) => c.path.startsWith("sys/internal/ui/mounts/"));
    await b.fetch(kv, ctx());
    await b.fetch(kv, ctx());
    expect(preflights()).toBe(1);
    await b.fetch(kv, ctx({ fresh: true }));
    expect(preflights()).toBe(2);

    const db: SecretRef = { backend: "vault", id: "database/creds/app", options: {} };
    const creds = (): number => fake.count((c) => c.path === "database/creds/app");
    const s1 = await b.fetch(db, ctx());
    const s2 = await b.fetch(db, ctx({ fresh: true }));
    expect(creds()).toBe(1);
    expect(s2.value).toBe(s1.value);
    const s3 = await b.fetch(db, ctx({ fresh: true, reissue: true }));
    expect(creds()).toBe(2);
    expect(s3.value).not.toBe(s1.value);
    await b.close();
    expect(leakText(log, [])).not.toContain("CANARY");
  });

  it("check: writes need update; a bad token is denied; KV v1 needs --read to say more; a database mount is never read", async () => {
    log = captureLog();
    const b = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: fake.createToken({ policies: ["issuer"] }) } });
    const write = { backend: "vault", id: "pki/issue/web", options: {}, params: { common_name: "a.example" } } as SecretRef;
    expect(await b.check!(write, check)).toMatchObject({ status: "ok", reason: expect.stringContaining("update allowed on pki/issue/web") });
    const denied = { backend: "vault", id: "pki/sign/web", options: {}, params: { common_name: "a.example" } } as SecretRef;
    expect(await b.check!(denied, check)).toMatchObject({ status: "denied", reason: expect.stringContaining("may not update pki/sign/web") });
    expect(fake.count((c) => c.path.startsWith("pki/"))).toBe(0);

    const kv1: SecretRef = { backend: "vault", id: "kv1/app", options: {} };
    expect(await b.check!(kv1, check)).toMatchObject({ status: "ok", reason: expect.stringContaining("only a read shows") });
    expect(fake.count((c) => c.path === "kv1/app")).toBe(0);
    expect(await b.check!(kv1, { ...check, read: true })).toMatchObject({ status: "ok", reason: expect.stringContaining("read (value discarded)") });
    expect(await b.check!({ backend: "vault", id: "kv1/none", options: {} }, { ...check, read: true })).toMatchObject({ status: "not_set" });
    const db: SecretRef = { backend: "vault", id: "database/creds/app", options: {} };
    const dbReads = (): number => fake.count((c) => c.path === "database/creds/app");
    const before = dbReads();
    expect(await b.check!(db, { ...check, read: true })).toMatchObject({ status: "ok", reason: expect.stringContaining("issues new credentials") });
    expect(dbReads()).toBe(before);
    await b.close();

    const bad = vaultBackend(log, { address: fake.url, env: { VAULT_TOKEN: "hvs.not-a-token" } });
    expect(await bad.check!({ backend: "vault", id: "secret/app", options: {} }, check)).toMatchObject({ status: "denied", reason: expect.stringContaining("refuses the token") });
    await bad.close();
    const dead = vaultBackend(log, { address: "http://127.0.0.1:1", env: { VAULT_TOKEN: "hvs.x" } });
    expect(await dead.check!({ backend: "vault", id: "secret/app", options: {} }, check)).toMatchObject({ status: "unreachable" });
    await dead.close();
    expect(leakText(log, [])).not.toContain("CANARY");
  });
});
