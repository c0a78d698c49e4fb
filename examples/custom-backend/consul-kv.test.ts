/**
 * The Consul KV backend against a fake Consul agent on 127.0.0.1: the conformance kit every
 * backend author can run, plus what is particular to Consul (ACL tokens, blocking queries,
 * datacenters, error classes).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { classifyError, silentLogger, type SecretRef } from "emissaryd";
import { assertBackendConformance } from "emissaryd/testing";
import consulKv, { createConsulKvBackend } from "./consul-kv.js";

/** A fake Consul agent: KV reads with `?raw`, ACL tokens, blocking queries on `index`. */
class FakeConsul {
  readonly kv = new Map<string, { value: string | Buffer; index: number }>();
  readonly requests: { path: string; query: URLSearchParams; token: string | undefined }[] = [];
  index = 10;
  /** When set, requests without this `X-Consul-Token` get 403. */
  token: string | undefined;
  /** When set, every request gets this status. */
  failWith: number | undefined;
  retryAfter: string | undefined;
  private server!: Server;
  private blocked = new Set<() => void>();

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const wake of this.blocked) wake();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  put(key: string, value: string | Buffer): void {
    this.index++;
    this.kv.set(key, { value, index: this.index });
    for (const wake of [...this.blocked]) wake();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://consul");
    const tokenHeader = req.headers["x-consul-token"];
    const token = typeof tokenHeader === "string" ? tokenHeader : undefined;
    this.requests.push({ path: url.pathname, query: url.searchParams, token });
    if (this.failWith !== undefined) {
      if (this.retryAfter !== undefined) res.setHeader("Retry-After", this.retryAfter);
      res.writeHead(this.failWith).end("rpc error: boom");
      return;
    }
    if (this.token !== undefined && token !== this.token) {
      res.writeHead(403).end("Permission denied: token with AccessorID '' lacks permission");
      return;
    }
    if (req.method !== "GET" || !url.pathname.startsWith("/v1/kv/") || !url.searchParams.has("raw")) {
      res.writeHead(400).end("unexpected request");
      return;
    }
    const key = decodeURIComponent(url.pathname.slice("/v1/kv/".length));
    const since = Number(url.searchParams.get("index") ?? "0");
    if (since > 0) {
      // Blocking query: hold until this key's index moves past `since` (or a short test wait).
      const deadline = Date.now() + 3000;
      while ((this.kv.get(key)?.index ?? this.index) <= since && Date.now() < deadline && this.server.listening) {
        await new Promise<void>((r) => {
          const t = setTimeout(done, deadline - Date.now());
          function done(): void {
            clearTimeout(t);
            r();
          }
          this.blocked.add(done);
        });
      }
    }
    const entry = this.kv.get(key);
    res.setHeader("X-Consul-Index", String(entry?.index ?? this.index));
    if (!entry) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream" }).end(entry.value);
  }
}

const ref = (id: string, options: SecretRef["options"] = {}): SecretRef => ({ backend: "consul", id, options });
const ctx = () => ({ signal: new AbortController().signal, logger: silentLogger() });

async function error(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the promise to reject");
}

describe("consul KV backend", () => {
  let consul: FakeConsul;
  let address: string;

  beforeEach(async () => {
    consul = new FakeConsul();
    address = await consul.start();
  });
  afterEach(async () => {
    await consul.stop();
  });

  it("passes the backend conformance kit (fetch, missing, abort, watch, version, close, errors)", async () => {
    consul.put("app/db", '{"password":"kv-secret-1"}');
    await assertBackendConformance({
      backend: createConsulKvBackend({ address }),
      existing: { ref: ref("app/db"), expectedValue: '{"password":"kv-secret-1"}' },
      missing: ref("app/nope"),
      change: async () => consul.put("app/db", '{"password":"kv-secret-2"}'),
    });
  });

  it("returns a binary value (a keytab) as its bytes, and passes the conformance kit with them", async () => {
    const keytab = Buffer.from([0x05, 0x02, 0xff, 0x00, 0xc3, 0x28, 0x0d, 0x0a]);
    consul.put("krb/http", keytab);
    const backend = createConsulKvBackend({ address });
    const s = await backend.fetch(ref("krb/http"), ctx());
    expect(s.value).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(s.value as Uint8Array).equals(keytab)).toBe(true);
    await assertBackendConformance({
      backend,
      existing: { ref: ref("krb/http"), expectedValue: keytab },
      missing: ref("krb/nope"),
      change: async () => consul.put("krb/http", Buffer.from([0xfe, 0x01])),
    });
  });

  it("sends the ACL token as X-Consul-Token and the datacenter as ?dc", async () => {
    consul.token = "acl-token-value";
    consul.put("app/db", "v");
    const backend = createConsulKvBackend({ address, token: "acl-token-value", datacenter: "dc1" });
    await expect(backend.fetch(ref("app/db"), ctx())).resolves.toMatchObject({ value: "v" });
    await backend.fetch(ref("app/db", { dc: "dc2" }), ctx());
    expect(consul.requests.map((r) => [r.token, r.query.get("dc")])).toEqual([
      ["acl-token-value", "dc1"],
      ["acl-token-value", "dc2"],
    ]);
  });

  it("classifies a refused token as fatal, without the token in the message", async () => {
    consul.token = "the-right-token";
    consul.put("app/db", "v");
    const err = await error(createConsulKvBackend({ address, token: "wrong-token-value" }).fetch(ref("app/db"), ctx()));
    expect(classifyError(err)).toBe("fatal");
    expect(err.message).toContain("consul:app/db");
    expect(err.message).not.toContain("wrong-token-value");
  });

  it("classifies 5xx and an unreachable agent as transient and honours Retry-After", async () => {
    consul.failWith = 503;
    consul.retryAfter = "7";
    const err = await error(createConsulKvBackend({ address }).fetch(ref("app/db"), ctx()));
    expect(classifyError(err)).toBe("transient");
    expect((err as { retryAfterMs?: number }).retryAfterMs).toBe(7000);

    await consul.stop();
    const down = await error(createConsulKvBackend({ address, token: "tok-unreachable" }).fetch(ref("app/db"), ctx()));
    expect(classifyError(down)).toBe("transient");
    expect(down.message).toMatch(/unreachable/);
    expect(down.message).not.toContain("tok-unreachable");
    consul = new FakeConsul();
    address = await consul.start();
  });

  it("encodes each key segment and rejects options it does not know", async () => {
    consul.put("app/my key", "spaced");
    const backend = createConsulKvBackend({ address });
    await expect(backend.fetch(ref("app/my key"), ctx())).resolves.toMatchObject({ value: "spaced" });
    expect(consul.requests.at(-1)?.path).toBe("/v1/kv/app/my%20key");
    expect(() => backend.validate!(ref("app/db", { version_stage: "AWSCURRENT" }))).toThrow(/version_stage/);
  });

  it("default export reads CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN_FILE and rejects unknown settings", async () => {
    const dir = mkdtempSync(join(tmpdir(), "consul-kv-"));
    try {
      writeFileSync(join(dir, "token"), "file-token\n");
      consul.token = "file-token";
      consul.put("app/db", "from-file-token");
      const backend = consulKv({ config: {}, env: { CONSUL_HTTP_ADDR: address.replace("http://", ""), CONSUL_HTTP_TOKEN_FILE: join(dir, "token") }, logger: silentLogger() });
      await expect(backend.fetch(ref("app/db"), ctx())).resolves.toMatchObject({ value: "from-file-token" });
      expect(() => consulKv({ config: { adress: "x" }, env: {}, logger: silentLogger() })).toThrow(/backends\.consul\.adress/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
