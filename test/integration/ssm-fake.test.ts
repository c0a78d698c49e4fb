/**
 * The ssm backend (the real AWS SDK) against a fake Parameter Store on node:http: API call
 * counting, batching and its fallbacks, paths with pagination, and the failures moto cannot
 * produce (access denied for one parameter of a batch, KMS errors, throttling, 5xx, slow and
 * hanging answers, refused connections).
 */
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SsmBackend } from "../../backends/ssm.js";
import { ConfigError, FatalError, SecretNotFoundError, TransientError, extractValue, parseRef, refKey, safeError, type Secret } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { DUMMY_AWS_ENV, useDummyAwsEnv } from "../helpers/moto.js";
import { assertBackendConformance } from "../../src/testing/index.js";
import { FakeSsm } from "../fakes/aws-ssm.js";
import { CapturedLog, fetchAll, fetchCtx, makeSsm, resolved, ssmRef as ref } from "../fakes/ssm-harness.js";

let fake: FakeSsm;
let restoreEnv: () => void;
const log = new CapturedLog("ssm-fake");
const backends: SsmBackend[] = [];
const planted: string[] = [];

function plant(label: string): string {
  const v = canary(label);
  planted.push(v);
  return v;
}

function backend(extra: Record<string, unknown> = {}, env: Record<string, string | undefined> = {}): SsmBackend {
  const b = makeSsm(log, { region: "eu-west-1", endpoint: fake.endpoint, ...extra }, env);
  backends.push(b);
  return b;
}

const all = (b: SsmBackend, refs: Parameters<typeof fetchAll>[2], previous?: Map<string, Secret>) => fetchAll(b, log, refs, previous);

function expectNoLeak(text: string): void {
  expect(text).not.toContain("CANARY");
  for (const v of planted) expect(text).not.toContain(v);
  expect(text).not.toContain(DUMMY_AWS_ENV.AWS_SECRET_ACCESS_KEY);
  expect(text).not.toContain(DUMMY_AWS_ENV.AWS_ACCESS_KEY_ID);
  expect(text).not.toMatch(/Signature=|authorization/i);
}

beforeAll(async () => {
  restoreEnv = useDummyAwsEnv({ AWS_ENDPOINT_URL_SSM: undefined });
  fake = await FakeSsm.start({ region: "eu-west-1" });
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
  it("does not load @aws-sdk/client-ssm until the first fetch", async () => {
    const require = createRequire(import.meta.url);
    const loaded = (): boolean => Object.keys(require.cache).some((k) => k.includes("client-ssm"));
    const b = backend();
    b.validate!(ref("/lazy/one"));
    expect(loaded()).toBe(false);
    fake.put("/lazy/one", plant("lazy"));
    await b.fetch(ref("/lazy/one"), fetchCtx(log));
    expect(loaded()).toBe(true);
    expect(log.find("AWS Systems Manager client ready").at(-1)).toMatchObject({ region: "eu-west-1", regionSource: "config" });
  });
});

describe("conformance", () => {
  it("passes the backend conformance kit, including a version change", async () => {
    const v = plant("conf");
    fake.put("/conf/a", v, "SecureString");
    await assertBackendConformance({
      backend: makeSsm(log, { region: "eu-west-1", endpoint: fake.endpoint }),
      existing: { ref: ref("/conf/a"), expectedValue: v },
      missing: ref("/conf/missing"),
      change: async () => void fake.put("/conf/a", plant("conf2"), "SecureString"),
      timeoutMs: 10_000,
    });
  });
});

describe("API calls", () => {
  it("N templates over M unique parameters: ceil(M/10) GetParameters per cycle, and an unchanged parameter returns the same Secret", async () => {
    const M = 25;
    const values = new Map<string, string>();
    for (let i = 0; i < M; i++) {
      const name = `/count/p${i}`;
      const v = plant(`count${i}`);
      values.set(name, v);
      fake.put(name, v, i % 3 === 0 ? "SecureString" : "String");
    }
    // Three "templates" each naming every parameter; the backend dedupes by reference.
    const refs = [0, 1, 2].flatMap(() => [...values.keys()].map((n) => ref(n)));
    const b = backend();

    const first = await all(b, refs);
    expect(fake.count("GetParameters")).toBe(Math.ceil(M / 10));
    expect(fake.count("GetParameter")).toBe(0);
    expect(fake.calls.every((c) => c.withDecryption)).toBe(true);
    expect(Math.max(...fake.calls.map((c) => c.names.length))).toBeLessThanOrEqual(10);
    expect(fake.calls.flatMap((c) => c.names).sort()).toEqual([...values.keys()].sort());
    for (const [name, v] of values) expect((first.get(`ssm:${name}`) as Secret).value).toBe(v);
    expect(b.counts).toEqual({ getParameter: 0, getParameters: 3, getParametersByPath: 0 });

    // Refresh with nothing changed: the same ceil(M/10) calls, and the very same Secret objects.
    fake.resetCalls();
    const second = await all(b, refs, resolved(first));
    expect(fake.count()).toBe(Math.ceil(M / 10));
    for (const [name] of values) expect(second.get(`ssm:${name}`)).toBe(first.get(`ssm:${name}`));

    // Two parameters change: still ceil(M/10) calls; new values and versions for those two only.
    fake.resetCalls();
    for (const n of ["/count/p4", "/count/p20"]) {
      const v = plant("rotated");
      values.set(n, v);
      fake.put(n, v);
    }
    const third = await all(b, refs, resolved(second));
    expect(fake.count()).toBe(Math.ceil(M / 10));
    for (const [name, v] of values) expect((third.get(`ssm:${name}`) as Secret).value).toBe(v);
    expect((third.get("ssm:/count/p4") as Secret).version).not.toBe((second.get("ssm:/count/p4") as Secret).version);
    expect(third.get("ssm:/count/p5")).toBe(second.get("ssm:/count/p5"));
  });

  it("a lone reference is one GetParameter, refreshed the same way", async () => {
    const b = backend();
    const v1 = plant("one");
    fake.put("single", v1);
    const s1 = await b.fetch(ref("single"), fetchCtx(log));
    expect(s1).toMatchObject({ value: v1 });
    expect(s1.version).toMatch(/^1@/);
    expect(fake.calls.map((c) => [c.op, c.names, c.withDecryption])).toEqual([["GetParameter", ["single"], true]]);
    const s2 = await b.fetch(ref("single"), fetchCtx(log, s1));
    expect(s2).toBe(s1);
    expect(fake.count("GetParameter")).toBe(2);
  });

  it("the same parameter at two selectors never shares a GetParameters call (the answer names the parameter, not the selector)", async () => {
    const b = backend();
    const a = plant("a");
    fake.put("/sel/x", a);
    const bv = plant("b");
    fake.put("/sel/x", bv);
    fake.label("/sel/x", 1, "old");
    fake.put("/sel/y", plant("y"));
    const refs = [ref("/sel/x"), ref("/sel/x", { version: 1 }), ref("/sel/x:old"), ref("/sel/y")];
    const out = await all(b, refs);
    expect((out.get("ssm:/sel/x") as Secret).value).toBe(bv);
    expect((out.get("ssm:/sel/x?version=1") as Secret).value).toBe(a);
    expect((out.get("ssm:/sel/x:old") as Secret).value).toBe(a);
    for (const c of fake.calls) {
      const bases = c.names.map((n) => n.split(":")[0]);
      expect(new Set(bases).size).toBe(bases.length);
    }
    expect(fake.calls.map((c) => [c.op, c.names.length]).sort()).toEqual([["GetParameter", 1], ["GetParameter", 1], ["GetParameters", 2]]); // [x, y], [x:1], [x:old]
  });

  it("uses the configured region for signing and the endpoint from AWS_ENDPOINT_URL_SSM, not the Secrets Manager one", async () => {
    const b = makeSsm(log, {}, { AWS_REGION: "ap-southeast-2", AWS_ENDPOINT_URL_SSM: fake.endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER: "http://127.0.0.1:9" });
    backends.push(b);
    expect(b.settings).toMatchObject({ endpoint: fake.endpoint, region: "ap-southeast-2", regionSource: "AWS_REGION" });
    fake.put("/env/endpoint", plant("env"));
    await b.fetch(ref("/env/endpoint"), fetchCtx(log));
    expect(fake.calls[0]!.region).toBe("ap-southeast-2");
    expect(fake.calls[0]!.accessKeyId).toBe(DUMMY_AWS_ENV.AWS_ACCESS_KEY_ID);
    // AWS_ENDPOINT_URL is the fallback; the config wins over both.
    expect(makeSsm(log, {}, { AWS_ENDPOINT_URL: "http://127.0.0.1:7000" }).settings.endpoint).toBe("http://127.0.0.1:7000");
    expect(makeSsm(log, { endpoint: "http://127.0.0.1:7001" }, { AWS_ENDPOINT_URL_SSM: "http://127.0.0.1:7002" }).settings.endpoint).toBe("http://127.0.0.1:7001");
    expect(makeSsm(log, {}, { AWS_ENDPOINT_URL_SSM: "http://127.0.0.1:7002", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }).settings.endpoint).toBeUndefined();
  });
});

describe("paths", () => {
  it("renders every parameter below a path, recursively, as a JSON object keyed by relative names, over several pages", async () => {
    const b = backend();
    const values: Record<string, string> = {};
    for (let i = 0; i < 23; i++) {
      const rel = i % 2 ? `svc${i}/password` : `key${i}`;
      values[rel] = plant(`path${i}`);
      fake.put(`/tree/${rel}`, values[rel], "SecureString");
    }
    fake.put("/treeless/other", plant("outside"));
    const s = await b.fetch(ref("/tree/"), fetchCtx(log));
    expect(JSON.parse(s.value)).toEqual(values);
    expect(Object.keys(JSON.parse(s.value) as object)).toEqual(Object.keys(values).sort());
    const paths = fake.calls.filter((c) => c.op === "GetParametersByPath");
    expect(paths).toHaveLength(3); // 23 parameters, 10 a page
    expect(paths.every((c) => c.path === "/tree" && c.recursive && c.withDecryption)).toBe(true);
    expect(b.counts.getParametersByPath).toBe(3);
    expect(extractValue(parseRef("ssm:/tree/#svc1/password"), s)).toEqual({ kind: "text", text: values["svc1/password"] });

    // Unchanged: the same Secret object.
    fake.resetCalls();
    expect(await b.fetch(ref("/tree/"), fetchCtx(log, s))).toBe(s);
    // A new parameter below the path changes the object.
    const added = plant("added");
    fake.put("/tree/zz/new", added);
    const s2 = await b.fetch(ref("/tree/"), fetchCtx(log, s));
    expect(s2).not.toBe(s);
    expect(JSON.parse(s2.value)["zz/new"]).toBe(added);
  });

  it("an empty path is not set yet; more than 1000 parameters is a fatal error naming the reference", async () => {
    const b = backend();
    await expect(b.fetch(ref("/void/"), fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);
    for (let i = 0; i < 1001; i++) fake.put(`/huge/p${i}`, "x");
    fake.resetCalls();
    const err = await b.fetch(ref("/huge/"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toMatch(/^ssm:\/huge\/: more than 1000 parameters/);
    expect(fake.count("GetParametersByPath")).toBe(100);
  });
});

describe("fallbacks", () => {
  it("one denied parameter fails a GetParameters call: each is asked alone, and the denied one stays alone while it fails", async () => {
    const b = backend();
    const names = ["/deny/a", "/deny/b", "/deny/c"];
    for (const n of names) fake.put(n, plant(n));
    fake.fault("GetParameters", { kind: "error", type: "AccessDeniedException", message: "User: arn:aws:sts::123456789012:assumed-role/node/i-0 is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:eu-west-1:123456789012:parameter/deny/b" }, { name: "/deny/b" });
    fake.fault("GetParameter", { kind: "error", type: "AccessDeniedException", message: "User: arn:aws:sts::123456789012:assumed-role/node/i-0 is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:eu-west-1:123456789012:parameter/deny/b" }, { name: "/deny/b" });
    const refs = names.map((n) => ref(n));
    const out = await all(b, refs);
    expect((out.get("ssm:/deny/a") as Secret).value).toContain("CANARY");
    expect((out.get("ssm:/deny/c") as Secret).value).toContain("CANARY");
    const denied = out.get("ssm:/deny/b") as Error;
    expect(denied).toBeInstanceOf(FatalError);
    expect(denied.message).toMatch(/^ssm:\/deny\/b: AccessDeniedException \(HTTP 400/);
    expect(denied.message).toContain("ssm:GetParameter on resource");
    expect(fake.calls.map((c) => c.op)).toEqual(["GetParameters", "GetParameter", "GetParameter", "GetParameter"]);

    // Next cycle: the two readable ones in one batch, the denied one alone.
    fake.resetCalls();
    const again = await all(b, refs, resolved(out));
    expect(again.get("ssm:/deny/b")).toBeInstanceOf(FatalError);
    expect(fake.calls.map((c) => [c.op, c.names.length]).sort()).toEqual([["GetParameter", 1], ["GetParameters", 2]]);
    expect(log.find("this parameter fails a GetParameters call")).toHaveLength(1);

    // Access granted: read alone once more, then batched with the others again.
    fake.clearFaults();
    fake.resetCalls();
    const fixed = await all(b, refs, resolved(again));
    expect((fixed.get("ssm:/deny/b") as Secret).value).toContain("CANARY");
    fake.resetCalls();
    await all(b, refs, resolved(fixed));
    expect(fake.calls.map((c) => [c.op, c.names.length])).toEqual([["GetParameters", 3]]);
  });

  it("InvalidParameters of a batch are not set yet; a missing version is ParameterVersionNotFound", async () => {
    const b = backend();
    fake.put("/inv/here", plant("here"));
    const out = await all(b, [ref("/inv/here"), ref("/inv/missing"), ref("/inv/here", { version: 7 }), ref("/inv/here", { label: "blue" })]);
    expect((out.get("ssm:/inv/here") as Secret).value).toContain("CANARY");
    expect(out.get("ssm:/inv/missing")).toBeInstanceOf(SecretNotFoundError);
    expect((out.get("ssm:/inv/missing") as Error).message).toBe("ssm:/inv/missing: ParameterNotFound (GetParameters lists it as invalid)");
    expect(out.get("ssm:/inv/here?version=7")).toBeInstanceOf(SecretNotFoundError);
    expect((out.get("ssm:/inv/here?version=7") as Error).message).toContain("ParameterVersionNotFound");
    expect(out.get("ssm:/inv/here?label=blue")).toBeInstanceOf(SecretNotFoundError);
    // The same alone, through GetParameter.
    const err = await b.fetch(ref("/inv/here:7"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    expect((err as Error).message).toMatch(/^ssm:\/inv\/here:7: ParameterVersionNotFound \(HTTP 400/);
  });

  it("empty and intentionally-empty values are not set yet", async () => {
    const b = backend();
    fake.put("/legacy/placeholder", "  intentionally-empty\n");
    fake.put("/legacy/blank", " ");
    const out = await all(b, [ref("/legacy/placeholder"), ref("/legacy/blank")]);
    expect(out.get("ssm:/legacy/placeholder")).toBeInstanceOf(SecretNotFoundError);
    expect(out.get("ssm:/legacy/blank")).toBeInstanceOf(SecretNotFoundError);
    const v = plant("legacy");
    fake.put("/legacy/placeholder", ` ${v}\n`);
    const s = await b.fetch(ref("/legacy/placeholder"), fetchCtx(log));
    expect(extractValue(parseRef("ssm:/legacy/placeholder"), s)).toEqual({ kind: "text", text: v });
  });
});

describe("errors", () => {
  it("ParameterNotFound alone means not yet set", async () => {
    const err = await backend().fetch(ref("/missing/nothing"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    expect((err as Error).message).toMatch(/^ssm:\/missing\/nothing: ParameterNotFound/);
  });

  it("KMS failures and AccessDeniedException are fatal, name the reference and the AWS error, and carry nothing of the SDK error", async () => {
    const b = backend();
    fake.put("/kms/a", plant("kms"), "SecureString");
    for (const type of ["AccessDeniedException", "InvalidKeyId", "KMSAccessDeniedException", "KMSDisabledException", "KMSNotFoundException", "KMSInvalidStateException", "KMSSomethingNew"]) {
      fake.clearFaults();
      fake.fault("GetParameter", { kind: "error", type, message: `${type} for the test: key arn:aws:kms:eu-west-1:123456789012:key/1234` });
      const err = await b.fetch(ref("/kms/a"), fetchCtx(log)).catch((e: unknown) => e);
      expect(err, type).toBeInstanceOf(FatalError);
      const e = err as Error;
      expect(e.message).toContain(`ssm:/kms/a: ${type}`);
      if (type !== "AccessDeniedException" && type !== "KMSSomethingNew") expect(e.message).toContain("kms:Decrypt");
      expect(e.cause).toBeUndefined();
      expect(Object.keys(e)).not.toContain("$metadata");
      expectNoLeak(e.message);
      expectNoLeak(JSON.stringify(safeError(e)));
      expectNoLeak(JSON.stringify(e));
    }
  });

  it("a KMS failure of one SecureString in a batch stays on that reference", async () => {
    const b = backend();
    fake.put("/kmsb/ok", plant("ok"), "SecureString");
    fake.put("/kmsb/bad", plant("bad"), "SecureString");
    fake.fault("*", { kind: "error", type: "KMSDisabledException", message: "arn:aws:kms:eu-west-1:123456789012:key/1234 is disabled." }, { name: "/kmsb/bad" });
    const out = await all(b, [ref("/kmsb/ok"), ref("/kmsb/bad")]);
    expect((out.get("ssm:/kmsb/ok") as Secret).value).toContain("CANARY");
    expect(out.get("ssm:/kmsb/bad")).toBeInstanceOf(FatalError);
    expect((out.get("ssm:/kmsb/bad") as Error).message).toContain("KMSDisabledException");
  });

  it("throttling is transient, for a whole batch, and SDK retries stay bounded by max_attempts (default 2)", async () => {
    const b = backend();
    fake.put("/thr/a", plant("thr"));
    fake.put("/thr/b", plant("thr"));
    fake.fault("*", { kind: "error", type: "ThrottlingException", message: "Rate exceeded" });
    const err = await b.fetch(ref("/thr/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/^ssm:\/thr\/a: ThrottlingException \(HTTP 400/);
    expect(fake.count("GetParameter")).toBe(2);

    fake.resetCalls();
    const one = backend({ max_attempts: 1 });
    const out = await all(one, [ref("/thr/a"), ref("/thr/b")]);
    expect(out.get("ssm:/thr/a")).toBeInstanceOf(TransientError);
    expect(out.get("ssm:/thr/b")).toBeInstanceOf(TransientError);
    expect(fake.calls.map((c) => c.op)).toEqual(["GetParameters"]); // throttling is not a reason to split
  });

  it("5xx InternalServerError is transient", async () => {
    const b = backend({ max_attempts: 1 });
    fake.put("/five/a", plant("five"));
    fake.fault("GetParameter", { kind: "error", type: "InternalServerError", status: 500 });
    const err = await b.fetch(ref("/five/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain("HTTP 500");
  });

  it("a failing path walk is the path's error", async () => {
    const b = backend({ max_attempts: 1 });
    fake.put("/pfail/a", plant("pfail"));
    fake.fault("GetParametersByPath", { kind: "error", type: "AccessDeniedException", message: "not authorized to perform: ssm:GetParametersByPath" });
    const err = await b.fetch(ref("/pfail/"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toMatch(/^ssm:\/pfail\/: AccessDeniedException/);
  });

  it("a hanging endpoint fails with a transient timeout after request_timeout", async () => {
    const b = backend({ request_timeout: "300ms", max_attempts: 1 });
    fake.put("/hang/a", plant("hang"));
    fake.fault("GetParameter", { kind: "hang" });
    const err = await b.fetch(ref("/hang/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/^ssm:\/hang\/a: TimeoutError/);
  });

  it("a slow answer within request_timeout succeeds", async () => {
    const b = backend({ request_timeout: "20s" });
    const v = plant("slow");
    fake.put("/slow/a", v);
    fake.fault("GetParameter", { kind: "delay", ms: 500 });
    expect((await b.fetch(ref("/slow/a"), fetchCtx(log))).value).toBe(v);
  });

  it("an aborted fetch of a hanging request rejects", async () => {
    const b = backend({ request_timeout: "60s" });
    fake.put("/abort/a", plant("abort"));
    fake.fault("GetParameter", { kind: "hang" });
    const ac = new AbortController();
    const p = b.fetch(ref("/abort/a"), fetchCtx(log, undefined, ac.signal)).catch((e: unknown) => e);
    await expect.poll(() => fake.count("GetParameter"), { timeout: 20_000 }).toBe(1);
    ac.abort();
    expect(await p).toBeInstanceOf(Error);
  });

  it("a reset connection and a refused connection are transient", async () => {
    const b = backend({ max_attempts: 1 });
    fake.put("/net/a", plant("net"));
    fake.fault("GetParameter", { kind: "reset" });
    await expect(b.fetch(ref("/net/a"), fetchCtx(log))).rejects.toBeInstanceOf(TransientError);

    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = makeSsm(log, { region: "eu-west-1", endpoint: `http://127.0.0.1:${port}`, max_attempts: 1 });
    backends.push(dead);
    const err = await dead.fetch(ref("/net/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain("ECONNREFUSED");
  });

  it("no region anywhere is a fatal error saying where to set one", async () => {
    const b = makeSsm(log, { endpoint: fake.endpoint });
    backends.push(b);
    const err = await b.fetch(ref("/noregion/a"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toContain("backends.ssm.region");
  });

  it("a closed backend refuses to fetch", async () => {
    const b = backend();
    await b.close!();
    await expect(b.fetch(ref("/closed/a"), fetchCtx(log))).rejects.toBeInstanceOf(FatalError);
  });
});

describe("configuration and references", () => {
  it("rejects unknown keys and bad values, naming backends.ssm.<key>", () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ bogus: 1 }, "backends.ssm.bogus"],
      [{ endpoint: "not a url" }, "backends.ssm.endpoint"],
      [{ endpoint: "ftp://x" }, "backends.ssm.endpoint"],
      [{ region: "" }, "backends.ssm.region"],
      [{ region: "Not A Region" }, "backends.ssm.region"],
      [{ max_attempts: 0 }, "backends.ssm.max_attempts"],
      [{ request_timeout: "soon" }, "backends.ssm.request_timeout"],
    ];
    for (const [config, field] of bad) {
      let caught: unknown;
      try {
        makeSsm(log, config);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(config)).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).field).toBe(field);
      expect((caught as Error).message).toContain(field);
    }
    expect(() => makeSsm(log, {}, { AWS_ENDPOINT_URL_SSM: "nope" })).toThrow(/AWS_ENDPOINT_URL_SSM/);
    // refresh is the core's key: accepted and ignored.
    expect(() => makeSsm(log, { refresh: "1s", region: "eu-west-1" })).not.toThrow();
  });

  it("validates references without fetching", () => {
    const b = backend();
    const ok = [
      ref("/prod/consul/gossip"),
      ref("plain_name-1.2"),
      ref("/prod/app/"),
      ref("/"),
      ref("/prod/db:3"),
      ref("/prod/db:blue"),
      ref("/prod/db", { version: 3 }),
      ref("/prod/db", { version: "12" }),
      ref("/prod/db", { label: "blue_green" }),
      ref("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db"),
      ref("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db:4"),
      ref("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
    ];
    for (const r of ok) expect(() => b.validate!(r), refKey(r)).not.toThrow();
    const bad: [ReturnType<typeof ref>, RegExp][] = [
      [ref("has space"), /1 to 1011 letters/],
      [ref("prod/db"), /must start with "\/"/],
      [ref("prod/"), /must start with "\/"/],
      [ref("/a//b"), /"\/\/"/],
      [ref("arn:aws:s3:::bucket"), /not a Parameter Store ARN/],
      [ref("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/"), /not by ARN/],
      [ref("/prod/db", { version_stage: "AWSCURRENT" }), /unknown option "version_stage"/],
      [ref("/prod/db", { version: 0 }), /version must be a positive whole number/],
      [ref("/prod/db", { version: "latest" }), /version must be/],
      [ref("/prod/db", { label: "9lives" }), /neither a version number nor a label/],
      [ref("/prod/db", { label: "12" }), /label must be a label name \(use version: for a number\)/],
      [ref("/prod/db", { label: "awsfoo" }), /neither a version number nor a label/],
      [ref("/prod/db", { version: 1, label: "x" }), /not both/],
      [ref("/prod/db:3", { version: 3 }), /not both/],
      [ref("/prod/db:bad label"), /neither a version number nor a label/],
      [ref("/prod/app/", { version: 2 }), /a path takes no version or label/],
    ];
    for (const [r, re] of bad) {
      expect(() => b.validate!(r), refKey(r)).toThrow(FatalError);
      expect(() => b.validate!(r), refKey(r)).toThrow(re);
    }
    expect(b.defaultRefreshMs).toBe(3_600_000);
  });
});
