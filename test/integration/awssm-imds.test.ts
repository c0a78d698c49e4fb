/**
 * Region resolution on EC2: with no region in the config, the environment or a profile, the SDK
 * in the lockfile asks the instance metadata service (IMDSv2: PUT a token, then GET the region).
 * Checked against a fake IMDS on 127.0.0.1 via AWS_EC2_METADATA_SERVICE_ENDPOINT; the region that
 * reaches Secrets Manager is read from the SigV4 credential scope of the request.
 *
 * Kept in its own file: the SDK caches a failed IMDS lookup for a minute in module state.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FatalError } from "../../src/index.js";
import { canary } from "../helpers/canary.js";
import { useDummyAwsEnv } from "../helpers/moto.js";
import { FakeSecretsManager } from "../fakes/aws-secretsmanager.js";
import { startFakeImds, type FakeImds } from "../fakes/imds.js";
import { CapturedLog, fetchCtx, makeAwsSm } from "../fakes/aws-harness.js";

const log = new CapturedLog("awssm-imds");
let fake: FakeSecretsManager;
let imds: FakeImds;
let restore: (() => void) | undefined;

beforeAll(async () => {
  fake = await FakeSecretsManager.start();
  imds = await startFakeImds({ region: "ap-northeast-3" });
});

afterEach(() => {
  restore?.();
  restore = undefined;
  fake.resetCalls();
  imds.calls.length = 0;
});

afterAll(async () => {
  await fake.close();
  await imds.close();
  log.flush();
  expect(log.lines.join("\n")).not.toContain("CANARY");
});

describe("awssm region", () => {
  it("comes from the config before AWS_REGION, and then IMDS is never asked", async () => {
    restore = useDummyAwsEnv({ AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint, AWS_REGION: "us-west-2" });
    const b = makeAwsSm(log, { region: "eu-north-1", endpoint: fake.endpoint }, { AWS_REGION: "us-west-2" });
    fake.put("region/config", canary("cfg"));
    await b.fetch({ backend: "awssm", id: "region/config", options: {} }, fetchCtx(log));
    expect(fake.calls[0]!.region).toBe("eu-north-1");
    expect(imds.calls).toEqual([]);
    await b.close!();
  });

  it("comes from EC2 instance metadata (IMDSv2) when nothing else sets it", async () => {
    restore = useDummyAwsEnv({ AWS_EC2_METADATA_DISABLED: undefined, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint });
    const b = makeAwsSm(log, { endpoint: fake.endpoint }, {});
    expect(b.settings.regionSource).toBe("sdk");
    const v = canary("imds");
    fake.put("region/imds", v);
    const s = await b.fetch({ backend: "awssm", id: "region/imds", options: {} }, fetchCtx(log));
    expect(s.value).toBe(v);
    expect(fake.calls[0]!.region).toBe("ap-northeast-3");
    // IMDSv2: a token first, then the region with that token.
    expect(imds.calls[0]).toMatchObject({ method: "PUT", path: "/latest/api/token" });
    expect(imds.calls.some((c) => c.method === "GET" && c.path === "/latest/meta-data/placement/region" && c.hadValidToken)).toBe(true);
    expect(log.find("client ready").at(-1)).toMatchObject({ region: "ap-northeast-3", regionSource: "sdk" });
    await b.close!();
  });

  it("missing everywhere is a fatal error that says how to set it", async () => {
    restore = useDummyAwsEnv({ AWS_EC2_METADATA_DISABLED: "true" });
    const b = makeAwsSm(log, { endpoint: fake.endpoint }, {});
    const err = await b.fetch({ backend: "awssm", id: "region/none", options: {} }, fetchCtx(log)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toMatch(/awssm:region\/none: no AWS region — set backends\.awssm\.region or AWS_REGION/);
    expect(fake.calls).toEqual([]);
    await b.close!();
  });
});
