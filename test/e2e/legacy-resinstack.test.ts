import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { runEmissary, spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { startHttpSecrets, type HttpSecrets } from "../helpers/http-secrets.js";

// The template exactly as ResinStack ships it for the original Go emissary.
const RESINSTACK = (dest: string, onrender: string): string => `---
dest: ${dest}
mode: 0644
onrender: ${onrender}
---
encrypt = "{{poll "insecure" "consul_key"}}"
`;

describe("an unchanged ResinStack template", () => {
  let server: HttpSecrets | undefined;
  let daemon: Daemon | undefined;
  afterEach(async () => {
    await daemon?.stop();
    await server?.close();
    daemon = server = undefined;
  });

  it("waits while the key answers 404, then renders with mode 0644 and runs onrender", async () => {
    server = await startHttpSecrets();
    const dir = tmpDir();
    const tpl = join(dir, "tpl");
    const out = join(dir, "out", "consul", "gossip.hcl");
    const marker = join(dir, "restarted");
    await import("node:fs").then((fs) => fs.mkdirSync(tpl));
    writeFileSync(join(tpl, "consul.tpl"), RESINSTACK(out, `/bin/touch ${marker}`));
    const urlFile = join(dir, "url");
    writeFileSync(urlFile, server.url + "\n");
    // The original's environment; the retry interval is shortened through the config file only.
    writeFileSync(join(dir, "config.yml"), "defaults: { retry: 150ms }\n");
    daemon = spawnEmissary(["--config", join(dir, "config.yml")], { env: { EMISSARY_TPL_DIR: tpl, EMISSARY_INSECURE_URLFILE: urlFile } });
    await waitFor(() => (server!.hits.get("consul_key") ?? 0) >= 2, 10_000, "two polls of a missing key");
    expect(existsSync(out)).toBe(false);
    expect(existsSync(marker)).toBe(false);

    const key = canary("gossip");
    server.values.set("consul_key", `  ${key}\n`); // trimmed, as the original did
    await waitFor(() => existsSync(marker), 10_000, "onrender to run");
    expect(readFileSync(out, "utf8")).toBe(`encrypt = "${key}"\n`);
    expect(statSync(out).mode & 0o777).toBe(0o644);
    expect(daemon.proc.exitCode).toBeNull();
  });

  it("treats intentionally-empty as not yet set", async () => {
    server = await startHttpSecrets({ consul_key: "intentionally-empty" });
    const dir = tmpDir();
    const out = join(dir, "gossip.hcl");
    writeFileSync(join(dir, "consul.tpl"), RESINSTACK(out, "/bin/true"));
    const res = await runEmissary(["once", "--templates", dir, "--timeout", "1s"], { env: { EMISSARY_HTTP_URL: server.url } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("insecure:consul_key");
    expect(existsSync(out)).toBe(false);
  });

  it("once exits 0 after rendering and running the command", async () => {
    const key = canary("gossip");
    server = await startHttpSecrets({ consul_key: key });
    const dir = tmpDir();
    const out = join(dir, "gossip.hcl");
    const marker = join(dir, "ran");
    writeFileSync(join(dir, "consul.tpl"), RESINSTACK(out, `/bin/touch ${marker}`));
    const res = await runEmissary(["once"], { env: { EMISSARY_TPL_DIR: dir, EMISSARY_HTTP_URL: server.url } });
    expect(res.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(`encrypt = "${key}"\n`);
    expect(existsSync(marker)).toBe(true);
  });

  // Byte for byte what the original Go emissary (resinstack/emissary f285ae2, run side by side
  // with the same server) wrote for this template: trim markers, a `#` kept in the ID, HTML
  // characters and braces in values left alone, CRLF and spaces trimmed.
  it("renders Go trim markers, literal IDs and raw values exactly as the original did", async () => {
    server = await startHttpSecrets({ consul_token: "tok-123\n", "a#b": "hash", html: `<a&b>"q"'x`, braces: 'a {{b}} {{poll "insecure" "consul_token"}}', key: "  gossip-key==  \r\n", "base/k": "under-base" });
    const dir = tmpDir();
    const out = join(dir, "edge.txt");
    writeFileSync(
      join(dir, "edge.tpl"),
      `---\ndest: ${out}\nmode: 0640\n---\ntrim:[  {{- poll "insecure" "consul_token" -}}  ]\nspaces:[{{ poll "insecure" "html" }}]\nbraces:[{{poll "insecure" "braces"}}]\nhash:[{{poll "insecure" "a#b"}}]\nraw:[{{poll "insecure" \`key\`}}]\nsub:[{{poll "insecure" "base/k"}}]\n`,
    );
    const res = await runEmissary(["once", "--timeout", "10s"], { env: { EMISSARY_TPL_DIR: dir, EMISSARY_HTTP_URL: server.url } });
    expect(res.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(`trim:[tok-123]\nspaces:[<a&b>"q"'x]\nbraces:[a {{b}} {{poll "insecure" "consul_token"}}]\nhash:[hash]\nraw:[gossip-key==]\nsub:[under-base]\n`);
    expect(statSync(out).mode & 0o777).toBe(0o640);
    expect(server.hits.get("a#b")).toBe(1);
  });

  it.each([
    ["an empty string", 'onrender: ""'],
    ["nothing", "onrender:"],
    ["~", "onrender: ~"],
    ["an empty command", "command:"],
  ])("onrender set to %s: the file is written and no command runs", async (_what, line) => {
    const key = canary("gossip");
    server = await startHttpSecrets({ consul_key: key });
    const dir = tmpDir();
    const out = join(dir, "gossip.hcl");
    writeFileSync(join(dir, "consul.tpl"), `---\ndest: ${out}\nmode: 0644\n${line}\n---\nencrypt = "{{poll "insecure" "consul_key"}}"\n`);
    const res = await runEmissary(["once", "--templates", dir, "--timeout", "20s"], { env: { EMISSARY_HTTP_URL: server.url } });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(`encrypt = "${key}"\n`);
    const wrote = res.lines.filter((l) => l.includes('"wrote destination"'));
    expect(wrote).toHaveLength(1);
    expect(JSON.parse(wrote[0]!)).toMatchObject({ commandRan: false });
  });

  it("once sleeps EMISSARY_STARTUP_DELAY (or --startup-delay) before it starts, as the original did", async () => {
    const key = canary("gossip");
    server = await startHttpSecrets({ consul_key: key });
    const dir = tmpDir();
    const out = join(dir, "gossip.hcl");
    writeFileSync(join(dir, "consul.tpl"), RESINSTACK(out, "/bin/true"));
    for (const [args, env] of [
      [["once"], { EMISSARY_STARTUP_DELAY: "1s" }],
      [["once", "--startup-delay", "1s"], {}],
    ] as const) {
      const res = await runEmissary(args, { env: { EMISSARY_TPL_DIR: dir, EMISSARY_HTTP_URL: server.url, ...env } });
      expect(res.code).toBe(0);
      const msgs = res.lines.filter((l) => l.startsWith("{")).map((l) => (JSON.parse(l) as { msg: string; delay?: string }));
      const delay = msgs.findIndex((m) => m.msg === "startup delay" && m.delay === "1s");
      const started = msgs.findIndex((m) => m.msg === "emissary started");
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(started).toBeGreaterThan(delay);
      expect(readFileSync(out, "utf8")).toBe(`encrypt = "${key}"\n`);
    }
    // A SIGTERM during the delay ends it at once; nothing was rendered, so exit 1.
    const d = spawnEmissary(["once", "--templates", dir, "--startup-delay", "600h"], { env: { EMISSARY_HTTP_URL: server.url } });
    await d.waitForLog((l) => l.msg === "startup delay", 15_000, "the startup delay");
    const { code } = await d.stop();
    expect(code).toBe(1);
    expect(d.logs().some((l) => l.msg === "emissary started")).toBe(false);
  });
});
