/**
 * The awssm backend against the real moto server: secrets created, updated and rotated with the
 * AWS SDK (CreateSecret, PutSecretValue, UpdateSecretVersionStage), read back by name, ARN, field,
 * pointer, stage and version, with the cheap DescribeSecret refresh and batching in play.
 *
 * moto is started by the suite on a free loopback port. Missing moto: skipped with the reason
 * printed; under CI=true that is a failure instead.
 */
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { AwsSmBackend } from "../../backends/awssm.js";
import { FatalError, SecretNotFoundError, extractValue, parseRef, refKey, type Secret, type SecretRef } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { describeMoto, startMoto, useDummyAwsEnv, type Moto } from "../helpers/moto.js";
import { CapturedLog, fetchCtx, makeAwsSm } from "../fakes/aws-harness.js";

const REGION = "eu-west-1";
const ref = (id: string, options: SecretRef["options"] = {}): SecretRef => ({ backend: "awssm", id, options });

describeMoto("awssm against moto", () => {
  let moto: Moto;
  let admin: SecretsManagerClient;
  let restoreEnv: () => void;
  const log = new CapturedLog("awssm-moto");
  const backends: AwsSmBackend[] = [];

  const backend = (config: Record<string, unknown> = {}, env: Record<string, string> = {}): AwsSmBackend => {
    const b = makeAwsSm(log, { region: REGION, endpoint: moto.endpoint, ...config }, env);
    backends.push(b);
    return b;
  };
  const create = async (name: string, value: string | Uint8Array): Promise<{ arn: string; version: string }> => {
    const out = await admin.send(new CreateSecretCommand({ Name: name, ...(typeof value === "string" ? { SecretString: value } : { SecretBinary: value }) }));
    return { arn: out.ARN!, version: out.VersionId! };
  };

  beforeAll(async () => {
    restoreEnv = useDummyAwsEnv();
    moto = await startMoto();
    admin = new SecretsManagerClient({ region: REGION, endpoint: moto.endpoint });
  });

  afterAll(async () => {
    for (const b of backends) await b.close?.();
    admin?.destroy();
    await moto?.stop();
    restoreEnv?.();
    log.flush();
    expect(log.lines.join("\n")).not.toContain("CANARY");
  });

  it("reads a string secret by name and by ARN, and a JSON secret by #field and #/pointer", async () => {
    const plain = canary("plain");
    const { arn } = await create("moto/plain", plain);
    const password = canary("pw");
    const ca = canary("ca");
    await create("moto/json", JSON.stringify({ username: "app", password, "dotted.key": "d", tls: { ca } }));
    const b = backend();

    expect((await b.fetch(ref("moto/plain"), fetchCtx(log))).value).toBe(plain);
    expect((await b.fetch(ref(arn), fetchCtx(log))).value).toBe(plain);

    const spec = (text: string) => parseRef(text);
    const json = await b.fetch(ref("moto/json"), fetchCtx(log));
    expect(extractValue(spec("awssm:moto/json#password"), json)).toEqual({ kind: "text", text: password });
    expect(extractValue(spec("awssm:moto/json#dotted.key"), json)).toEqual({ kind: "text", text: "d" });
    expect(extractValue(spec("awssm:moto/json#/tls/ca"), json)).toEqual({ kind: "text", text: ca });
  });

  it("returns SecretBinary as its bytes, rendered as base64 by default and raw with encoding: binary", async () => {
    const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00, 0x10, 0x0d, 0x0a, 0xff]);
    await create("moto/binary", bytes);
    const s = await backend().fetch(ref("moto/binary"), fetchCtx(log));
    expect(s.binary).toBe(true);
    expect(Buffer.from(s.value as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
    expect(extractValue(parseRef("awssm:moto/binary"), s)).toEqual({ kind: "text", text: Buffer.from(bytes).toString("base64") });
    const raw = extractValue(parseRef("awssm:moto/binary", { encoding: "binary" }), s);
    expect(raw.kind === "bytes" && Buffer.from(raw.bytes).equals(Buffer.from(bytes))).toBe(true);
  });

  it("waits for a secret that does not exist yet, then resolves it", async () => {
    const b = backend();
    await expect(b.fetch(ref("moto/later"), fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);
    const v = canary("later");
    await create("moto/later", v);
    expect((await b.fetch(ref("moto/later"), fetchCtx(log))).value).toBe(v);
  });

  it("refreshes with DescribeSecret only, and reads the value again after PutSecretValue", async () => {
    const b = backend();
    const v1 = canary("v1");
    const { version } = await create("moto/update", v1);
    const s1 = await b.fetch(ref("moto/update"), fetchCtx(log));
    expect(s1).toMatchObject({ value: v1, version });

    const before = { ...b.counts };
    const s2 = await b.fetch(ref("moto/update"), fetchCtx(log, s1));
    expect(s2).toBe(s1);
    expect(b.counts.describe - before.describe).toBe(1);
    expect(b.counts.getValue - before.getValue + b.counts.batch - before.batch).toBe(0);

    const v2 = canary("v2");
    const put = await admin.send(new PutSecretValueCommand({ SecretId: "moto/update", SecretString: v2 }));
    const s3 = await b.fetch(ref("moto/update"), fetchCtx(log, s2));
    expect(s3).toMatchObject({ value: v2, version: put.VersionId });
    // The old version is now AWSPREVIOUS.
    expect((await b.fetch(ref("moto/update", { version_stage: "AWSPREVIOUS" }), fetchCtx(log))).value).toBe(v1);
    // A pinned version keeps its value.
    expect((await b.fetch(ref("moto/update", { version_id: version }), fetchCtx(log))).value).toBe(v1);
  });

  it("follows a rotation: AWSPENDING is readable in the long form, then AWSCURRENT moves to it", async () => {
    const b = backend();
    const oldV = canary("old");
    const { version: oldVersion } = await create("moto/rotate", oldV);
    const cur = ref("moto/rotate");
    const pend = ref("moto/rotate", { version_stage: "AWSPENDING" });
    const first = await b.fetchMany!([cur], { signal: new AbortController().signal, logger: log.logger, previous: new Map() });
    expect((first.get(refKey(cur)) as Secret).value).toBe(oldV);
    await expect(b.fetch(pend, fetchCtx(log))).rejects.toBeInstanceOf(SecretNotFoundError);

    // createSecret step of a rotation: a new version labelled AWSPENDING only.
    const newV = canary("new");
    const pending = await admin.send(new PutSecretValueCommand({ SecretId: "moto/rotate", SecretString: newV, VersionStages: ["AWSPENDING"] }));
    const p1 = await b.fetch(pend, fetchCtx(log));
    expect(p1).toMatchObject({ value: newV, version: pending.VersionId });
    const c1 = await b.fetch(cur, fetchCtx(log, first.get(refKey(cur)) as Secret));
    expect(c1.value).toBe(oldV);

    // finishSecret step: AWSCURRENT moves to the pending version; AWSPENDING is removed.
    await admin.send(new UpdateSecretVersionStageCommand({ SecretId: "moto/rotate", VersionStage: "AWSCURRENT", MoveToVersionId: pending.VersionId!, RemoveFromVersionId: oldVersion }));
    await admin.send(new UpdateSecretVersionStageCommand({ SecretId: "moto/rotate", VersionStage: "AWSPENDING", RemoveFromVersionId: pending.VersionId! }));
    const c2 = await b.fetch(cur, fetchCtx(log, c1));
    expect(c2).toMatchObject({ value: newV, version: pending.VersionId });
    await expect(b.fetch(pend, fetchCtx(log, p1))).rejects.toBeInstanceOf(SecretNotFoundError);
  });

  it("fetches 25 secrets in two BatchGetSecretValue calls, then refreshes with DescribeSecret only", async () => {
    const b = backend();
    const refs: SecretRef[] = [];
    const values = new Map<string, string>();
    for (let i = 0; i < 25; i++) {
      const v = canary(`batch${i}`);
      await create(`moto/batch/${i}`, v);
      refs.push(ref(`moto/batch/${i}`));
      values.set(`awssm:moto/batch/${i}`, v);
    }
    const ctx = { signal: new AbortController().signal, logger: log.logger };
    const out = await b.fetchMany!(refs, { ...ctx, previous: new Map() });
    expect(b.counts).toEqual({ describe: 0, getValue: 0, batch: 2 });
    for (const [k, v] of values) expect((out.get(k) as Secret).value).toBe(v);
    const again = await b.fetchMany!(refs, { ...ctx, previous: out as Map<string, Secret> });
    expect(b.counts).toEqual({ describe: 25, getValue: 0, batch: 2 });
    for (const [k] of values) expect(again.get(k)).toBe(out.get(k));
  });

  it("a secret scheduled for deletion is a fatal error", async () => {
    const b = backend();
    await create("moto/doomed", canary("doomed"));
    const s = await b.fetch(ref("moto/doomed"), fetchCtx(log));
    await admin.send(new DeleteSecretCommand({ SecretId: "moto/doomed", RecoveryWindowInDays: 7 }));
    const err = await b.fetch(ref("moto/doomed"), fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toContain("awssm:moto/doomed: InvalidRequestException");
    await expect(b.fetch(ref("moto/doomed"), fetchCtx(log, s))).rejects.toBeInstanceOf(FatalError);
  });

  it("takes the endpoint from AWS_ENDPOINT_URL_SECRETS_MANAGER and the region from AWS_REGION", async () => {
    const v = canary("envcfg");
    await create("moto/envcfg", v);
    const b = makeAwsSm(log, {}, { AWS_REGION: REGION, AWS_ENDPOINT_URL_SECRETS_MANAGER: moto.endpoint });
    backends.push(b);
    expect((await b.fetch(ref("moto/envcfg"), fetchCtx(log))).value).toBe(v);
  });
});
