/**
 * Issued certificates through the whole pipeline (createEmissary, real files, a real command)
 * against the fake Vault's PKI engine: one issuance feeding three templates, changed params, a
 * fleet of instances spreading their renewals, an unsafe state directory, a refused name beside a
 * template that carries on, and the default state directory when it cannot be created.
 */
import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEmissary, createLogger, createMemoryBackend, createMetrics, type Emissary } from "../../src/index.js";
import { canary, plantCanary } from "../helpers/canary.js";
import { runAsNobody, distUrl, NOBODY } from "../helpers/as-nobody.js";
import { tmpDir, waitFor } from "../helpers/e2e.js";
import { captureLog, type CapturedLog } from "../fakes/vault-helpers.js";
import { FakeVault, type FakePki } from "../fakes/vault-server.js";

let fake: FakeVault;
let pki: FakePki;
let token: string;
const running: Emissary[] = [];
const logs: CapturedLog[] = [];

beforeAll(async () => {
  fake = await FakeVault.start();
  pki = await fake.mountPki("pki", { intermediate: true });
  pki.role("server", { allowed_domains: ["dc1.consul"], allow_subdomains: true, allow_localhost: true, max_ttl: "72h", key_type: "ec" });
  token = fake.createToken({ id: canary("token") });
});

afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
});

afterAll(async () => {
  for (const l of logs) l.flush("pki-templates");
  await fake.close();
});

const posts = (path = "pki/issue/server"): number => fake.count((c) => c.method === "POST" && c.path === path);
const sha = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");

function issued(params: string, extra = ""): string {
  return `secrets:\n  tls:\n    ref: vault:pki/issue/server\n    params: ${params}\n${extra}`;
}

const tpl = (dest: string, body: string, front: string): string => `---\ndest: ${dest}\n${front}---\n${body}`;

async function start(dir: string, opts: { stateDir?: string; tokenId?: string; log?: CapturedLog } = {}): Promise<{ e: Emissary; log: CapturedLog }> {
  const log = opts.log ?? captureLog();
  logs.push(log);
  const e = await createEmissary({
    templates: dir,
    logger: log.logger,
    env: { VAULT_ADDR: fake.url, VAULT_TOKEN: opts.tokenId ?? token },
    stateDir: opts.stateDir ?? "",
  });
  running.push(e);
  await e.start();
  return { e, log };
}

/** Three templates of one issuance, with one command that records what the three files held when it ran. */
function consulTemplates(dir: string, params: string): { out: string; record: string } {
  const out = join(dir, "out");
  const record = join(dir, "record.log");
  const script = join(dir, "record.mjs");
  writeFileSync(
    script,
    `import { createHash } from "node:crypto"; import { appendFileSync, readFileSync } from "node:fs";\n` +
      `const h = (f) => createHash("sha256").update(readFileSync(${JSON.stringify(out)} + "/" + f)).digest("hex");\n` +
      `appendFileSync(${JSON.stringify(record)}, JSON.stringify(["cert.pem", "key.pem", "ca.pem"].map(h)) + "\\n");\n`,
  );
  const front = (name: string): string => `command: ["${process.execPath}", "${script}"]\n${issued(params)}`;
  writeFileSync(join(dir, "cert.tpl"), tpl(join(out, "cert.pem"), "{{tls.certificate}}\n", front("cert")));
  writeFileSync(join(dir, "key.tpl"), tpl(join(out, "key.pem"), "{{tls.private_key}}\n", `mode: 0600\n${front("key")}`));
  writeFileSync(join(dir, "ca.tpl"), tpl(join(out, "ca.pem"), "{{#tls.ca_chain}}\n{{.}}\n{{/tls.ca_chain}}\n", front("ca")));
  return { out, record };
}

describe("one issuance, three templates", () => {
  it("one POST, three files whose key matches the certificate, one command after all three writes", async () => {
    const dir = tmpDir();
    const { out, record } = consulTemplates(dir, "{ common_name: server.dc1.consul, alt_names: localhost, ip_sans: 127.0.0.1, ttl: 72h }");
    const before = posts();
    const events: string[] = [];
    const { e } = await start(dir);
    e.on("write", (w) => events.push(`write ${w.dest}`)).on("command", () => events.push("command"));
    await waitFor(() => existsSync(record), 15_000, "the command");
    await e.settled();
    expect(posts() - before).toBe(1);
    const cert = new X509Certificate(readFileSync(join(out, "cert.pem")));
    const key = readFileSync(join(out, "key.pem"), "utf8");
    plantCanary(key, "tls-key");
    plantCanary(readFileSync(join(out, "cert.pem"), "utf8"), "tls-cert");
    expect(cert.checkPrivateKey(createPrivateKey(key))).toBe(true);
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.1");
    const chain = readFileSync(join(out, "ca.pem"), "utf8");
    expect(chain).toBe(pki.chainPem.map((c) => `${c}\n`).join(""));
    expect(cert.checkIssued(new X509Certificate(pki.chainPem[0]!))).toBe(true);
    // The command ran once, and saw all three files as they are now.
    const runs = readFileSync(record, "utf8").trim().split("\n");
    expect(runs).toHaveLength(1);
    expect(JSON.parse(runs[0]!)).toEqual(["cert.pem", "key.pem", "ca.pem"].map((f) => sha(join(out, f))));
    expect(events.filter((x) => x.startsWith("write"))).toHaveLength(3);
    expect(events.at(-1)).toBe("command");
    // /status and the certificate's times.
    const ref = e.status().references.find((r) => r.ref.startsWith("vault:pki/issue/server"))!;
    expect(ref.templates).toHaveLength(3);
    expect(ref.certificate!.notAfter).toBe(Date.parse(cert.validTo));
    expect(ref.certificate!.renewAt).toBeGreaterThan(Date.now());
    expect(ref.certificate!.renewAt).toBeLessThan(ref.certificate!.notAfter);
    expect(JSON.stringify(e.status())).not.toContain(key.split("\n")[1]!);
    // Metrics: NotAfter and the renewal time per reference key, and nothing of the certificate.
    const m = createMetrics(e, { processMetrics: false });
    const text = await m.metrics();
    m.close();
    expect(text).toContain(`emissary_certificate_expiry_timestamp_seconds{ref="${ref.ref}"} ${ref.certificate!.notAfter / 1000}`);
    expect(text).toContain(`emissary_certificate_renewal_timestamp_seconds{ref="${ref.ref}"} ${ref.certificate!.renewAt / 1000}`);
    expect(text).not.toContain("server.dc1.consul");
  });

  it("changed params are a new reference: one new issuance, all three files follow", async () => {
    const dir = tmpDir();
    const { out, record } = consulTemplates(dir, "{ common_name: server.dc1.consul, ttl: 24h }");
    const { e } = await start(dir);
    await waitFor(() => existsSync(record), 15_000, "the first command");
    await e.settled();
    const before = posts();
    const first = readFileSync(join(out, "cert.pem"), "utf8");
    for (const f of ["cert.tpl", "key.tpl", "ca.tpl"]) writeFileSync(join(dir, f), readFileSync(join(dir, f), "utf8").replace("ttl: 24h", "ttl: 48h"));
    await waitFor(() => readFileSync(join(out, "cert.pem"), "utf8") !== first && new X509Certificate(readFileSync(join(out, "cert.pem"))).checkPrivateKey(createPrivateKey(readFileSync(join(out, "key.pem")))), 15_000, "the new certificate and key");
    await e.settled();
    expect(posts() - before).toBe(1);
    const cert = new X509Certificate(readFileSync(join(out, "cert.pem")));
    expect((Date.parse(cert.validTo) - Date.now()) / 3600_000).toBeGreaterThan(47);
  });
});

describe("operator control", () => {
  it("refresh without --reissue keeps the held certificate; with --reissue: one new issuance, all three files and the command follow", async () => {
    const dir = tmpDir();
    const { out, record } = consulTemplates(dir, "{ common_name: server.dc1.consul, ttl: 24h }");
    const { e } = await start(dir);
    await waitFor(() => existsSync(record), 15_000, "the first command");
    await e.settled();
    const before = posts();
    const first = readFileSync(join(out, "cert.pem"), "utf8");
    const plain = await e.refresh({});
    expect(plain.ok).toBe(true);
    expect(posts()).toBe(before);
    expect(readFileSync(join(out, "cert.pem"), "utf8")).toBe(first);
    // Past the per-reference rate limit of the refresh above.
    await new Promise((r) => setTimeout(r, 1100));
    const again = await e.refresh({ reissue: true });
    expect(again.results.map((r) => r.result)).toEqual(["changed"]);
    expect(posts() - before).toBe(1);
    await waitFor(() => readFileSync(record, "utf8").trim().split("\n").length === 2, 15_000, "the command after the re-issue");
    const cert = new X509Certificate(readFileSync(join(out, "cert.pem")));
    expect(cert.toString()).not.toBe(new X509Certificate(first).toString());
    expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(out, "key.pem"))))).toBe(true);
  });
});

describe("passes", () => {
  it("a wait on one template of an issuance holds the others: all are written in one pass, then the command", async () => {
    const dir = tmpDir();
    const mem = createMemoryBackend({ values: { cert: '{"certificate":"C1","private_key":"K1"}' } });
    const record = join(dir, "record.log");
    const cmd = `command: ["/bin/sh", "-c", "cat ${dir}/cert.pem ${dir}/key.pem | tr -d '\\\\n' >> ${record}; echo >> ${record}"]\n`;
    const secret = "secrets:\n  tls:\n    ref: memory:cert\n    params: { common_name: x }\n";
    writeFileSync(join(dir, "cert.tpl"), tpl(join(dir, "cert.pem"), "{{tls.certificate}}\n", `wait: 300ms\n${cmd}${secret}`));
    writeFileSync(join(dir, "key.tpl"), tpl(join(dir, "key.pem"), "{{tls.private_key}}\n", `${cmd}${secret}`));
    const e = await createEmissary({ templates: dir, backends: [mem], logger: captureLog().logger, env: {}, stateDir: "" });
    running.push(e);
    await e.start();
    await waitFor(() => existsSync(record), 15_000, "the first command");
    mem.set("cert", '{"certificate":"C2","private_key":"K2"}');
    await waitFor(() => readFileSync(record, "utf8").trim().split("\n").length >= 2, 15_000, "the second command");
    await e.settled();
    // Without holding key.pem back with cert.pem, the command would have run with C1 and K2.
    expect(readFileSync(record, "utf8").trim().split("\n")).toEqual(["C1K1", "C2K2"]);
  });
});

describe("renewal", () => {
  it("at renew_at of a short validity: a new certificate, all three files rewritten together, the command once more", async () => {
    const dir = tmpDir();
    const { out, record } = consulTemplates(dir, "{ common_name: server.dc1.consul, ttl: 8s }");
    for (const f of ["cert.tpl", "key.tpl", "ca.tpl"]) writeFileSync(join(dir, f), readFileSync(join(dir, f), "utf8").replace("    params:", "    renew_at: 0.5\n    params:"));
    const before = posts();
    const { e } = await start(dir);
    await waitFor(() => existsSync(record), 15_000, "the first command");
    const first = readFileSync(join(out, "cert.pem"), "utf8");
    const renewAt = e.status().references[0]!.certificate!.renewAt;
    const issuedAt = e.status().references[0]!.certificate!.issuedAt;
    // 0.5 ± 0.05 of the validity, counted from the issue time.
    const notAfter = e.status().references[0]!.certificate!.notAfter;
    expect((renewAt - issuedAt) / (notAfter - issuedAt)).toBeGreaterThanOrEqual(0.45 - 1e-9);
    expect((renewAt - issuedAt) / (notAfter - issuedAt)).toBeLessThanOrEqual(0.55 + 1e-9);
    await waitFor(() => readFileSync(record, "utf8").trim().split("\n").length === 2, 15_000, "the command after the renewal");
    expect(posts() - before).toBe(2);
    expect(fake.calls.filter((c) => c.path === "pki/issue/server").length).toBeGreaterThanOrEqual(2);
    const cert = readFileSync(join(out, "cert.pem"), "utf8");
    expect(cert).not.toBe(first);
    expect(new X509Certificate(cert).checkPrivateKey(createPrivateKey(readFileSync(join(out, "key.pem"))))).toBe(true);
    // The second run saw the three new files.
    const runs = readFileSync(record, "utf8").trim().split("\n");
    expect(JSON.parse(runs[1]!)).toEqual(["cert.pem", "key.pem", "ca.pem"].map((f) => sha(join(out, f))));
  }, 30_000);

  it("a reload (new backends) keeps the held certificate: no new issuance without a state directory", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a.pem"), "{{tls.certificate}}\n", `refresh: 1s\n${issued("{ common_name: reload.dc1.consul }")}`));
    const { e } = await start(dir);
    await e.settled();
    const before = posts();
    await e.reload();
    // Wait for a fetch of the reference by the new backend.
    await new Promise<void>((resolve) => e.once("fetch", () => resolve()));
    await new Promise<void>((resolve) => e.once("fetch", () => resolve()));
    expect(posts()).toBe(before);
  });
});

describe("a fleet", () => {
  it("100 instances issued at the same moment spread their renewals over the jitter window", async () => {
    const validityS = 30;
    const n = 100;
    const dirs: string[] = [];
    for (let i = 0; i < n; i++) {
      const dir = tmpDir("emissary-fleet-");
      writeFileSync(join(dir, "cert.tpl"), tpl(join(dir, "cert.pem"), "{{tls.certificate}}\n", issued(`{ common_name: node${i}.dc1.consul, ttl: ${validityS}s }`, "    renew_at: 0.5\n")));
      dirs.push(dir);
    }
    // Each instance has its own token, so the fake can tell whose request is whose.
    const tokens = dirs.map((_, i) => fake.createToken({ name: `fleet-${i}` }));
    const times = new Map<string, number[]>();
    let seen = fake.calls.length;
    const watch = fake.waitFor(
      () => {
        for (; seen < fake.calls.length; seen++) {
          const c = fake.calls[seen]!;
          if (c.method === "POST" && c.path === "pki/issue/server" && c.tokenName?.startsWith("fleet-")) {
            const list = times.get(c.tokenName) ?? [];
            list.push(Date.now());
            times.set(c.tokenName, list);
          }
        }
        return [...times.values()].filter((l) => l.length >= 2).length === n;
      },
      120_000,
      "every instance's renewal",
    );
    const silent = createLogger({ level: "error", destination: { write: () => undefined } });
    await Promise.all(
      dirs.map(async (dir, i) => {
        const e = await createEmissary({ templates: dir, logger: silent, env: { VAULT_ADDR: fake.url, VAULT_TOKEN: tokens[i]! }, stateDir: join(dir, "state") });
        running.push(e);
        await e.start();
      }),
    );
    await watch;
    // Renewal offsets from each instance's own issuance, as fractions of the validity.
    const offsets = [...times.values()].map(([issuedAt, renewedAt]) => (renewedAt! - issuedAt!) / (validityS * 1000));
    const lo = Math.min(...offsets);
    const hi = Math.max(...offsets);
    // renew_at 0.5 ± 5%: within [0.45, 0.55] (plus the time a fetch takes to come round). Counted
    // from emissary's own issue time (stamped before the request reaches the fake, by up to the
    // request's latency under load) over a validity that ends at NotAfter, which X.509 keeps in
    // whole seconds (up to 1 s short): so a little earlier than 0.45 of 30 s after the recorded call.
    expect(lo).toBeGreaterThanOrEqual(0.45 - 1 / validityS - 0.005);
    expect(hi).toBeLessThanOrEqual(0.58);
    // Spread out, not one wave: over at least half the 10%-wide window, in many distinct slots.
    expect(hi - lo).toBeGreaterThan(0.06);
    expect(new Set(offsets.map((o) => Math.floor(o * 100))).size).toBeGreaterThanOrEqual(8);
    // Each instance kept its certificate in its own state directory (0700).
    for (const dir of dirs.slice(0, 3)) expect(readdirSync(join(dir, "state")).filter((f) => f.endsWith(".json"))).toHaveLength(1);
  }, 120_000);
});

describe("the state directory", () => {
  it("writable by others: refused with one warning, nothing written to it, certificates still issued", async () => {
    const dir = tmpDir();
    const state = join(dir, "state");
    mkdirSync(state);
    chmodSync(state, 0o777);
    writeFileSync(join(dir, "a.tpl"), tpl(join(dir, "a.pem"), "{{tls.certificate}}\n", issued("{ common_name: a.dc1.consul }")));
    writeFileSync(join(dir, "b.tpl"), tpl(join(dir, "b.pem"), "{{tls.private_key}}\n", issued("{ common_name: b.dc1.consul }")));
    const { e, log } = await start(dir, { stateDir: state });
    await e.settled();
    expect(existsSync(join(dir, "a.pem")) && existsSync(join(dir, "b.pem"))).toBe(true);
    const warnings = log.entries().filter((l) => l.level === 40 && String(l.msg).includes("state directory"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/writable by others \(mode 0777\)/);
    expect(readdirSync(state)).toEqual([]);
    expect(e.status().stateDir).toEqual({ dir: state, phase: "refused" });
  });

  it("the default /var/lib/emissary, not creatable without root: off with one warning, templates still render", async () => {
    const dir = tmpDir();
    chmodSync(dir, 0o755);
    const out = join(dir, "out");
    mkdirSync(out);
    if (process.getuid?.() === 0) chownSync(out, NOBODY, NOBODY);
    writeFileSync(join(dir, "a.tpl"), tpl(join(out, "a.pem"), "{{tls.certificate}}\n", issued("{ common_name: nobody.dc1.consul }")));
    const code = `
      import { createEmissary, createLogger } from ${JSON.stringify(distUrl("src/index.js"))};
      const lines = [];
      const logger = createLogger({ level: "info", destination: { write: (s) => lines.push(...s.split("\\n").filter(Boolean)) } });
      const e = await createEmissary({ templates: ${JSON.stringify(dir)}, logger, once: true, watch: false, env: { VAULT_ADDR: ${JSON.stringify(fake.url)}, VAULT_TOKEN: ${JSON.stringify(token)} } });
      await e.start();
      const r = await e.settled();
      await e.stop();
      const warn = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && String(l.msg).includes("state directory"));
      console.log(JSON.stringify({ ok: r.ok, stateDir: e.config.stateDir, phase: r.status.stateDir?.phase, warnings: warn.map((w) => w.msg) }));
    `;
    if (process.getuid?.() !== 0) {
      expect(existsSync("/var/lib/emissary")).toBe(false);
    }
    const r = (process.getuid?.() === 0 ? await runAsNobody(code) : await runInProcess(dir)) as { ok: boolean; stateDir: string; phase: string; warnings: string[] };
    expect(r.ok).toBe(true);
    expect(r.stateDir).toBe("/var/lib/emissary");
    expect(r.phase).toBe("refused");
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/state directory \/var\/lib\/emissary is not used \(cannot create it: EACCES\)/);
    expect(existsSync("/var/lib/emissary")).toBe(false);
    expect(readFileSync(join(out, "a.pem"), "utf8")).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });
});

/** The same as the nobody snippet, for a suite that does not run as root. */
async function runInProcess(dir: string): Promise<unknown> {
  const log = captureLog();
  const e = await createEmissary({ templates: dir, logger: log.logger, once: true, watch: false, env: { VAULT_ADDR: fake.url, VAULT_TOKEN: token } });
  await e.start();
  const r = await e.settled();
  await e.stop();
  const warn = log.entries().filter((l) => l.level === 40 && String(l.msg).includes("state directory"));
  return { ok: r.ok, stateDir: e.config.stateDir, phase: r.status.stateDir?.phase, warnings: warn.map((w) => w.msg) };
}

/** A proxy in front of the fake that swaps the private key of every issuance for another one. */
async function keySwappingProxy(): Promise<{ url: string; close: () => Promise<void> }> {
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "sec1" }) as string;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== "host" && k !== "content-length")) as Record<string, string>;
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const up = await fetch(fake.url + req.url, { method: req.method!, headers, ...(body ? { body } : {}) });
      let text = await up.text();
      if (req.url?.startsWith("/v1/pki/issue/") && up.status === 200) {
        const j = JSON.parse(text) as { data: { private_key: string } };
        j.data.private_key = other;
        text = JSON.stringify(j);
      }
      res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/json" });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

describe("bad input", () => {
  it("a private key that does not match the certificate is an error, and nothing is written", async () => {
    const proxy = await keySwappingProxy();
    try {
      const dir = tmpDir();
      writeFileSync(join(dir, "cert.tpl"), tpl(join(dir, "cert.pem"), "{{tls.certificate}}\n", issued("{ common_name: swap.dc1.consul }")));
      writeFileSync(join(dir, "key.tpl"), tpl(join(dir, "key.pem"), "{{tls.private_key}}\n", issued("{ common_name: swap.dc1.consul }")));
      const log = captureLog();
      logs.push(log);
      const e = await createEmissary({ templates: dir, logger: log.logger, env: { VAULT_ADDR: proxy.url, VAULT_TOKEN: token }, stateDir: join(dir, "state") });
      running.push(e);
      await e.start();
      await waitFor(() => e.status().references.some((r) => r.lastOutcome === "fatal"), 15_000, "the failed issuance");
      const ref = e.status().references[0]!;
      expect(ref.error).toBe("vault:pki/issue/server: the private key does not match the certificate; nothing was written");
      expect(existsSync(join(dir, "cert.pem")) || existsSync(join(dir, "key.pem"))).toBe(false);
      expect(existsSync(join(dir, "state"))).toBe(false);
      expect(log.entries().some((l) => l.level === 50 && JSON.stringify(l).includes("does not match the certificate"))).toBe(true);
    } finally {
      await proxy.close();
    }
  });


  it("a name the role refuses is a fatal error with Vault's message and the reference; the other templates carry on", async () => {
    const dir = tmpDir();
    writeFileSync(join(dir, "bad.tpl"), tpl(join(dir, "bad.pem"), "{{tls.certificate}}\n", issued("{ common_name: evil.example.org }")));
    writeFileSync(join(dir, "good.tpl"), tpl(join(dir, "good.pem"), "{{tls.certificate}}\n", issued("{ common_name: good.dc1.consul }")));
    const { e, log } = await start(dir);
    await waitFor(() => existsSync(join(dir, "good.pem")), 15_000, "the good template");
    await waitFor(() => log.entries().some((l) => l.level === 50 && JSON.stringify(l).includes("not allowed by this role")), 15_000, "the fatal error");
    const line = log.entries().find((l) => l.level === 50 && JSON.stringify(l).includes("not allowed by this role"))!;
    expect(JSON.stringify(line)).toContain("vault:pki/issue/server");
    expect(JSON.stringify(line)).toContain("common name evil.example.org not allowed by this role");
    expect(existsSync(join(dir, "bad.pem"))).toBe(false);
    const bad = e.status().templates.find((t) => t.file.endsWith("bad.tpl"))!;
    expect(bad.state).toBe("pending");
    const ref = e.status().references.find((r) => r.templates.some((f) => f.endsWith("bad.tpl")))!;
    expect(ref.lastOutcome).toBe("fatal");
    expect(ref.error).toContain("not allowed by this role");
  });
});
