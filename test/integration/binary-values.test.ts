/**
 * Bytes from the backend to the file, through the whole pipeline (createEmissary with the real
 * built-in backends): random bytes — invalid UTF-8, NUL, CR, a leading BOM, trailing whitespace —
 * from files, an HTTP server, AWS SecretBinary (moto) and the base64 text of a Vault KV field,
 * an AWS SecretString or SSM parameters with `decode: base64`, each written byte for byte by a template that is
 * that one name. Bytes used inside text, and text that is not base64 under `decode`, fail the
 * template with an error naming the reference while the last good file stays.
 */
import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEmissary, createLogger, createMemoryBackend, type Emissary } from "../../src/index.js";
import { binaryCanary, canary, findLeak } from "../helpers/canary.js";
import { tmpDir, waitFor } from "../helpers/e2e.js";
import { startHttpSecrets, type HttpSecrets } from "../helpers/http-secrets.js";
import { describeMoto, startMoto, useDummyAwsEnv, type Moto } from "../helpers/moto.js";
import { FakeVault } from "../fakes/vault-server.js";

/** The random samples' seed, named in every failure so it can be replayed. */
const SEED = Date.now() % 100_000;

/** Bytes of every awkward kind: the canaries carry the CANARY marker for the leak scans. */
function samples(): Buffer[] {
  const random = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { numRuns: 6, seed: SEED }).map((b) => Buffer.from(b));
  return [
    Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80, 0xc3, 0x28, 0x0a]), // hardening item 12's file, trailing LF included
    binaryCanary(24),
    binaryCanary(5000),
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), binaryCanary(40)]), // a UTF-8 BOM in front
    Buffer.concat([Buffer.from("\r\n \t"), binaryCanary(40), Buffer.from("\r\n\n  ")]), // whitespace both ends
    Buffer.concat([Buffer.alloc(16), binaryCanary(32), Buffer.alloc(16)]), // NULs
    ...random,
  ];
}

/** Lines a logger printed, for the leak checks. */
class Lines {
  readonly lines: string[] = [];
  readonly stream = { write: (s: string): boolean => (this.lines.push(s), true) };
  leaks(values: readonly Buffer[]): string[] {
    const text = this.lines.join("\n");
    return values.map((v) => findLeak(text, v)).filter((x): x is string => x !== undefined);
  }
}

let current: Emissary | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

/** One template per value: dest `out/NAME`, body exactly `{{v}}`, with the long form's extra keys. */
function writeTemplates(tpl: string, out: string, refs: Record<string, { ref: string; extra?: string }>): void {
  mkdirSync(tpl, { recursive: true });
  for (const [name, r] of Object.entries(refs)) {
    writeFileSync(join(tpl, `${name}.tpl`), `---\ndest: ${join(out, name)}\nsecrets:\n  v:\n    ref: ${r.ref}\n${r.extra ?? ""}---\n{{v}}`);
  }
}

async function run(tpl: string, opts: { config?: string; env?: Record<string, string | undefined>; log: Lines }): Promise<Emissary> {
  current = await createEmissary({
    templates: tpl,
    ...(opts.config ? { config: opts.config } : {}),
    env: { ...process.env, ...opts.env },
    logger: createLogger({ level: "debug", destination: opts.log.stream }),
    watch: false,
  });
  await current.start();
  return current;
}

function expectSameBytes(file: string, want: Buffer): void {
  const got = readFileSync(file);
  expect(got.length, `${file} (sample seed ${SEED})`).toBe(want.length);
  expect(got.equals(want), `${file} differs from the secret's bytes (sample seed ${SEED})`).toBe(true);
}

describe("bytes through file and http", () => {
  let http: HttpSecrets;
  beforeAll(async () => {
    http = await startHttpSecrets();
  });
  afterAll(async () => {
    await http?.close();
  });

  it("file (default encoding and encoding: binary) and http write every byte unchanged", async () => {
    const dir = tmpDir();
    const values = samples();
    const refs: Record<string, { ref: string; extra?: string }> = {};
    mkdirSync(join(dir, "secrets"));
    values.forEach((v, i) => {
      writeFileSync(join(dir, "secrets", `s${i}`), v);
      http.values.set(`bin/s${i}`, v);
      refs[`file${i}`] = { ref: `file:${join(dir, "secrets", `s${i}`)}`, extra: "    encoding: binary\n" };
      refs[`http${i}`] = { ref: `http:bin/s${i}`, extra: "    encoding: binary\n" };
    });
    // Hardening item 12: the default encoding never turns bytes that are not UTF-8 into U+FFFD.
    refs.item12 = { ref: `file:${join(dir, "secrets", "s0")}` };
    writeTemplates(join(dir, "tpl"), join(dir, "out"), refs);
    const log = new Lines();
    const e = await run(join(dir, "tpl"), { env: { EMISSARY_HTTP_URL: http.url }, log });
    const res = await e.settled();
    expect(res.ok, JSON.stringify(res.status.templates.filter((t) => t.state !== "rendered"))).toBe(true);
    values.forEach((v, i) => {
      expectSameBytes(join(dir, "out", `file${i}`), v);
      expectSameBytes(join(dir, "out", `http${i}`), v);
    });
    expectSameBytes(join(dir, "out", "item12"), values[0]!);
    expect(log.leaks(values)).toEqual([]);
  });
});

describe("bytes through vault: decode: base64 of a KV field", () => {
  let fake: FakeVault;
  beforeAll(async () => {
    fake = await FakeVault.start();
    fake.mount("secret", "kv", { version: 2 });
  });
  afterAll(async () => {
    await fake?.close();
  });

  it("writes the decoded bytes, line-wrapped base64 or not; text that is not base64 fails and the last good file stays", async () => {
    const dir = tmpDir();
    const values = samples();
    const data: Record<string, string> = {};
    const refs: Record<string, { ref: string; extra?: string }> = {};
    values.forEach((v, i) => {
      // Every other value line-wrapped at 64 like a PEM body, with a final newline.
      data[`k${i}`] = i % 2 === 0 ? v.toString("base64") : `${v.toString("base64").replace(/(.{64})/g, "$1\n")}\n`;
      refs[`kt${i}`] = { ref: `vault:secret/krb#k${i}`, extra: "    decode: base64\n" };
    });
    fake.kvPut("secret/krb", data);
    const token = fake.createToken({ id: canary("token"), name: "bytes" });
    const config = join(dir, "config.yml");
    writeFileSync(config, `defaults: { retry: 100ms }\nbackends:\n  vault:\n    address: ${fake.url}\n    refresh: 200ms\n`);
    writeTemplates(join(dir, "tpl"), join(dir, "out"), refs);
    const log = new Lines();
    const e = await run(join(dir, "tpl"), { config, env: { VAULT_TOKEN: token }, log });
    const res = await e.settled();
    expect(res.ok, JSON.stringify(res.status.templates.filter((t) => t.state !== "rendered"))).toBe(true);
    values.forEach((v, i) => expectSameBytes(join(dir, "out", `kt${i}`), v));

    // The value becomes text that is not base64: the template fails naming the reference; the file stays.
    const errors: string[] = [];
    e.on("error", (ev) => errors.push(ev.error.message));
    fake.kvPut("secret/krb", { ...data, k1: `${canary("notb64")}!` });
    await waitFor(() => errors.some((m) => m.includes("vault:secret/krb#k1")), 15_000, "the decode error");
    expect(errors.find((m) => m.includes("vault:secret/krb#k1"))).toMatch(/kt1\.tpl: vault:secret\/krb#k1: the value is not valid base64 \(decode: base64\)$/);
    expectSameBytes(join(dir, "out", "kt1"), values[1]!);
    expect(e.status().templates.find((t) => t.file.endsWith("kt1.tpl"))?.state).toBe("error");
    expect(log.lines.join("\n")).not.toContain("CANARY");
    expect(log.leaks(values)).toEqual([]);
  });
});

describeMoto("bytes through AWS (moto): awssm SecretBinary, decode: base64 of an awssm SecretString and of ssm parameters", () => {
  let moto: Moto;
  let admin: SecretsManagerClient;
  let restoreEnv: () => void;
  beforeAll(async () => {
    restoreEnv = useDummyAwsEnv();
    moto = await startMoto();
    admin = new SecretsManagerClient({ region: "eu-west-1", endpoint: moto.endpoint });
  });
  afterAll(async () => {
    admin?.destroy();
    await moto?.stop();
    restoreEnv?.();
  });

  it("encoding: binary writes SecretBinary's bytes; the default stays base64; decode: base64 turns a SecretString into bytes", async () => {
    const dir = tmpDir();
    const values = samples();
    const refs: Record<string, { ref: string; extra?: string }> = {};
    for (const [i, v] of values.entries()) {
      await admin.send(new CreateSecretCommand({ Name: `bytes/bin${i}`, SecretBinary: v }));
      await admin.send(new CreateSecretCommand({ Name: `bytes/b64-${i}`, SecretString: v.toString("base64") }));
      refs[`bin${i}`] = { ref: `awssm:bytes/bin${i}`, extra: "    encoding: binary\n" };
      refs[`b64-${i}`] = { ref: `awssm:bytes/b64-${i}`, extra: "    decode: base64\n" };
    }
    refs.asBase64 = { ref: "awssm:bytes/bin1" };
    // ssm: a SecureString and a path's parameter (by its relative name), each holding base64 text.
    const ssm = new SSMClient({ region: "eu-west-1", endpoint: moto.endpoint });
    const small = values.filter((v) => v.length <= 2500);
    try {
      for (const [i, v] of small.entries()) {
        await ssm.send(new PutParameterCommand({ Name: `/bytes/ssm${i}`, Type: "SecureString", Value: v.toString("base64") }));
        await ssm.send(new PutParameterCommand({ Name: `/bytes/dir/k${i}`, Type: "String", Value: v.toString("base64") }));
        refs[`ssm${i}`] = { ref: `ssm:/bytes/ssm${i}`, extra: "    decode: base64\n" };
        refs[`ssmdir${i}`] = { ref: `ssm:/bytes/dir/#k${i}`, extra: "    decode: base64\n" };
      }
    } finally {
      ssm.destroy();
    }
    const config = join(dir, "config.yml");
    writeFileSync(config, `backends:\n  awssm:\n    region: eu-west-1\n    endpoint: ${moto.endpoint}\n  ssm:\n    region: eu-west-1\n    endpoint: ${moto.endpoint}\n`);
    writeTemplates(join(dir, "tpl"), join(dir, "out"), refs);
    const log = new Lines();
    const e = await run(join(dir, "tpl"), { config, log });
    const res = await e.settled();
    expect(res.ok, JSON.stringify(res.status.templates.filter((t) => t.state !== "rendered"))).toBe(true);
    values.forEach((v, i) => {
      expectSameBytes(join(dir, "out", `bin${i}`), v);
      expectSameBytes(join(dir, "out", `b64-${i}`), v);
    });
    expect(readFileSync(join(dir, "out", "asBase64"), "utf8")).toBe(values[1]!.toString("base64"));
    expect(small.length).toBeGreaterThan(3);
    small.forEach((v, i) => {
      expectSameBytes(join(dir, "out", `ssm${i}`), v);
      expectSameBytes(join(dir, "out", `ssmdir${i}`), v);
    });
    expect(log.leaks(values)).toEqual([]);
  });
});

describe("bytes inside text", () => {
  it("fail the template with an error naming the secret; the last good file stays; a one-tag template next to it is written", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const good = canary("good");
    const mem = createMemoryBackend({ values: { key: good } });
    writeFileSync(join(tpl, "text.tpl"), `---\ndest: ${join(dir, "out", "app.conf")}\nsecrets:\n  key: memory:key\n---\nkey = "{{key}}"\n`);
    writeFileSync(join(tpl, "whole.tpl"), `---\ndest: ${join(dir, "out", "key.bin")}\nsecrets:\n  key: memory:key\n---\n{{key}}`);
    const log = new Lines();
    current = await createEmissary({ templates: tpl, backends: [mem], env: {}, logger: createLogger({ level: "debug", destination: log.stream }), watch: false });
    const errors: string[] = [];
    current.on("error", (ev) => errors.push(ev.error.message));
    await current.start();
    await current.settled();
    expect(readFileSync(join(dir, "out", "app.conf"), "utf8")).toBe(`key = "${good}"\n`);

    const bad = Buffer.concat([binaryCanary(), randomBytes(8)]);
    mem.set("key", bad);
    await waitFor(() => errors.length > 0, 10_000, "the render error");
    await current.settled();
    expect(errors[0]).toContain(`text.tpl: secret "key" (memory:key) is not UTF-8 text`);
    expect(readFileSync(join(dir, "out", "app.conf"), "utf8")).toBe(`key = "${good}"\n`);
    expectSameBytes(join(dir, "out", "key.bin"), bad);
    expect(current.status().templates.find((t) => t.file.endsWith("text.tpl"))).toMatchObject({ state: "error" });
    // Nothing printed holds the value in any form, and nothing was replaced by U+FFFD anywhere.
    expect(log.leaks([bad])).toEqual([]);
    expect(log.lines.join("\n")).not.toContain("CANARY");
    expect(readFileSync(join(dir, "out", "app.conf")).includes(Buffer.from("\ufffd"))).toBe(false);
  });
});
