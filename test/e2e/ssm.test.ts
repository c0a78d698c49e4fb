/**
 * The built `emissary` CLI with ssm references, against moto:
 * - `once` renders a template using String, StringList and SecureString parameters, a version, a
 *   label, and a path (whole, by field, by name inside it, as a section), waiting for a parameter
 *   created after it started, then exits 0 and runs the command;
 * - `run` picks up an overwrite at the next refresh and re-renders;
 * - `check` rejects a malformed ssm reference with exit 2, naming the template;
 * - examples/ssm runs as its README says, against moto seeded from its parameters.json.
 * Every planted value contains CANARY; all CLI output is scanned for it.
 */
import { LabelParameterVersionCommand, PutParameterCommand, SSMClient, type ParameterType } from "@aws-sdk/client-ssm";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { ROOT, runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { DUMMY_AWS_ENV, describeMoto, startMoto, useDummyAwsEnv, type Moto } from "../helpers/moto.js";

const REGION = "eu-west-1";

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

describeMoto("e2e: ssm against moto", () => {
  let moto: Moto;
  let admin: SSMClient;
  let restoreEnv: () => void;
  let daemon: Daemon | undefined;
  const put = async (name: string, value: string, type: ParameterType = "String"): Promise<void> => {
    await admin.send(new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }));
  };
  const config = (dir: string, extra = ""): string => {
    const file = join(dir, "config.yml");
    writeFileSync(file, `defaults: { retry: 200ms }\nbackends:\n  ssm: { region: ${REGION}, endpoint: "${moto.endpoint}"${extra} }\n`);
    return file;
  };

  beforeAll(async () => {
    restoreEnv = useDummyAwsEnv({ AWS_ENDPOINT_URL_SSM: undefined });
    moto = await startMoto();
    admin = new SSMClient({ region: REGION, endpoint: moto.endpoint });
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

  it("once: renders String, StringList, SecureString, a version, a label and a path, waiting for a parameter created after start", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const out = join(dir, "out", "consul.hcl");
    const ran = join(dir, "ran");

    const gossip1 = canary("gossip1");
    const gossip2 = canary("gossip2");
    await put("/e2e/consul/gossip", gossip1, "SecureString");
    await put("/e2e/consul/gossip", gossip2, "SecureString");
    await admin.send(new LabelParameterVersionCommand({ Name: "/e2e/consul/gossip", ParameterVersion: 1, Labels: ["previous"] }));
    await put("/e2e/consul/servers", "10.0.0.1,10.0.0.2", "StringList");
    const pw = canary("dbpw");
    await put("/e2e/app/db/password", pw, "SecureString");
    await put("/e2e/app/db/user", "app");
    await put("/e2e/app/port", "5432");

    writeFileSync(
      join(tpl, "consul.tpl"),
      `---
dest: ${out}
mode: 0640
command: ["/bin/sh", "-c", "echo ran > ${ran}"]
secrets:
  gossip: ssm:/e2e/consul/gossip
  first:
    ref: ssm:/e2e/consul/gossip
    version: 1
  previous:
    ref: ssm:/e2e/consul/gossip
    label: previous
  servers: ssm:/e2e/consul/servers
  token: ssm:/e2e/consul/token
  app: ssm:/e2e/app/
  dbpw: ssm:/e2e/app/#db/password
---
encrypt = "{{gossip}}"
first = "{{first}}"
previous = "{{previous}}"
retry_join = "{{servers}}"
token = "{{token}}"
pw = "{{dbpw}}"
user = "{{app.db/user}}"
{{#app}}port = {{port}}{{/app}}
app = {{app}}
`,
    );
    const d = spawnEmissary(["once", "--templates", tpl, "--config", config(dir), "--timeout", "60s", "--log-level", "debug"], { env: { ...DUMMY_AWS_ENV } });
    // The token does not exist yet: once waits for it.
    await d.waitForLog((l) => l.msg === "waiting for secret to be set" && String(l.ref).includes("/e2e/consul/token"), 30_000, "waiting for the token");
    expect(read(out)).toBeUndefined();
    const token = canary("token");
    await put("/e2e/consul/token", token, "SecureString");
    const { code } = await d.exited;
    expect(code, d.lines.slice(-20).join("\n")).toBe(0);
    expect(d.lines.join("\n")).not.toContain("CANARY");

    const app = JSON.stringify({ "db/password": pw, "db/user": "app", port: "5432" });
    expect(read(out)).toBe(
      `encrypt = "${gossip2}"\nfirst = "${gossip1}"\nprevious = "${gossip1}"\nretry_join = "10.0.0.1,10.0.0.2"\ntoken = "${token}"\npw = "${pw}"\nuser = "app"\nport = 5432\napp = ${app}\n`,
    );
    expect(read(ran)).toBe("ran\n");
  });

  it("run: an overwrite is picked up at the next refresh and re-rendered", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    const out = join(dir, "out", "key");
    const v1 = canary("key1");
    await put("/e2e/run/key", v1, "SecureString");
    writeFileSync(join(tpl, "key.tpl"), `---\ndest: ${out}\nsecrets:\n  key: ssm:/e2e/run/key\n---\n{{key}}\n`);
    daemon = spawnEmissary(["run", "--templates", tpl, "--config", config(dir, ", refresh: 300ms")], { env: { ...DUMMY_AWS_ENV } });
    await waitFor(() => read(out) === `${v1}\n`, 20_000, "first render");
    const v2 = canary("key2");
    await put("/e2e/run/key", v2, "SecureString");
    await waitFor(() => read(out) === `${v2}\n`, 20_000, "re-rendered after the overwrite");
  });

  it("check: a malformed ssm reference is a configuration error naming the template", async () => {
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    mkdirSync(tpl);
    writeFileSync(join(tpl, "bad.tpl"), `---\ndest: ${join(dir, "out")}\nsecrets:\n  db: ssm:prod/db\n---\n{{db}}\n`);
    writeFileSync(join(tpl, "good.tpl"), `---\ndest: ${join(dir, "out2")}\nsecrets:\n  db: ssm:/prod/app/\n  pw: ssm:/prod/db:3\n---\n{{db}}{{pw}}\n`);
    const r = await runEmissary(["check", "--templates", tpl, "--json"], { env: { ...DUMMY_AWS_ENV }, stdoutIsLog: false });
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as { templates: { file: string; ok: boolean; error?: { message: string } }[] };
    const bad = report.templates.find((t) => t.file.endsWith("bad.tpl"))!;
    expect(bad.ok).toBe(false);
    expect(bad.error!.message).toContain('a name with a hierarchy must start with "/"');
    expect(report.templates.find((t) => t.file.endsWith("good.tpl"))!.ok).toBe(true);
  });

  it("examples/ssm: `emissary once --config emissary.yml` renders both templates from its parameters.json", async () => {
    const dir = tmpDir();
    cpSync(join(ROOT, "examples/ssm"), dir, { recursive: true });
    const cfg = join(dir, "emissary.yml");
    const text = readFileSync(cfg, "utf8");
    expect(text).toContain('endpoint: "http://127.0.0.1:5000"');
    writeFileSync(cfg, text.replace("http://127.0.0.1:5000", moto.endpoint));
    const params = JSON.parse(readFileSync(join(dir, "parameters.json"), "utf8")) as { Name: string; Type: ParameterType; Value: string }[];
    for (const p of params) await put(p.Name, p.Value, p.Type);
    const value = (name: string): string => params.find((p) => p.Name === name)!.Value;

    const r = await runEmissary(["once", "--config", "emissary.yml", "--timeout", "30s"], { cwd: dir, env: { ...DUMMY_AWS_ENV } });
    expect(r.code, r.lines.slice(-20).join("\n")).toBe(0);
    expect(read(join(dir, "out/consul.env"))).toBe(`CONSUL_ENCRYPT="${value("/demo/consul/gossip")}"\nCONSUL_RETRY_JOIN="${value("/demo/consul/servers")}"\n`);
    expect(read(join(dir, "out/app.env"))).toBe(`DB_USER=app\nDB_PASSWORD=${value("/demo/app/db/password")}\nDB_PORT=5432\n`);
    expect(r.lines.join("\n")).not.toContain(value("/demo/app/db/password"));
  });
});
