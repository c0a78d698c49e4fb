/**
 * The awssm backend against a fake Secrets Manager on node:http: API call counting, the cheap
 * DescribeSecret refresh, batching and its fallback, and the failures moto cannot produce
 * (throttling, access denied, 5xx, slow and hanging answers, refused connections).
 */
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AwsSmBackend } from "../../backends/awssm.js";
import { ConfigError, FatalError, SecretNotFoundError, TransientError, extractValue, parseRef, refKey, safeError, type Secret, type SecretRef } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { DUMMY_AWS_ENV, useDummyAwsEnv } from "../helpers/moto.js";
import { FakeSecretsManager } from "../fakes/aws-secretsmanager.js";
import { CapturedLog, fetchCtx, makeAwsSm } from "../fakes/aws-harness.js";

const ref = (id: string, options: SecretRef["options"] = {}): SecretRef => ({ backend: "awssm", id, options });

let fake: FakeSecretsManager;
let restoreEnv: () => void;
const log = new CapturedLog("awssm-fake");
const backends: AwsSmBackend[] = [];
const planted: string[] = [];

function plant(label: string): string {
  const v = canary(label);
  planted.push(v);
  return v;
}

function backend(extra: Record<string, unknown> = {}, env: Record<string, string | undefined> = {}): AwsSmBackend {
  const b = makeAwsSm(log, { region: "eu-west-1", endpoint: fake.endpoint, ...extra }, env);
  backends.push(b);
  return b;
}

async function fetchAll(b: AwsSmBackend, refs: SecretRef[], previous = new Map<string, Secret>()): Promise<Map<string, Secret | Error>> {
  return b.fetchMany!(refs, { signal: new AbortController().signal, logger: log.logger, previous });
}

function expectNoLeak(text: string): void {
  expect(text).not.toContain("CANARY");
  for (const v of planted) expect(text).not.toContain(v);
  expect(text).not.toContain(DUMMY_AWS_ENV.AWS_SECRET_ACCESS_KEY);
  expect(text).not.toContain(DUMMY_AWS_ENV.AWS_ACCESS_KEY_ID);
  expect(text).not.toMatch(/Signature=|authorization/i);
}

beforeAll(async () => {
  restoreEnv = useDummyAwsEnv();
  fake = await FakeSecretsManager.start({ region: "eu-west-1" });
});

afterEach(() => {
  fake.clearFaults();
  fake.resetCalls();
});

afterAll(async () => {
  for (const b of backends) await b.close?.();
  await fake.close();
  restoreEnv();
  log.flush();
  expectNoLeak(log.lines.join("\n"));
});

describe("lazy SDK loading", () => {
  it("does not load @aws-sdk/client-secrets-manager until the first fetch", async () => {
    const require = createRequire(import.meta.url);
    const loaded = (): boolean => Object.keys(require.cache).some((k) => k.includes("client-secrets-manager"));
    const b = backend();
    b.validate!(ref("lazy/one"));
    expect(loaded()).toBe(false);
    fake.put("lazy/one", plant("lazy"));
    await b.fetch(ref("lazy/one"), fetchCtx(log));
    expect(loaded()).toBe(true);
  });
});

describe("API calls", () => {
  it("N templates over M unique secrets: ceil(M/20) batches at start, then only DescribeSecret while nothing changes", async () => {
    const M = 45;
    const values = new Map<string, string>();
    for (let i = 0; i < M; i++) {
      const name = `count/s${i}`;
      const v = plant(`count${i}`);
      values.set(name, v);
      fake.put(name, v);
    }
    // Three "templates" each naming every secret (the core dedupes by refKey; so does the backend).
    const refs = [0, 1, 2].flatMap(() => [...values.keys()].map((n) => ref(n)));
    const b = backend();

    const first = await fetchAll(b, refs);
    expect(fake.count("BatchGetSecretValue")).toBe(Math.ceil(M / 20));
    expect(fake.count("GetSecretValue")).toBe(0);
    expect(fake.count("DescribeSecret")).toBe(0);
    for (const [name, v] of values) expect((first.get(`awssm:${name}`) as Secret).value).toBe(v);
    expect(Math.max(...fake.calls.map((c) => c.secretIds.length))).toBeLessThanOrEqual(20);

    // Nothing changed: one DescribeSecret per unique secret, no value read.
    fake.resetCalls();
    const second = await fetchAll(b, refs, first as Map<string, Secret>);
    expect(fake.count("DescribeSecret")).toBe(M);
    expect(fake.count("GetSecretValue") + fake.count("BatchGetSecretValue")).toBe(0);
    for (const [name] of values) expect(second.get(`awssm:${name}`)).toBe(first.get(`awssm:${name}`));

    // Three secrets change: still M DescribeSecret, and one batch for the three changed ones.
    fake.resetCalls();
    const changed = ["count/s3", "count/s17", "count/s40"];
    for (const n of changed) {
      const v = plant("rotated");
      values.set(n, v);
      fake.put(n, v);
    }
    const third = await fetchAll(b, refs, second as Map<string, Secret>);
    expect(fake.count("DescribeSecret")).toBe(M);
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.calls.find((c) => c.op === "BatchGetSecretValue")!.secretIds.slice().sort()).toEqual(changed.slice().sort());
    expect(fake.count("GetSecretValue")).toBe(0);
    for (const [name, v] of values) expect((third.get(`awssm:${name}`) as Secret).value).toBe(v);

    // One secret changes: a batch of one is a plain GetSecretValue.
    fake.resetCalls();
    const v = plant("single");
    fake.put("count/s8", v);
    const fourth = await fetchAll(b, refs, third as Map<string, Secret>);
    expect(fake.count("DescribeSecret")).toBe(M);
    expect(fake.count("GetSecretValue")).toBe(1);
    expect(fake.count("BatchGetSecretValue")).toBe(0);
    expect((fourth.get("awssm:count/s8") as Secret).value).toBe(v);
    expect(b.counts.describe).toBe(3 * M);
  });

  it("refreshes a single reference with DescribeSecret and returns the previous Secret while unchanged", async () => {
    const b = backend();
    const v1 = plant("one");
    fake.put("single/a", v1);
    const s1 = await b.fetch(ref("single/a"), fetchCtx(log));
    expect(s1.value).toBe(v1);
    expect(s1.version).toBeTruthy();
    expect(fake.count("GetSecretValue")).toBe(1);
    fake.resetCalls();
    const s2 = await b.fetch(ref("single/a"), fetchCtx(log, s1));
    expect(s2).toBe(s1);
    expect(fake.calls.map((c) => c.op)).toEqual(["DescribeSecret"]);
  });

  it("uses the configured region for signing and the endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER", async () => {
    const b = makeAwsSm(log, {}, { AWS_REGION: "ap-southeast-2", AWS_ENDPOINT_URL_SECRETS_MANAGER: fake.endpoint });
    backends.push(b);
    fake.put("env/endpoint", plant("env"));
    await b.fetch(ref("env/endpoint"), fetchCtx(log));
    expect(fake.calls[0]!.region).toBe("ap-southeast-2");
    expect(fake.calls[0]!.accessKeyId).toBe(DUMMY_AWS_ENV.AWS_ACCESS_KEY_ID);
    expect(b.settings.regionSource).toBe("AWS_REGION");
  });
});

describe("versions and stages", () => {
  it("follows AWSCURRENT through a rotation (AWSPENDING → AWSCURRENT) and reads AWSPENDING in the long form", async () => {
    const b = backend();
    const oldV = plant("old");
    const v1 = fake.put("rot/db", oldV);
    const pendingValue = plant("pending");
    const v2 = fake.put("rot/db", pendingValue, ["AWSPENDING"]);
    const cur = ref("rot/db");
    const pend = ref("rot/db", { version_stage: "AWSPENDING" });

    const r1 = await fetchAll(b, [cur, pend]);
    expect(r1.get(refKey(cur))).toMatchObject({ value: oldV, version: v1 });
    expect(r1.get(refKey(pend))).toMatchObject({ value: pendingValue, version: v2 });
    // AWSPENDING cannot go through the batch call.
    expect(fake.calls.some((c) => c.op === "GetSecretValue" && c.versionStage === "AWSPENDING")).toBe(true);
    expect(fake.count("BatchGetSecretValue")).toBe(0);

    // finishSecret: AWSCURRENT moves to the pending version, AWSPENDING is removed.
    fake.moveStage("rot/db", "AWSCURRENT", v2);
    fake.removeStage("rot/db", "AWSPENDING");
    fake.resetCalls();
    const r2 = await fetchAll(b, [cur, pend], r1 as Map<string, Secret>);
    expect(fake.count("DescribeSecret")).toBe(1); // one per unique secret id, whatever the stages
    expect(r2.get(refKey(cur))).toMatchObject({ value: pendingValue, version: v2 });
    expect(r2.get(refKey(pend))).toBeInstanceOf(SecretNotFoundError);
  });

  it("reads AWSPREVIOUS and a pinned version_id; a pinned version is never re-read", async () => {
    const b = backend();
    const a = plant("a");
    const va = fake.put("pin/x", a);
    fake.put("pin/x", plant("b"));
    const prev = await b.fetch(ref("pin/x", { version_stage: "AWSPREVIOUS" }), fetchCtx(log));
    expect(prev.value).toBe(a);
    const pinned = await b.fetch(ref("pin/x", { version_id: va }), fetchCtx(log));
    expect(pinned).toMatchObject({ value: a, version: va });
    fake.put("pin/x", plant("c"));
    fake.resetCalls();
    const again = await b.fetch(ref("pin/x", { version_id: va }), fetchCtx(log, pinned));
    expect(again).toBe(pinned);
    expect(fake.calls.map((c) => c.op)).toEqual(["DescribeSecret"]);
  });

  it("returns SecretBinary as its bytes, marked binary: rendered as base64 by default, raw with encoding: binary, text with encoding: utf8", async () => {
    const b = backend();
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252]);
    fake.put("bin/raw", bytes);
    fake.put("bin/text", Buffer.from("hello text", "utf8"));
    const raw = await b.fetch(ref("bin/raw"), fetchCtx(log));
    expect(raw.binary).toBe(true);
    expect(Buffer.from(raw.value as Uint8Array).equals(bytes)).toBe(true);
    expect(extractValue(parseRef("awssm:bin/raw"), raw)).toEqual({ kind: "text", text: bytes.toString("base64") });
    const asBinary = extractValue(parseRef("awssm:bin/raw", { encoding: "binary" }), raw);
    expect(asBinary.kind).toBe("bytes");
    expect(Buffer.from((asBinary as { bytes: Uint8Array }).bytes).equals(bytes)).toBe(true);
    const text = await b.fetch(ref("bin/text"), fetchCtx(log));
    expect(extractValue(parseRef("awssm:bin/text", { encoding: "utf8" }), text)).toEqual({ kind: "text", text: "hello text" });
    // encoding is the core's option now: the backend does not take it.
    expect(() => b.validate!(ref("bin/text", { encoding: "utf8" }))).toThrow(/unknown option "encoding"/);
  });

  it("matches batch answers to references by name, full ARN and partial ARN", async () => {
    const b = backend();
    const vals = [plant("n"), plant("full"), plant("partial")];
    fake.put("arn/by-name", vals[0]!);
    fake.put("arn/by-full", vals[1]!);
    fake.put("arn/by-partial", vals[2]!);
    const full = fake.arn("arn/by-full");
    const partial = fake.arn("arn/by-partial").slice(0, -7);
    const refs = [ref("arn/by-name"), ref(full), ref(partial)];
    const out = await fetchAll(b, refs);
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.count("GetSecretValue")).toBe(0);
    refs.forEach((r, i) => expect((out.get(refKey(r)) as Secret).value).toBe(vals[i]));
  });

  it("empty and intentionally-empty values are not yet set, and polling them stays a DescribeSecret", async () => {
    const b = backend();
    fake.put("legacy/placeholder", "  intentionally-empty\n");
    fake.put("legacy/blank", " \n");
    await expect(b.fetch(ref("legacy/blank"), fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);
    const err = await b.fetch(ref("legacy/placeholder"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    expect((err as Error).message).toContain("awssm:legacy/placeholder");
    // The core retries not-set secrets every 10 s; while the placeholder version stays, that is one DescribeSecret.
    fake.resetCalls();
    await expect(b.fetch(ref("legacy/placeholder"), fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);
    expect(fake.calls.map((c) => c.op)).toEqual(["DescribeSecret"]);
    // Set: the raw value comes back; the core trims it (legacy poll refs are plain awssm:ID refs).
    const v = plant("legacy");
    fake.put("legacy/placeholder", `  ${v}\n`);
    const s = await b.fetch(ref("legacy/placeholder"), fetchCtx(log));
    expect(s.value).toBe(`  ${v}\n`);
    expect(extractValue(parseRef("awssm:legacy/placeholder"), s)).toEqual({ kind: "text", text: v });
    // Back to the placeholder after being set: not set again (the core keeps the last file).
    fake.put("legacy/placeholder", "intentionally-empty");
    await expect(b.fetch(ref("legacy/placeholder"), fetchCtx(log, s))).rejects.toBeInstanceOf(SecretNotFoundError);
  });
});

describe("fallbacks", () => {
  it("falls back to GetSecretValue when BatchGetSecretValue is denied, warns once, and stops trying it", async () => {
    const b = backend();
    const names = ["deny/a", "deny/b", "deny/c"];
    for (const n of names) fake.put(n, plant(n));
    fake.fault("BatchGetSecretValue", { kind: "error", type: "AccessDeniedException", message: "User: arn:aws:sts::123456789012:assumed-role/node is not authorized to perform: secretsmanager:BatchGetSecretValue" });
    const out = await fetchAll(b, names.map((n) => ref(n)));
    for (const n of names) expect((out.get(`awssm:${n}`) as Secret).value).toContain("CANARY");
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.count("GetSecretValue")).toBe(3);
    fake.resetCalls();
    await fetchAll(b, names.map((n) => ref(n)));
    expect(fake.count("BatchGetSecretValue")).toBe(0);
    expect(fake.count("GetSecretValue")).toBe(3);
    expect(log.find("BatchGetSecretValue is not available")).toHaveLength(1);
  });

  it("reports per-secret batch errors on their own reference only", async () => {
    const b = backend();
    fake.put("perr/ok", plant("ok"));
    fake.put("perr/denied", plant("denied"));
    fake.fault("GetSecretValue", { kind: "error", type: "AccessDeniedException", message: "not authorized to perform: secretsmanager:GetSecretValue" }, { secretId: "perr/denied" });
    const out = await fetchAll(b, [ref("perr/ok"), ref("perr/denied"), ref("perr/missing")]);
    expect((out.get("awssm:perr/ok") as Secret).value).toContain("CANARY");
    const denied = out.get("awssm:perr/denied");
    expect(denied).toBeInstanceOf(FatalError);
    expect((denied as Error).message).toMatch(/awssm:perr\/denied: AccessDeniedException/);
    expect(out.get("awssm:perr/missing")).toBeInstanceOf(SecretNotFoundError);
    expect(fake.count("BatchGetSecretValue")).toBe(1);
  });

  it("refreshes with GetSecretValue when DescribeSecret is denied for a secret", async () => {
    const b = backend();
    const v1 = plant("d1");
    fake.put("nodesc/a", v1);
    const s1 = await b.fetch(ref("nodesc/a"), fetchCtx(log));
    fake.fault("DescribeSecret", { kind: "error", type: "AccessDeniedException" }, { secretId: "nodesc/a" });
    const v2 = plant("d2");
    fake.put("nodesc/a", v2);
    const s2 = await b.fetch(ref("nodesc/a"), fetchCtx(log, s1));
    expect(s2.value).toBe(v2);
    fake.resetCalls();
    await b.fetch(ref("nodesc/a"), fetchCtx(log, s2));
    expect(fake.calls.map((c) => c.op)).toEqual(["GetSecretValue"]);
    expect(log.find("DescribeSecret denied")).toHaveLength(1);
  });
});

describe("errors", () => {
  it("ResourceNotFoundException means not yet set", async () => {
    const b = backend();
    const err = await b.fetch(ref("missing/nothing"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    expect((err as Error).message).toContain("awssm:missing/nothing: ResourceNotFoundException");
  });

  it("throttling is transient, and SDK retries stay bounded by max_attempts (default 2)", async () => {
    const b = backend();
    fake.put("thr/a", plant("thr"));
    fake.fault("GetSecretValue", { kind: "error", type: "ThrottlingException", message: "Rate exceeded" });
    const err = await b.fetch(ref("thr/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/awssm:thr\/a: ThrottlingException \(HTTP 400/);
    expect(fake.count("GetSecretValue")).toBe(2);

    fake.resetCalls();
    const one = backend({ max_attempts: 1 });
    await expect(one.fetch(ref("thr/a"), fetchCtx(log))).rejects.toBeInstanceOf(TransientError);
    expect(fake.count("GetSecretValue")).toBe(1);
  });

  it("5xx InternalServiceError is transient", async () => {
    const b = backend({ max_attempts: 1 });
    fake.put("five/a", plant("five"));
    fake.fault("GetSecretValue", { kind: "error", type: "InternalServiceError", status: 500 });
    const err = await b.fetch(ref("five/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain("HTTP 500");
  });

  it("AccessDeniedException, DecryptionFailure and InvalidRequestException are fatal, named, and carry nothing of the SDK error", async () => {
    const b = backend();
    fake.put("fatal/a", plant("fatal"));
    for (const type of ["AccessDeniedException", "DecryptionFailure", "InvalidRequestException"]) {
      fake.clearFaults();
      fake.fault("GetSecretValue", { kind: "error", type, message: `${type} for the test` });
      const err = await b.fetch(ref("fatal/a"), fetchCtx(log)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FatalError);
      const e = err as Error;
      expect(e.message).toContain(`awssm:fatal/a: ${type}`);
      expect(e.cause).toBeUndefined();
      expect(Object.keys(e)).not.toContain("$metadata");
      expectNoLeak(e.message);
      expectNoLeak(JSON.stringify(safeError(e)));
      expectNoLeak(JSON.stringify(e));
    }
  });

  it("a secret scheduled for deletion is fatal on first fetch and on refresh", async () => {
    const b = backend();
    fake.put("del/a", plant("del"));
    const s = await b.fetch(ref("del/a"), fetchCtx(log));
    fake.scheduleDeletion("del/a");
    await expect(b.fetch(ref("del/a"), fetchCtx(log, s))).rejects.toThrow(/scheduled for deletion/);
    await expect(b.fetch(ref("del/a"), fetchCtx(log))).rejects.toBeInstanceOf(FatalError);
  });

  it("a hanging endpoint fails with a transient timeout after request_timeout", async () => {
    const b = backend({ request_timeout: "300ms", max_attempts: 1 });
    fake.put("hang/a", plant("hang"));
    fake.fault("GetSecretValue", { kind: "hang" });
    const err = await b.fetch(ref("hang/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/awssm:hang\/a: TimeoutError/);
    expect(fake.count("GetSecretValue")).toBe(1);
  });

  it("a slow answer within request_timeout succeeds", async () => {
    const b = backend({ request_timeout: "20s" });
    const v = plant("slow");
    fake.put("slow/a", v);
    fake.fault("GetSecretValue", { kind: "delay", ms: 700 });
    expect((await b.fetch(ref("slow/a"), fetchCtx(log))).value).toBe(v);
  });

  it("an aborted fetch of a hanging request rejects", async () => {
    const b = backend({ request_timeout: "60s" });
    fake.put("abort/a", plant("abort"));
    fake.fault("GetSecretValue", { kind: "hang" });
    const ac = new AbortController();
    const p = b.fetch(ref("abort/a"), fetchCtx(log, undefined, ac.signal)).catch((e: unknown) => e);
    await expect.poll(() => fake.count("GetSecretValue"), { timeout: 20_000 }).toBe(1);
    ac.abort();
    expect(await p).toBeInstanceOf(Error);
  });

  it("a reset connection and a refused connection are transient", async () => {
    const b = backend({ max_attempts: 1 });
    fake.put("net/a", plant("net"));
    fake.fault("GetSecretValue", { kind: "reset" });
    await expect(b.fetch(ref("net/a"), fetchCtx(log))).rejects.toBeInstanceOf(TransientError);

    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = makeAwsSm(log, { region: "eu-west-1", endpoint: `http://127.0.0.1:${port}`, max_attempts: 1 });
    backends.push(dead);
    const err = await dead.fetch(ref("net/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain("ECONNREFUSED");
  });

  it("a closed backend refuses to fetch", async () => {
    const b = backend();
    await b.close!();
    await expect(b.fetch(ref("closed/a"), fetchCtx(log))).rejects.toBeInstanceOf(FatalError);
  });
});

describe("configuration and references", () => {
  it("rejects unknown keys and bad values, naming backends.awssm.<key>", () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ bogus: 1 }, "backends.awssm.bogus"],
      [{ endpoint: "not a url" }, "backends.awssm.endpoint"],
      [{ endpoint: "ftp://x" }, "backends.awssm.endpoint"],
      [{ region: "" }, "backends.awssm.region"],
      [{ max_attempts: 0 }, "backends.awssm.max_attempts"],
      [{ request_timeout: "soon" }, "backends.awssm.request_timeout"],
    ];
    for (const [config, field] of bad) {
      let caught: unknown;
      try {
        makeAwsSm(log, config);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(config)).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).field).toBe(field);
      expect((caught as Error).message).toContain(field);
    }
    // refresh is the core's key: accepted and ignored.
    expect(() => makeAwsSm(log, { refresh: "1s", region: "eu-west-1" })).not.toThrow();
  });

  it("validates references without fetching", () => {
    const b = backend();
    expect(() => b.validate!(ref("ok/name_+=.@-"))).not.toThrow();
    expect(() => b.validate!(ref("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"))).not.toThrow();
    expect(() => b.validate!(ref("has space"))).toThrow(FatalError);
    expect(() => b.validate!(ref("arn:aws:s3:::bucket"))).toThrow(/not a Secrets Manager ARN/);
    expect(() => b.validate!(ref("x", { version: 3 }))).toThrow(/unknown option "version"/);
    expect(() => b.validate!(ref("x", { encoding: "hex" }))).toThrow(/encoding/);
    expect(() => b.validate!(ref("x", { version_stage: "" }))).toThrow(/version_stage/);
    expect(b.defaultRefreshMs).toBe(3_600_000);
  });
});
