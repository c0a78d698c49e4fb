/**
 * The built CLI on the two examples of values that must arrive exactly:
 * - examples/keytab: `emissary once` writes the binary keytab byte for byte (mode 0400) and
 *   `emissary render` prints the same bytes; the same bytes inside text fail the template naming
 *   the secret, exit 1, and the last good file stays;
 * - examples/hcl: Consul and Nomad agent configs rendered with `escape: hcl` from hostile secrets
 *   (the example's own, then random ones) are read back by HashiCorp's HCL 1 and HCL 2 parsers:
 *   every value exactly, and no key added.
 */
import { spawnSync } from "node:child_process";
import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseHcl2 } from "@cdktf/hcl2json";
import fc from "fast-check";
import hcl1 from "js-hcl-parser";
import { describe, expect, it } from "vitest";
import { binaryCanary, canary, findLeak } from "../helpers/canary.js";
import { CLI, ROOT, runEmissary, tmpDir } from "../helpers/e2e.js";

const KEYTAB = readFileSync(join(ROOT, "examples/keytab/secrets/http.keytab"));

/** A copy of examples/NAME in a fresh directory (the working directory of the run). */
function copyExample(name: string): string {
  const dir = tmpDir(`emissary-example-${name}-`);
  cpSync(join(ROOT, "examples", name), join(dir, name), { recursive: true });
  return dir;
}

describe("e2e: examples/keytab", () => {
  it("emissary once writes the keytab byte for byte, mode 0400, and runs its command", async () => {
    expect(() => new TextDecoder("utf-8", { fatal: true }).decode(KEYTAB), "the demo keytab is not UTF-8 text").toThrow();
    expect(KEYTAB.subarray(-1)[0]).toBe(0x0a); // and ends in a byte a trim would take for a newline
    const dir = copyExample("keytab");
    const r = await runEmissary(["once", "--templates", join(dir, "keytab/templates")], { cwd: dir });
    expect(r.code, r.lines.join("\n")).toBe(0);
    const out = readFileSync(join(dir, "out/http.keytab"));
    expect(out.length).toBe(KEYTAB.length);
    expect(out.equals(KEYTAB)).toBe(true);
    expect(statSync(join(dir, "out/http.keytab")).mode & 0o777).toBe(0o400);
    expect(readFileSync(join(dir, "out/reloads.log"), "utf8")).toBe("keytab written\n");
  });

  it("emissary render prints the same bytes to stdout", () => {
    const dir = copyExample("keytab");
    const r = spawnSync(process.execPath, [CLI, "render", join(dir, "keytab/templates/http.keytab.tpl"), "--log-level", "error"], { cwd: dir });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(Buffer.from(r.stdout).equals(KEYTAB)).toBe(true);
  });

  it("the keytab inside text fails naming the secret (exit 1), the last good file stays, nothing leaks", async () => {
    const dir = copyExample("keytab");
    const secret = binaryCanary(96);
    writeFileSync(join(dir, "keytab/secrets/http.keytab"), secret);
    const dest = join(dir, "out/app.conf");
    writeFileSync(
      join(dir, "keytab/templates/http.keytab.tpl"),
      `---\ndest: ${dest}\nsecrets:\n  keytab:\n    ref: file:../secrets/http.keytab\n    encoding: binary\n---\nkeytab = "{{keytab}}"\n`,
    );
    cpSync(join(ROOT, "examples/keytab/README.md"), dest); // stands for the last good file
    const before = readFileSync(dest);
    const r = await runEmissary(["once", "--templates", join(dir, "keytab/templates")], { cwd: dir });
    const printed = r.lines.join("\n");
    expect(r.code, printed).toBe(1);
    expect(printed).toContain(`secret \\"keytab\\" (file:../secrets/http.keytab) is not UTF-8 text`);
    expect(readFileSync(dest).equals(before)).toBe(true);
    expect(findLeak(printed, secret)).toBeUndefined();
    expect(printed).not.toContain("CANARY");
  });
});

/** What the HCL example's values are, and the config each parser read. */
interface ConsulJson {
  gossip_key: string;
  agent_token: string;
  default_token: string;
  owner: string;
}

/** HCL's JSON syntax (hcl2json's output) writes a literal `${` as `$${` and `%{` as `%%{`. */
const fromHclJson = (v: unknown): unknown =>
  typeof v === "string" ? v.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{") : Array.isArray(v) ? v.map(fromHclJson) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromHclJson(x)])) : v;

/** Both parsers' reading of a rendered file, normalised to plain objects (HCL 2 wraps blocks in lists). */
async function readHcl(file: string): Promise<{ one: Record<string, unknown>; two: Record<string, unknown> }> {
  const text = readFileSync(file, "utf8");
  const oneText = hcl1.parse(text) as string;
  if (oneText.startsWith("unable")) throw new Error(`HCL 1 cannot parse ${file}: ${oneText.replace(/\n.*$/s, "")}`);
  const unwrap = (v: unknown): unknown => (Array.isArray(v) && v.length === 1 && v[0] && typeof v[0] === "object" ? unwrap(v[0]) : v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)])) : v);
  return { one: unwrap(JSON.parse(oneText)) as Record<string, unknown>, two: unwrap(fromHclJson(await parseHcl2(file, text))) as Record<string, unknown> };
}

async function expectConfigs(dir: string, consul: ConsulJson, vaultToken: string): Promise<void> {
  const c = await readHcl(join(dir, "out/consul.hcl"));
  const n = await readHcl(join(dir, "out/nomad.hcl"));
  const wantConsul = {
    datacenter: "dc1",
    encrypt: consul.gossip_key,
    acl: { enabled: true, default_policy: "deny", tokens: { agent: consul.agent_token, default: consul.default_token } },
    node_meta: { owner: consul.owner },
  };
  const wantNomad = { vault: { enabled: true, address: "https://vault.service.consul:8200", token: vaultToken }, consul: { address: "127.0.0.1:8500", token: consul.agent_token } };
  // HCL 2 normalizes every string it reads to Unicode NFC (escaped or not); HCL 1 does not.
  const nfc = (v: unknown): unknown => JSON.parse(JSON.stringify(v), (_k, x: unknown) => (typeof x === "string" ? x.normalize("NFC") : x));
  expect(c.one, "consul.hcl read by HCL 1").toEqual(wantConsul);
  expect(c.two, "consul.hcl read by HCL 2").toEqual(nfc(wantConsul));
  expect(n.one, "nomad.hcl read by HCL 1").toEqual(wantNomad);
  expect(n.two, "nomad.hcl read by HCL 2").toEqual(nfc(wantNomad));
}

describe("e2e: examples/hcl", () => {
  it("the example's hostile secrets stay single string values in Consul's and Nomad's config", async () => {
    const dir = copyExample("hcl");
    const r = await runEmissary(["once", "--templates", join(dir, "hcl/templates")], { cwd: dir });
    expect(r.code, r.lines.join("\n")).toBe(0);
    const consul = JSON.parse(readFileSync(join(dir, "hcl/secrets/consul.json"), "utf8")) as ConsulJson;
    const vaultToken = readFileSync(join(dir, "hcl/secrets/nomad-vault-token"), "utf8").trim();
    expect(vaultToken).toContain('"}\nvault {');
    expect(consul.agent_token).toContain("${");
    await expectConfigs(dir, consul, vaultToken);
  });

  it("so do random secrets full of quotes, backslashes, control characters, ${ and %{", async () => {
    const special = fc.constantFrom('"', "\\", "\n", "\r", "\t", "\x01", "\x7f", "${", "%{", "$${", "}", "{", "#", "//", "/*", "'", "é", "😀", " = ", "\u2028");
    const value = fc.array(fc.oneof(special, fc.string({ unit: "binary", maxLength: 3 })), { minLength: 1, maxLength: 10 }).map((a) => `x${a.join("")}x`);
    const cases = fc.sample(fc.tuple(value, value, value, value), { numRuns: 4 });
    for (const [agent, dflt, owner, vault] of cases) {
      const dir = copyExample("hcl");
      const consul: ConsulJson = { gossip_key: canary("gossip"), agent_token: agent, default_token: dflt, owner };
      writeFileSync(join(dir, "hcl/secrets/consul.json"), JSON.stringify(consul));
      writeFileSync(join(dir, "hcl/secrets/nomad-vault-token"), vault);
      const r = await runEmissary(["once", "--templates", join(dir, "hcl/templates")], { cwd: dir });
      expect(r.code, r.lines.join("\n")).toBe(0);
      await expectConfigs(dir, consul, vault);
    }
  }, 60_000);
});
