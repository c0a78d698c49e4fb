/**
 * The ssm backend against the real moto server: parameters written with the AWS SDK
 * (PutParameter, LabelParameterVersion, DeleteParameter) and read back as String, StringList and
 * SecureString (moto's default aws/ssm key), by name and ARN, at versions and labels, and as
 * paths with nesting; parameters that appear after the first fetch, overwrites picked up on
 * refresh, and the API calls counted at a recording proxy in front of moto.
 *
 * moto is started by the suite on a free loopback port. Missing moto: skipped with the reason
 * printed; under CI=true that is a failure instead.
 */
import { DeleteParameterCommand, LabelParameterVersionCommand, PutParameterCommand, SSMClient, type ParameterType } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { SsmBackend } from "../../backends/ssm.js";
import { SecretNotFoundError, extractValue, parseRef, refKey, type Secret } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { describeMoto, startMoto, useDummyAwsEnv, type Moto } from "../helpers/moto.js";
import { startRecordingProxy, type RecordingProxy } from "../fakes/aws-recording-proxy.js";
import { CapturedLog, fetchAll, fetchCtx, makeSsm, resolved, ssmRef as ref } from "../fakes/ssm-harness.js";

const REGION = "eu-west-1";
const ACCOUNT = "123456789012";

describeMoto("ssm against moto", () => {
  let moto: Moto;
  let admin: SSMClient;
  let restoreEnv: () => void;
  const log = new CapturedLog("ssm-moto");
  const backends: SsmBackend[] = [];
  const proxies: RecordingProxy[] = [];

  const backend = (config: Record<string, unknown> = {}, env: Record<string, string> = {}): SsmBackend => {
    const b = makeSsm(log, { region: REGION, endpoint: moto.endpoint, ...config }, env);
    backends.push(b);
    return b;
  };
  const put = async (name: string, value: string, type: ParameterType = "String"): Promise<number> => {
    const out = await admin.send(new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }));
    return out.Version!;
  };
  const arn = (name: string): string => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name.startsWith("/") ? "" : "/"}${name}`;
  const text = (ref: string, s: Secret) => extractValue(parseRef(ref), s);

  beforeAll(async () => {
    restoreEnv = useDummyAwsEnv({ AWS_ENDPOINT_URL_SSM: undefined });
    moto = await startMoto();
    admin = new SSMClient({ region: REGION, endpoint: moto.endpoint });
  });

  afterAll(async () => {
    for (const b of backends) await b.close?.();
    for (const p of proxies) await p.close();
    admin?.destroy();
    await moto?.stop();
    restoreEnv?.();
    log.flush();
    expect(log.lines.join("\n")).not.toContain("CANARY");
  });

  it("reads String, StringList and SecureString (default KMS key) by name and by ARN", async () => {
    const plain = canary("plain");
    const secure = canary("secure");
    await put("/moto/plain", plain);
    await put("/moto/list", "a,b,c", "StringList");
    await put("/moto/secure", secure, "SecureString");
    await put("toplevel", plain);
    const b = backend();

    expect((await b.fetch(ref("/moto/plain"), fetchCtx(log))).value).toBe(plain);
    expect((await b.fetch(ref("/moto/list"), fetchCtx(log))).value).toBe("a,b,c");
    expect((await b.fetch(ref("/moto/secure"), fetchCtx(log))).value).toBe(secure);
    expect((await b.fetch(ref("toplevel"), fetchCtx(log))).value).toBe(plain);
    expect((await b.fetch(ref(arn("/moto/secure")), fetchCtx(log))).value).toBe(secure);

    // Batched, including an ARN (which moto only answers alone: the backend finds that out and asks alone).
    const refs = [ref("/moto/plain"), ref("/moto/list"), ref("/moto/secure"), ref(arn("toplevel"))];
    const out = await fetchAll(b, log, refs);
    expect(refs.map((r) => (out.get(refKey(r)) as Secret).value)).toEqual([plain, "a,b,c", secure, plain]);
  });

  it("reads versions and labels (long form and selector), and follows a label moved to another version", async () => {
    const v1 = canary("v1");
    const v2 = canary("v2");
    const v3 = canary("v3");
    await put("/moto/ver", v1);
    await put("/moto/ver", v2);
    await put("/moto/ver", v3, "String");
    await admin.send(new LabelParameterVersionCommand({ Name: "/moto/ver", ParameterVersion: 1, Labels: ["blue"] }));
    const b = backend();
    const refs = [ref("/moto/ver"), ref("/moto/ver", { version: 1 }), ref("/moto/ver:2"), ref("/moto/ver", { label: "blue" }), ref("/moto/ver:blue")];
    const out = await fetchAll(b, log, refs);
    expect(refs.map((r) => (out.get(refKey(r)) as Secret).value)).toEqual([v3, v1, v2, v1, v1]);
    expect((out.get("ssm:/moto/ver") as Secret).version).toMatch(/^3@/);

    // The label moves to version 3: the refresh picks it up; the pinned version does not change.
    await admin.send(new LabelParameterVersionCommand({ Name: "/moto/ver", ParameterVersion: 3, Labels: ["blue"] }));
    const again = await fetchAll(b, log, refs, resolved(out));
    expect((again.get("ssm:/moto/ver?label=blue") as Secret).value).toBe(v3);
    expect((again.get("ssm:/moto/ver:blue") as Secret).value).toBe(v3);
    expect(again.get("ssm:/moto/ver?version=1")).toBe(out.get("ssm:/moto/ver?version=1"));

    // A version or label that does not exist is not set yet.
    await expect(b.fetch(ref("/moto/ver", { version: 9 }), fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);
    await expect(b.fetch(ref("/moto/ver", { label: "green" }), fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it("renders a path with nesting as a JSON object of relative names, usable whole, by field and as a section", async () => {
    const pw = canary("dbpw");
    const gossip = canary("gossip");
    await put("/app/db/password", pw, "SecureString");
    await put("/app/db/user", "app");
    await put("/app/gossip", gossip, "SecureString");
    await put("/app/deep/a/b/c", "deep");
    await put("/app/hosts", "h1,h2", "StringList");
    await put("/apple/not-below", "no");
    const b = backend();
    const s = await b.fetch(ref("/app/"), fetchCtx(log));
    expect(JSON.parse(s.value)).toEqual({ "db/password": pw, "db/user": "app", gossip, "deep/a/b/c": "deep", hosts: "h1,h2" });
    expect(text("ssm:/app/#db/password", s)).toEqual({ kind: "text", text: pw });
    expect(text("ssm:/app/#/deep~1a~1b~1c", s)).toEqual({ kind: "text", text: "deep" });
    const whole = text("ssm:/app/", s);
    expect(whole.kind).toBe("object");
    expect(whole.kind === "object" && whole.data).toMatchObject({ gossip });

    // A deeper path, and the root of one subtree.
    const db = await b.fetch(ref("/app/db/"), fetchCtx(log));
    expect(JSON.parse(db.value)).toEqual({ password: pw, user: "app" });
    expect(b.counts.getParametersByPath).toBeGreaterThanOrEqual(2);
  });

  it("a parameter and a path that appear after the first fetch: not yet set, then resolved", async () => {
    const b = backend();
    const refs = [ref("/later/one"), ref("/later/two"), ref("/later/tree/")];
    const first = await fetchAll(b, log, refs);
    for (const r of refs) expect(first.get(`ssm:${r.id}`)).toBeInstanceOf(SecretNotFoundError);
    const one = canary("one");
    await put("/later/one", one, "SecureString");
    await put("/later/tree/x", "x");
    const second = await fetchAll(b, log, refs);
    expect((second.get("ssm:/later/one") as Secret).value).toBe(one);
    expect(second.get("ssm:/later/two")).toBeInstanceOf(SecretNotFoundError);
    expect(JSON.parse((second.get("ssm:/later/tree/") as Secret).value)).toEqual({ x: "x" });
  });

  it("an overwrite is picked up on refresh; unchanged parameters keep their Secret; a deleted one is not set", async () => {
    const b = backend();
    const a1 = canary("a1");
    await put("/rot/a", a1, "SecureString");
    await put("/rot/b", canary("b"));
    const refs = [ref("/rot/a"), ref("/rot/b")];
    const s1 = await fetchAll(b, log, refs);
    const s2 = await fetchAll(b, log, refs, resolved(s1));
    expect(s2.get("ssm:/rot/a")).toBe(s1.get("ssm:/rot/a"));
    const a2 = canary("a2");
    await put("/rot/a", a2, "SecureString");
    const s3 = await fetchAll(b, log, refs, resolved(s2));
    expect(s3.get("ssm:/rot/a")).toMatchObject({ value: a2 });
    expect((s3.get("ssm:/rot/a") as Secret).version).toMatch(/^2@/);
    expect(s3.get("ssm:/rot/b")).toBe(s1.get("ssm:/rot/b"));
    await admin.send(new DeleteParameterCommand({ Name: "/rot/a" }));
    const s4 = await fetchAll(b, log, refs, resolved(s3));
    expect(s4.get("ssm:/rot/a")).toBeInstanceOf(SecretNotFoundError);
  });

  it("API calls at a recording proxy: ceil(M/10) GetParameters per cycle for M parameters in N templates, one walk per path", async () => {
    const proxy = await startRecordingProxy(moto.endpoint);
    proxies.push(proxy);
    const M = 23;
    const names: string[] = [];
    for (let i = 0; i < M; i++) {
      names.push(`/count/p${i}`);
      await put(`/count/p${i}`, canary(`c${i}`), i % 2 ? "SecureString" : "String");
    }
    for (let i = 0; i < 12; i++) await put(`/countpath/k${i}`, `v${i}`);
    const b = makeSsm(log, { region: REGION, endpoint: proxy.url });
    backends.push(b);
    // Four "templates", each naming every parameter, and two naming the path.
    const refs = [...[0, 1, 2, 3].flatMap(() => names.map((n) => ref(n))), ref("/countpath/"), ref("/countpath/")];
    const first = await fetchAll(b, log, refs);
    expect(proxy.count("GetParameters")).toBe(Math.ceil(M / 10));
    expect(proxy.count("GetParameter")).toBe(0);
    expect(proxy.count("GetParametersByPath")).toBe(2); // 12 parameters, 10 a page
    expect(proxy.calls.filter((c) => c.op === "GetParameters").flatMap((c) => c.names).sort()).toEqual(names.slice().sort());
    expect(Object.keys(JSON.parse((first.get("ssm:/countpath/") as Secret).value) as object)).toHaveLength(12);

    proxy.calls.length = 0;
    const second = await fetchAll(b, log, refs, resolved(first));
    expect(proxy.count()).toBe(Math.ceil(M / 10) + 2);
    for (const n of names) expect(second.get(`ssm:${n}`)).toBe(first.get(`ssm:${n}`));
    expect(second.get("ssm:/countpath/")).toBe(first.get("ssm:/countpath/"));
    expect(b.counts).toEqual({ getParameter: 0, getParameters: 2 * Math.ceil(M / 10), getParametersByPath: 4 });
  });

  it("takes the endpoint from AWS_ENDPOINT_URL_SSM and the region from AWS_REGION", async () => {
    const v = canary("envcfg");
    await put("/moto/envcfg", v, "SecureString");
    const b = makeSsm(log, {}, { AWS_REGION: REGION, AWS_ENDPOINT_URL_SSM: moto.endpoint });
    backends.push(b);
    expect((await b.fetch(ref("/moto/envcfg"), fetchCtx(log))).value).toBe(v);
  });
});
