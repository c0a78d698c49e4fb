/**
 * The built `emissary` daemon with awssm references:
 * - against moto: rendered files and commands; PutSecretValue and a rotation (AWSPENDING →
 *   AWSCURRENT stage move) re-render; a legacy `{{poll "awssm" …}}` template waits while the
 *   value is `intentionally-empty`;
 * - against the fake Secrets Manager: N templates over M unique secrets cost one value read per
 *   secret at start (batched), then DescribeSecret only while nothing changes.
 * Every planted value contains CANARY; all daemon output is scanned for it.
 */
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient, UpdateSecretVersionStageCommand } from "@aws-sdk/client-secrets-manager";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { DUMMY_AWS_ENV, describeMoto, startMoto, useDummyAwsEnv, type Moto } from "../helpers/moto.js";
import { FakeSecretsManager } from "../fakes/aws-secretsmanager.js";

const REGION = "eu-west-1";

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}
function runs(file: string): string[] {
  return (read(file) ?? "").split("\n").filter(Boolean);
}

function awsEnv(): Record<string, string> {
  return { ...DUMMY_AWS_ENV };
}

function fetchCycles(d: Daemon): number {
  return d.logs().filter((l) => l.msg === "awssm fetch done").length;
}

describeMoto("e2e: awssm against moto", () => {
  let moto: Moto;
  let admin: SecretsManagerClient;
  let restoreEnv: () => void;
  let daemon: Daemon | undefined;

  beforeAll(async () => {
    restoreEnv = useDummyAwsEnv();
    moto = await startMoto();
    admin = new SecretsManagerClient({ region: REGION, endpoint: moto.endpoint });
  });
  afterEach(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
      expect(daemon.lines.join("\n")).not.toContain("CANARY");
    }
    daemon = undefined;
  });
  afterAll(async () => {
    admin?.destroy();
    await moto?.stop();
    restoreEnv?.();
  });

  it("renders awssm secrets, runs commands, and follows updates and a rotation", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const dbOut = join(dir, "out", "db.conf");
    const apiOut = join(dir, "out", "api.key");
    const nextOut = join(dir, "out", "api.next");
    const legacyOut = join(dir, "out", "legacy.hcl");
    const runLog = join(dir, "runs.log");

    const pw1 = canary("dbpw1");
    await admin.send(new CreateSecretCommand({ Name: "e2e/db", SecretString: JSON.stringify({ username: "app", password: pw1, tls: { ca: "CA-1" } }) }));
    const api1 = canary("api1");
    const created = await admin.send(new CreateSecretCommand({ Name: "e2e/api", SecretString: api1 }));
    await admin.send(new CreateSecretCommand({ Name: "e2e/legacy", SecretString: "  intentionally-empty\n" }));

    writeFileSync(
      join(tpl, "db.tpl"),
      `---
dest: ${dbOut}
refresh: 300ms
command: ["/bin/sh", "-c", "echo db >> ${runLog}"]
secrets:
  user: awssm:e2e/db#username
  pw: awssm:e2e/db#password
  ca: awssm:e2e/db#/tls/ca
---
user={{user}}
password={{pw}}
ca={{ca}}
`,
    );
    writeFileSync(
      join(tpl, "api.tpl"),
      `---
dest: ${apiOut}
refresh: 300ms
command: ["/bin/sh", "-c", "echo api >> ${runLog}"]
secrets:
  key: awssm:e2e/api
---
{{key}}
`,
    );
    writeFileSync(
      join(tpl, "next.tpl"),
      `---
dest: ${nextOut}
refresh: 300ms
secrets:
  next:
    ref: awssm:e2e/api
    version_stage: AWSPENDING
---
{{next}}
`,
    );
    writeFileSync(
      join(tpl, "legacy.tpl"),
      `---
dest: ${legacyOut}
onrender: /bin/sh -c "echo legacy >> ${runLog}"
---
encrypt = "{{poll "awssm" "e2e/legacy"}}"
`,
    );
    const config = join(dir, "config.yml");
    // The backend keeps its one-hour refresh; the templates above poll faster. The legacy template
    // has no refresh of its own: its placeholder must be polled at the retry interval, not hourly.
    writeFileSync(config, `defaults: { retry: 200ms }\nbackends:\n  awssm: { region: ${REGION}, endpoint: "${moto.endpoint}", refresh: 1h }\n`);

    daemon = spawnEmissary(["run", "--templates", tpl, "--config", config, "--log-level", "debug"], { env: awsEnv() });
    const d = daemon;

    await waitFor(() => read(dbOut) !== undefined && read(apiOut) !== undefined, 20_000, "db and api rendered");
    expect(read(dbOut)).toBe(`user=app\npassword=${pw1}\nca=CA-1\n`);
    expect(read(apiOut)).toBe(`${api1}\n`);
    await waitFor(() => runs(runLog).filter((l) => l === "db").length === 1 && runs(runLog).includes("api"), 10_000, "first commands");
    // AWSPENDING does not exist yet, and the legacy value is the original's placeholder.
    expect(read(nextOut)).toBeUndefined();
    expect(read(legacyOut)).toBeUndefined();

    // The legacy secret is set: trimmed, rendered, onrender runs.
    const gossip = canary("gossip");
    await admin.send(new PutSecretValueCommand({ SecretId: "e2e/legacy", SecretString: `  ${gossip}\n` }));
    await waitFor(() => read(legacyOut) === `encrypt = "${gossip}"\n`, 20_000, "legacy rendered");
    await waitFor(() => runs(runLog).includes("legacy"), 10_000, "legacy onrender");

    // PutSecretValue: the new AWSCURRENT is picked up at the next refresh; the command runs again.
    const pw2 = canary("dbpw2");
    await admin.send(new PutSecretValueCommand({ SecretId: "e2e/db", SecretString: JSON.stringify({ username: "app", password: pw2, tls: { ca: "CA-1" } }) }));
    await waitFor(() => read(dbOut) === `user=app\npassword=${pw2}\nca=CA-1\n`, 20_000, "db re-rendered");
    await waitFor(() => runs(runLog).filter((l) => l === "db").length === 2, 10_000, "db command again");

    // Rotation, createSecret step: a version labelled AWSPENDING only. The long-form template
    // renders it; the AWSCURRENT one does not change over several refresh cycles.
    const api2 = canary("api2");
    const pending = await admin.send(new PutSecretValueCommand({ SecretId: "e2e/api", SecretString: api2, VersionStages: ["AWSPENDING"] }));
    await waitFor(() => read(nextOut) === `${api2}\n`, 20_000, "AWSPENDING rendered");
    const cycles = fetchCycles(d);
    await waitFor(() => fetchCycles(d) >= cycles + 3, 20_000, "three more refresh cycles");
    expect(read(apiOut)).toBe(`${api1}\n`);
    expect(runs(runLog).filter((l) => l === "api")).toHaveLength(1);

    // finishSecret step: AWSCURRENT moves to the pending version and AWSPENDING is removed.
    await admin.send(new UpdateSecretVersionStageCommand({ SecretId: "e2e/api", VersionStage: "AWSCURRENT", MoveToVersionId: pending.VersionId!, RemoveFromVersionId: created.VersionId! }));
    await admin.send(new UpdateSecretVersionStageCommand({ SecretId: "e2e/api", VersionStage: "AWSPENDING", RemoveFromVersionId: pending.VersionId! }));
    await waitFor(() => read(apiOut) === `${api2}\n`, 20_000, "api re-rendered after the stage move");
    await waitFor(() => runs(runLog).filter((l) => l === "api").length === 2, 10_000, "api command again");
    // The AWSPENDING reference is gone: the last rendered file stays, with a warning.
    await d.waitForLog((l) => l.msg === "secret disappeared; keeping the last rendered files" && String(l.ref).includes("e2e/api"), 20_000, "disappeared warning");
    expect(read(nextOut)).toBe(`${api2}\n`);
  });
});

describe("e2e: awssm API calls through the daemon (fake Secrets Manager)", () => {
  let fake: FakeSecretsManager;
  let daemon: Daemon | undefined;

  beforeAll(async () => {
    fake = await FakeSecretsManager.start({ region: REGION });
  });
  afterEach(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
      expect(daemon.lines.join("\n")).not.toContain("CANARY");
    }
    daemon = undefined;
  });
  afterAll(async () => {
    await fake.close();
  });

  it("N templates over M unique secrets: each value read once at start, then DescribeSecret only", async () => {
    const M = 25;
    const N = 6;
    const values: string[] = [];
    for (let i = 0; i < M; i++) {
      values.push(canary(`s${i}`));
      fake.put(`fleet/s${i}`, values[i]!);
    }
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    // Template t uses the secrets i with i % N !== t (so each secret is named by N-1 templates).
    const expected = new Map<string, string>();
    for (let t = 0; t < N; t++) {
      const used = values.map((_, i) => i).filter((i) => i % N !== t);
      const out = join(dir, "out", `t${t}.conf`);
      writeFileSync(
        join(tpl, `t${t}.tpl`),
        `---\ndest: ${out}\nsecrets:\n${used.map((i) => `  s${i}: awssm:fleet/s${i}`).join("\n")}\n---\n${used.map((i) => `s${i}={{s${i}}}`).join("\n")}\n`,
      );
      expected.set(out, used.map((i) => `s${i}=${values[i]}`).join("\n") + "\n");
    }
    const config = join(dir, "config.yml");
    writeFileSync(config, `backends:\n  awssm: { region: ${REGION}, endpoint: "${fake.endpoint}", refresh: 300ms }\n`);
    daemon = spawnEmissary(["run", "--templates", tpl, "--config", config], { env: awsEnv() });

    await waitFor(() => [...expected].every(([f, body]) => read(f) === body), 20_000, "all templates rendered");
    const valueCalls = fake.calls.filter((c) => c.op === "GetSecretValue" || c.op === "BatchGetSecretValue");
    const readIds = valueCalls.flatMap((c) => c.secretIds);
    expect(readIds.slice().sort()).toEqual(values.map((_, i) => `fleet/s${i}`).sort()); // each secret read exactly once
    expect(fake.count("BatchGetSecretValue")).toBeGreaterThanOrEqual(Math.ceil(M / 20));
    expect(valueCalls.length).toBeLessThan(M); // batched, not one call per secret
    expect(fake.calls.every((c) => c.region === REGION)).toBe(true);

    // Nothing changes: refreshes are DescribeSecret, one per unique secret per cycle.
    fake.resetCalls();
    const described = (id: string): number => fake.calls.filter((c) => c.op === "DescribeSecret" && c.secretIds[0] === id).length;
    await waitFor(() => values.every((_, i) => described(`fleet/s${i}`) >= 2), 20_000, "two refresh cycles of every secret");
    expect(fake.count("GetSecretValue") + fake.count("BatchGetSecretValue")).toBe(0);

    // One secret changes: it alone is read again, and every template naming it re-renders.
    const fresh = canary("fresh");
    fake.put("fleet/s7", fresh);
    const changed = [...expected].filter(([, body]) => body.includes(`s7=${values[7]}`)).map(([f]) => f);
    await waitFor(() => changed.every((f) => read(f)?.includes(`s7=${fresh}`) === true), 20_000, "templates using s7 re-rendered");
    const reads = fake.calls.filter((c) => c.op === "GetSecretValue" || c.op === "BatchGetSecretValue").flatMap((c) => c.secretIds);
    expect(reads).toEqual(["fleet/s7"]);
  });
});
