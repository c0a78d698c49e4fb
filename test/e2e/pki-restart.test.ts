/**
 * The built `emissary` against the fake Vault, killed and started again with a state directory:
 * no new issuance while the certificate is before its renewal point, the files untouched, a leased
 * database-style read renewed rather than read again; `render` uses what is kept and names what it
 * would issue otherwise; `check` reports bad issued-secret options with file, line and field.
 */
import { X509Certificate } from "node:crypto";
import { createPrivateKey } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canary, plantCanary } from "../helpers/canary.js";
import { ROOT, runEmissary, spawnEmissary, tmpDir, waitFor } from "../helpers/e2e.js";
import { FakeVault } from "../fakes/vault-server.js";

let fake: FakeVault;
let token: string;

beforeAll(async () => {
  fake = await FakeVault.start();
  const pki = await fake.mountPki();
  pki.role("server", { allowed_domains: ["dc1.consul"], allow_subdomains: true, max_ttl: "72h", key_type: "ec" });
  fake.mount("database", "database");
  fake.dbRole("database", "app", { ttl: 3600, maxTtl: 86400, renewable: true, password: () => canary("dbpw") });
  token = fake.createToken({ id: canary("token") });
});

afterAll(async () => {
  await fake.close();
});

const ISSUE = "secrets:\n  tls:\n    ref: vault:pki/issue/server\n    params: { common_name: server.dc1.consul, ttl: 72h }\n";
const posts = (): number => fake.count((c) => c.method === "POST" && c.path === "pki/issue/server");

function setup(): { dir: string; state: string; out: string; env: Record<string, string> } {
  const dir = tmpDir();
  const out = join(dir, "out");
  const state = join(dir, "state");
  writeFileSync(join(dir, "cert.tpl"), `---\ndest: ${out}/cert.pem\n${ISSUE}---\n{{tls.certificate}}\n`);
  writeFileSync(join(dir, "key.tpl"), `---\ndest: ${out}/key.pem\n${ISSUE}---\n{{tls.private_key}}\n`);
  writeFileSync(join(dir, "db.tpl"), `---\ndest: ${out}/db.conf\nsecrets:\n  db: vault:database/creds/app\n---\nuser={{db.username}}\npassword={{db.password}}\n`);
  return { dir, state, out, env: { VAULT_ADDR: fake.url, VAULT_TOKEN: token, EMISSARY_STATE_DIR: state } };
}

const snapshot = (out: string): Record<string, { ino: number; mtimeMs: number; text: string }> =>
  Object.fromEntries(["cert.pem", "key.pem", "db.conf"].map((f) => [f, { ino: statSync(join(out, f)).ino, mtimeMs: statSync(join(out, f)).mtimeMs, text: readFileSync(join(out, f), "utf8") }]));

describe("restart with a state directory", () => {
  it("kill -9 and start again: no new issuance, files untouched, the lease renewed instead of re-minted", async () => {
    const { dir, out, env } = setup();
    const postsBefore = posts();
    const a = spawnEmissary(["run", "--templates", dir, "--log-level", "debug"], { env });
    try {
      await a.waitForLog((l) => l.msg === "wrote destination" && String(l.dest).endsWith("db.conf"), 15_000, "db.conf");
      await waitFor(() => a.logs().filter((l) => l.msg === "wrote destination").length === 3, 15_000, "three files");
    } finally {
      await a.stop("SIGKILL");
    }
    expect(posts() - postsBefore).toBe(1);
    const counts = fake.leaseCounts("database/creds/app");
    const before = snapshot(out);
    plantCanary(before["key.pem"]!.text, "restart-key");
    plantCanary(before["cert.pem"]!.text, "restart-cert");

    const b = spawnEmissary(["run", "--templates", dir, "--log-level", "debug"], { env });
    try {
      await b.waitForLog((l) => l.msg === "vault: using the kept certificate", 15_000, "the kept certificate");
      await b.waitForLog((l) => l.msg === "vault: using the lease kept in the state directory; renewing it", 15_000, "the kept lease");
      await waitFor(() => b.logs().filter((l) => l.msg === "rendered; destination unchanged").length === 3, 15_000, "three unchanged renders");
      expect(posts() - postsBefore).toBe(1);
      expect(fake.leaseCounts("database/creds/app")).toEqual({ minted: counts.minted, renewed: counts.renewed + 1 });
      expect(snapshot(out)).toEqual(before);
      expect(b.logs().filter((l) => l.msg === "wrote destination")).toHaveLength(0);
      // The next renewal point is that of the first run (kept, not drawn again).
      const cert = new X509Certificate(before["cert.pem"]!.text);
      expect(b.logs().find((l) => l.msg === "vault: using the kept certificate")!.serialNumber).toBe(cert.serialNumber.replace(/(..)(?!$)/g, "$1:").toLowerCase());
    } finally {
      await b.stop();
    }
  }, 60_000);

  it("render prints from the state directory without a POST, and exits 1 naming what it would issue", async () => {
    const { dir, state, out, env } = setup();
    await runEmissary(["once", "--templates", dir], { env });
    const issued = posts();
    const r = await runEmissary(["render", join(dir, "cert.tpl")], { env, stdoutIsLog: false });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(out, "cert.pem"), "utf8"));
    expect(posts()).toBe(issued);
    const off = await runEmissary(["render", join(dir, "key.tpl")], { env: { ...env, EMISSARY_STATE_DIR: "" }, stdoutIsLog: false });
    expect(off.code).toBe(1);
    expect(off.stdout).toBe("");
    expect(off.stderr).toContain("would issue vault:pki/issue/server");
    expect(off.stderr).toContain("the state directory is off");
    writeFileSync(join(dir, "other.tpl"), `---\ndest: ${out}/other.pem\nsecrets:\n  tls:\n    ref: vault:pki/issue/server\n    params: { common_name: other.dc1.consul }\n---\n{{tls.certificate}}\n`);
    const none = await runEmissary(["render", join(dir, "other.tpl")], { env, stdoutIsLog: false });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`nothing valid is kept for it in ${state}`);
    expect(posts()).toBe(issued);
  }, 60_000);
});

describe("examples/pki as written", () => {
  it.each(["issue", "local"])("%s/: one issuance, three matching files, one restart", async (sub) => {
    const pki = fake.pkis.get("pki/")!;
    pki.role("consul-server", { allowed_domains: ["dc1.consul"], allow_subdomains: true, allow_localhost: true, max_ttl: "720h", key_type: "ec" });
    const dir = tmpDir();
    const out = join(dir, "tls");
    const record = join(dir, "restarts.log");
    for (const f of readdirSync(join(ROOT, "examples/pki", sub))) {
      const text = readFileSync(join(ROOT, "examples/pki", sub, f), "utf8")
        .replaceAll("/etc/consul.d/tls", out)
        .replace("owner: consul\ngroup: consul\n", "")
        .replace("command: systemctl restart consul", `command: ["/bin/sh", "-c", "echo restart >> ${record}"]`);
      writeFileSync(join(dir, f), text);
    }
    const path = sub === "issue" ? "pki/issue/consul-server" : "pki/sign/consul-server";
    const before = fake.count((c) => c.method === "POST" && c.path === path);
    const r = await runEmissary(["once", "--templates", dir], { env: { VAULT_ADDR: fake.url, VAULT_TOKEN: token } });
    expect(r.code, r.lines.join("\n")).toBe(0);
    expect(fake.count((c) => c.method === "POST" && c.path === path) - before).toBe(1);
    const cert = new X509Certificate(readFileSync(join(out, "server.pem")));
    const key = readFileSync(join(out, "server-key.pem"), "utf8");
    plantCanary(key, `example-${sub}-key`);
    expect(cert.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(cert.checkIssued(new X509Certificate(readFileSync(join(out, "ca.pem"))))).toBe(true);
    expect(cert.subjectAltName!.split(", ").sort()).toEqual(["DNS:localhost", "DNS:server.dc1.consul", "IP Address:127.0.0.1"]);
    expect(statSync(join(out, "server-key.pem")).mode & 0o777).toBe(0o640);
    expect(readFileSync(record, "utf8")).toBe("restart\n");
    if (sub === "local") {
      const sent = fake.calls.filter((c) => c.path === "pki/sign/consul-server").at(-1)!;
      expect(sent.body.csr).toMatch(/BEGIN CERTIFICATE REQUEST/);
      expect(JSON.stringify(sent.body)).not.toContain(key.split("\n")[1]!);
    }
  });
});

describe("check", () => {
  it("reports params that are not a map, renew_at out of range and private_key: local off a sign path, with file, line and field", async () => {
    const dir = tmpDir();
    const head = (name: string): string => `---\ndest: /tmp/${name}\nsecrets:\n  tls:\n    ref: vault:pki/issue/server\n`;
    writeFileSync(join(dir, "a.tpl"), `${head("a")}    params: common_name=x\n---\n{{tls.certificate}}\n`);
    writeFileSync(join(dir, "b.tpl"), `${head("b")}    params: { common_name: x }\n    renew_at: 0.99\n---\n{{tls.certificate}}\n`);
    writeFileSync(join(dir, "c.tpl"), `${head("c")}    params: { common_name: x }\n    private_key: local\n---\n{{tls.certificate}}\n`);
    writeFileSync(join(dir, "d.tpl"), `${head("d")}    params: { common_name: x, alt_names: [a, b], ttl: 1h }\n---\n{{tls.certificate}}\n`);
    const r = await runEmissary(["check", "--json", "--templates", dir], { env: { VAULT_ADDR: fake.url }, stdoutIsLog: false });
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as { templates: { file: string; ok: boolean; error?: { line?: number; field?: string; message: string } }[] };
    const by = (f: string): { ok: boolean; error?: { line?: number; field?: string; message: string } } => report.templates.find((t) => t.file.endsWith(f))!;
    expect(by("a.tpl").error).toMatchObject({ line: 6, field: "secrets.tls.params" });
    expect(by("a.tpl").error!.message).toContain("must be a mapping of parameter: value");
    expect(by("b.tpl").error).toMatchObject({ line: 7, field: "secrets.tls.renew_at" });
    expect(by("b.tpl").error!.message).toContain("from 0.5 to 0.95");
    expect(by("c.tpl").error).toMatchObject({ line: 7, field: "secrets.tls.private_key" });
    expect(by("c.tpl").error!.message).toContain("private_key: local is only for a PKI sign path");
    expect(by("d.tpl").ok).toBe(true);
    expect(fake.count((c) => c.method === "POST" && c.body.common_name === "x")).toBe(0);
  });
});
