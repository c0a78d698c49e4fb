/**
 * `emissary check --connect` (the built CLI) against the fake Vault (allowed, denied, not set,
 * nothing mounted), the fake Secrets Manager and moto (existing, missing, denied; --read), a dead
 * HTTP endpoint (unreachable within the deadline), and files (missing, a directory, readable).
 * Planted values contain CANARY; nothing printed may contain one.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, tmpDir } from "../helpers/e2e.js";
import { DUMMY_AWS_ENV, describeMoto, startMoto, useDummyAwsEnv, type Moto } from "../helpers/moto.js";
import { FakeSecretsManager } from "../fakes/aws-secretsmanager.js";
import { FakeSsm } from "../fakes/aws-ssm.js";
import { FakeVault } from "../fakes/vault-server.js";
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

const REGION = "eu-west-1";

interface Entry {
  ref: string;
  backend: string;
  status: string;
  reason: string;
  templates: string[];
}

function byRef(report: { references: Entry[] }): Record<string, Entry> {
  return Object.fromEntries(report.references.map((r) => [r.ref, r]));
}

describe("e2e: check --connect", () => {
  let vault: FakeVault;
  let aws: FakeSecretsManager;
  let hang: Server;
  const sockets = new Set<Socket>();
  let hangUrl: string;

  beforeAll(async () => {
    vault = await FakeVault.start();
    aws = await FakeSecretsManager.start({ region: REGION });
    // Accepts connections and never answers: a dead endpoint that would hang a client without a deadline.
    hang = createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hang.close(r));
    await vault?.close();
    await aws?.close();
  });

  it("reports ok, not set yet, denied, unreachable and invalid per reference, without a value; exit 1", async () => {
    vault.mount("secret", "kv", { version: 2 });
    vault.kvPut("secret/app", { token: canary("vaulttok") });
    const token = vault.createToken({ name: "checker", policies: ["secret/data/app", "secret/data/missing", "secret/metadata/*"] });
    aws.put("check/exists", canary("awsval"));
    aws.put("check/denied", canary("awsdenied"));
    aws.fault("DescribeSecret", { kind: "error", type: "AccessDeniedException", status: 400, message: "User is not authorized to perform secretsmanager:DescribeSecret" }, { secretId: "check/denied" });
    aws.fault("GetSecretValue", { kind: "error", type: "AccessDeniedException", status: 400, message: "User is not authorized to perform secretsmanager:GetSecretValue" }, { secretId: "check/denied" });

    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    mkdirSync(join(dir, "adir"));
    writeFileSync(join(dir, "ok.txt"), canary("fileval"));
    writeFileSync(
      join(tpl, "vault.tpl"),
      `---\ndest: ${dir}/v.out\nsecrets:\n  ok: vault:secret/app#token\n  denied: vault:secret/private#x\n  missing: vault:secret/missing#x\n  nomount: vault:nomount/thing\n---\n{{ok}}{{denied}}{{missing}}{{nomount}}\n`,
    );
    writeFileSync(join(tpl, "aws.tpl"), `---\ndest: ${dir}/a.out\nsecrets:\n  ok: awssm:check/exists\n  missing: awssm:check/missing\n  denied: awssm:check/denied\n---\n{{ok}}{{missing}}{{denied}}\n`);
    writeFileSync(join(tpl, "http.tpl"), `---\ndest: ${dir}/h.out\nsecrets:\n  h: http:some/path\n---\n{{h}}\n`);
    writeFileSync(join(tpl, "file.tpl"), `---\ndest: ${dir}/f.out\nsecrets:\n  gone: file:${dir}/nope.txt\n  dir: file:${dir}/adir\n  ok: file:${dir}/ok.txt\n  env: env:CHECK_VAR\n---\n{{gone}}{{dir}}{{ok}}{{env}}\n`);
    const cfg = join(dir, "config.yml");
    writeFileSync(cfg, `backends:\n  awssm: { region: ${REGION}, endpoint: "${aws.endpoint}" }\n`);
    const env = { ...DUMMY_AWS_ENV, VAULT_ADDR: vault.url, VAULT_TOKEN: token, EMISSARY_HTTP_URL: hangUrl, CHECK_VAR: canary("envval") };
    const args = ["check", "--connect", "--templates", tpl, "--config", cfg, "--timeout", "2s"];

    const r = await runEmissary([...args, "--json"], { env, stdoutIsLog: true });
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; timeoutMs: number; summary: Record<string, number>; errors: unknown[]; references: Entry[] };
    expect(report).toMatchObject({ ok: false, timeoutMs: 2000, errors: [] });
    const refs = byRef(report);
    expect(refs["vault:secret/app"]).toMatchObject({ status: "ok", backend: "vault" });
    expect(refs["vault:secret/app"]!.reason).toContain("read allowed on secret/data/app");
    expect(refs["vault:secret/app"]!.reason).toContain("version 1 is set");
    expect(refs["vault:secret/private"]).toMatchObject({ status: "denied" });
    expect(refs["vault:secret/private"]!.reason).toContain("may not read secret/data/private (its capabilities there: deny)");
    expect(refs["vault:secret/missing"]).toMatchObject({ status: "not_set" });
    expect(refs["vault:nomount/thing"]).toMatchObject({ status: "denied" });
    expect(refs["awssm:check/exists"]).toMatchObject({ status: "ok" });
    expect(refs["awssm:check/exists"]!.reason).toContain("GetSecretValue permission can only be proven by reading");
    expect(refs["awssm:check/missing"]).toMatchObject({ status: "not_set" });
    expect(refs["awssm:check/denied"]).toMatchObject({ status: "denied" });
    expect(refs["awssm:check/denied"]!.reason).toContain("AccessDeniedException");
    expect(refs["http:some/path"]).toMatchObject({ status: "unreachable", reason: expect.stringContaining("no answer within 2s") });
    expect(refs[`file:${dir}/nope.txt`]).toMatchObject({ status: "not_set" });
    expect(refs[`file:${dir}/adir`]).toMatchObject({ status: "invalid", reason: expect.stringContaining("directory") });
    expect(refs[`file:${dir}/ok.txt`]).toMatchObject({ status: "ok" });
    expect(refs["env:CHECK_VAR"]).toMatchObject({ status: "ok" });
    expect(report.summary).toEqual({ references: 12, ok: 4, not_set: 3, denied: 3, unreachable: 1, invalid: 1 });
    // Nothing was read from Vault or AWS: capabilities, metadata and DescribeSecret only.
    expect(vault.count((c) => c.path === "secret/data/app")).toBe(0);
    expect(aws.count("GetSecretValue") + aws.count("BatchGetSecretValue")).toBe(0);
    expect(r.stdout + r.stderr).not.toContain("CANARY");

    // Text: a table, "not set yet", a summary line. --read proves GetSecretValue (value discarded).
    const t = await runEmissary([...args, "--read"], { env, stdoutIsLog: true });
    expect(t.code).toBe(1);
    expect(t.stdout).toMatch(/^STATUS\s+BACKEND\s+REFERENCE\s+TEMPLATES\s+REASON$/m);
    expect(t.stdout).toMatch(/^not set yet\s+awssm\s+awssm:check\/missing\s+aws\.tpl\s+/m);
    expect(t.stdout).toMatch(/^ok\s+awssm\s+awssm:check\/exists\s+aws\.tpl\s+.*GetSecretValue allowed \(value read and discarded\)/m);
    expect(t.stdout).toMatch(/^ok\s+vault\s+vault:secret\/app\s+vault\.tpl/m);
    expect(t.stdout).toContain("12 reference(s): 4 ok, 3 not set yet, 3 denied, 1 unreachable, 1 invalid; 0 configuration error(s)");
    expect(aws.count("GetSecretValue")).toBeGreaterThan(0);
    expect(t.stdout + t.stderr).not.toContain("CANARY");
  });

  it("all ok: exit 0; a bad template: exit 2", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "ok.txt"), canary("v"));
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${dir}/a.out\nsecrets:\n  f: file:ok.txt\n---\n{{f}}\n`);
    const ok = await runEmissary(["check", "--connect", "--templates", dir], { stdoutIsLog: true });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain("1 reference(s): 1 ok");
    writeFileSync(join(dir, "b.tpl"), `---\ndest: ${dir}/b.out\nsecrets:\n  x: nosuch:thing\n---\n{{x}}\n`);
    const bad = await runEmissary(["check", "--connect", "--templates", dir, "--json"], { stdoutIsLog: true });
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).errors).toEqual([expect.objectContaining({ code: "TEMPLATE", file: join(dir, "b.tpl") })]);
    expect(ok.stdout + bad.stdout).not.toContain("CANARY");
  });
});

describe("e2e: check --connect for ssm", () => {
  let ssm: FakeSsm;
  beforeAll(async () => {
    ssm = await FakeSsm.start({ region: REGION });
  });
  afterAll(async () => {
    await ssm?.close();
  });

  it("GetParameter without decryption: String and SecureString ok, missing not set yet, denied; paths; --read decrypts", async () => {
    ssm.put("/check/plain", canary("plain"));
    ssm.put("/check/secure", canary("secure"), "SecureString");
    ssm.put("/check/denied", canary("denied"), "SecureString");
    ssm.put("/check/tree/a", canary("treea"));
    ssm.fault("GetParameter", { kind: "error", type: "AccessDeniedException", status: 400, message: "not authorized to perform ssm:GetParameter" }, { name: "/check/denied" });
    const dir = tmpDir();
    writeFileSync(
      join(dir, "s.tpl"),
      `---\ndest: ${dir}/s.out\nsecrets:\n  a: ssm:/check/plain\n  b: ssm:/check/secure\n  c: ssm:/check/missing\n  d: ssm:/check/denied\n  e: ssm:/check/tree/\n  f: ssm:/check/empty/\n---\n{{a}}{{b}}{{c}}{{d}}{{e}}{{f}}\n`,
    );
    const cfg = join(dir, "config.yml");
    writeFileSync(cfg, `backends:\n  ssm: { region: ${REGION}, endpoint: "${ssm.endpoint}" }\n`);
    const run = (extra: string[]) => runEmissary(["check", "--connect", "--templates", dir, "--config", cfg, "--json", ...extra], { env: { ...DUMMY_AWS_ENV }, stdoutIsLog: true });
    const r = await run([]);
    expect(r.code, r.stderr).toBe(1);
    const refs = byRef(JSON.parse(r.stdout));
    expect(refs["ssm:/check/plain"]).toMatchObject({ status: "ok" });
    expect(refs["ssm:/check/secure"]).toMatchObject({ status: "ok", reason: expect.stringContaining("kms:Decrypt can only be proven by reading") });
    expect(refs["ssm:/check/missing"]).toMatchObject({ status: "not_set" });
    expect(refs["ssm:/check/denied"]).toMatchObject({ status: "denied", reason: expect.stringContaining("AccessDeniedException") });
    expect(refs["ssm:/check/tree/"]).toMatchObject({ status: "ok" });
    expect(refs["ssm:/check/empty/"]).toMatchObject({ status: "not_set" });
    expect(ssm.calls.length).toBeGreaterThan(0);
    expect(ssm.calls.every((c) => !c.withDecryption)).toBe(true);
    const before = ssm.calls.length;
    const rr = await run(["--read"]);
    expect(byRef(JSON.parse(rr.stdout))["ssm:/check/secure"]).toMatchObject({ status: "ok", reason: expect.stringContaining("decrypted (value discarded)") });
    expect(ssm.calls.slice(before).every((c) => c.withDecryption)).toBe(true);
    expect(r.stdout + r.stderr + rr.stdout + rr.stderr).not.toContain("CANARY");
  });
});

describeMoto("e2e: check --connect against moto", () => {
  let moto: Moto;
  let restore: () => void;
  beforeAll(async () => {
    restore = useDummyAwsEnv();
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto?.stop();
    restore?.();
  });

  it("an existing secret is ok, a missing one not set yet; --read reads it", async () => {
    const admin = new SecretsManagerClient({ region: REGION, endpoint: moto.endpoint });
    await admin.send(new CreateSecretCommand({ Name: "moto/check", SecretString: canary("motoval") }));
    admin.destroy();
    const dir = tmpDir();
    writeFileSync(join(dir, "a.tpl"), `---\ndest: ${dir}/a.out\nsecrets:\n  ok: awssm:moto/check\n  missing: awssm:moto/missing\n---\n{{ok}}{{missing}}\n`);
    const cfg = join(dir, "config.yml");
    writeFileSync(cfg, `backends:\n  awssm: { region: ${REGION}, endpoint: "${moto.endpoint}" }\n`);
    for (const extra of [[], ["--read"]]) {
      const r = await runEmissary(["check", "--connect", "--templates", dir, "--config", cfg, "--json", ...extra], { env: { ...DUMMY_AWS_ENV }, stdoutIsLog: true });
      expect(r.code, r.stderr).toBe(1);
      const refs = byRef(JSON.parse(r.stdout));
      expect(refs["awssm:moto/check"]).toMatchObject({ status: "ok" });
      expect(refs["awssm:moto/missing"]).toMatchObject({ status: "not_set" });
      if (extra.length) expect(refs["awssm:moto/check"]!.reason).toContain("value read and discarded");
      expect(r.stdout + r.stderr).not.toContain("CANARY");
    }
  });
});
