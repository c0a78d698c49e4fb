import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import createDefault, { createHttpBackend, joinUrl, parseRetryAfter, HTTP_REFRESH_MS } from "../../../backends/http.js";
import { ConfigError, FatalError, SecretNotFoundError, TransientError, silentLogger, type Backend, type FetchContext, type Secret } from "../../../src/index.js";
import { canary } from "../../helpers/canary.js";

const VALUE = canary("http");
const BODY_LEAK = canary("errbody");
const PASSWORD = canary("pw");

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const routes: Record<string, Handler> = {
  "/base/ok": (_q, r) => r.end(VALUE),
  "/base/nested/deep%20name": (_q, r) => r.end("nested"),
  "/base/missing": (_q, r) => r.writeHead(404).end(BODY_LEAK),
  "/base/denied": (_q, r) => r.writeHead(403).end(BODY_LEAK),
  "/base/unauth": (_q, r) => r.writeHead(401).end(BODY_LEAK),
  "/base/throttle": (_q, r) => r.writeHead(429, { "retry-after": "7" }).end(BODY_LEAK),
  "/base/unavailable": (_q, r) => r.writeHead(503, { "retry-after": new Date(Date.now() + 60_000).toUTCString() }).end(BODY_LEAK),
  "/base/boom": (_q, r) => r.writeHead(500).end(BODY_LEAK),
  "/base/teapot": (_q, r) => r.writeHead(418).end(BODY_LEAK),
  "/base/hang": () => undefined,
  "/base/etag": (q, r) => {
    if (q.headers["if-none-match"] === '"v1"') r.writeHead(304).end();
    else r.writeHead(200, { etag: '"v1"' }).end("tagged");
  },
  "/base/auth": (q, r) => {
    const expected = "Basic " + Buffer.from(`user:${PASSWORD}`).toString("base64");
    if (q.headers.authorization === expected) r.end("authorized");
    else r.writeHead(401).end();
  },
};

let server: Server;
let origin: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.url ?? "");
    const path = (req.url ?? "").split("?")[0]!;
    (routes[path] ?? ((_q: IncomingMessage, r: ServerResponse) => r.writeHead(404).end()))(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

let backends: Backend[] = [];
afterEach(async () => {
  for (const b of backends) await b.close?.();
  backends = [];
});

const ctx = (signal: AbortSignal = new AbortController().signal, previous?: Secret): FetchContext => ({ signal, logger: silentLogger(), ...(previous ? { previous } : {}) });
const ref = (id: string, backend = "http") => ({ backend, id, options: {} });
function make(env: Record<string, string | undefined> = { EMISSARY_HTTP_URL: `${origin}/base` }, config: Record<string, unknown> = {}): Backend {
  const b = createHttpBackend({ env, config, logger: silentLogger() });
  backends.push(b);
  return b;
}
async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  const e = err as Error;
  // Never the body, never a credential.
  expect(String(e) + String((e as { cause?: unknown }).cause)).not.toContain("CANARY");
  return e;
}

describe("http backend", () => {
  it("is named http with the alias insecure, a 5 minute refresh, and default-exports its factory", () => {
    expect(createDefault).toBe(createHttpBackend);
    const b = make();
    expect(b.name).toBe("http");
    expect(b.aliases).toEqual(["insecure"]);
    expect(b.defaultRefreshMs).toBe(HTTP_REFRESH_MS);
    expect(HTTP_REFRESH_MS).toBe(300_000);
  });

  it("200: returns the body, versioned by a hash that does not reveal it", async () => {
    const s = await make().fetch(ref("ok"), ctx());
    expect(s.value).toBe(VALUE);
    expect(s.version).toMatch(/^h:/);
    expect(s.version).not.toContain("CANARY");
  });

  it("uses the ETag as version, sends it back and keeps the previous value on 304", async () => {
    const b = make();
    const s1 = await b.fetch(ref("etag"), ctx());
    expect(s1).toEqual({ value: "tagged", version: '"v1"' });
    const s2 = await b.fetch(ref("etag"), ctx(undefined, s1));
    expect(s2).toBe(s1);
  });

  it("404: SecretNotFoundError naming the URL path", async () => {
    const e = await failure(make().fetch(ref("missing"), ctx()));
    expect(e).toBeInstanceOf(SecretNotFoundError);
    expect(e.message).toContain("/base/missing");
    expect(e.message).toContain("404");
  });

  it("401 and 403: FatalError", async () => {
    for (const id of ["denied", "unauth"]) {
      const e = await failure(make().fetch(ref(id), ctx()));
      expect(e).toBeInstanceOf(FatalError);
      expect(e.message).toContain(`/base/${id}`);
    }
  });

  it("429: TransientError carrying Retry-After seconds", async () => {
    const e = await failure(make().fetch(ref("throttle"), ctx()));
    expect(e).toBeInstanceOf(TransientError);
    expect((e as TransientError).retryAfterMs).toBe(7000);
  });

  it("5xx: TransientError, with Retry-After as an HTTP date honoured", async () => {
    const e1 = await failure(make().fetch(ref("boom"), ctx()));
    expect(e1).toBeInstanceOf(TransientError);
    expect((e1 as TransientError).retryAfterMs).toBeUndefined();
    const e2 = await failure(make().fetch(ref("unavailable"), ctx()));
    expect(e2).toBeInstanceOf(TransientError);
    expect((e2 as TransientError).retryAfterMs).toBeGreaterThan(30_000);
    expect((e2 as TransientError).retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it("other status codes: FatalError", async () => {
    const e = await failure(make().fetch(ref("teapot"), ctx()));
    expect(e).toBeInstanceOf(FatalError);
    expect(e.message).toContain("418");
  });

  it("a server that never answers: TransientError after the configured timeout", async () => {
    const b = make({}, { url: `${origin}/base`, timeout: "200ms" });
    const e = await failure(b.fetch(ref("hang"), ctx()));
    expect(e).toBeInstanceOf(TransientError);
    expect(e.message).toMatch(/timed out/);
    expect(e.message).toContain("/base/hang");
  });

  it("settles when ctx.signal is aborted mid-request", async () => {
    const ac = new AbortController();
    const p = make().fetch(ref("hang"), ctx(ac.signal));
    setTimeout(() => ac.abort(), 20);
    const e = await failure(p);
    expect(e).toBeInstanceOf(TransientError);
    expect(e.message).toMatch(/aborted/);
  });

  it("settles in-flight requests on close()", async () => {
    const b = make();
    const p = b.fetch(ref("hang"), ctx());
    setTimeout(() => void b.close!(), 20);
    expect(await failure(p)).toBeInstanceOf(TransientError);
  });

  it("a refused connection: TransientError naming the error code", async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    const e = await failure(make({ EMISSARY_HTTP_URL: `http://127.0.0.1:${port}/base` }).fetch(ref("ok"), ctx()));
    expect(e).toBeInstanceOf(TransientError);
    expect(e.message).toContain("ECONNREFUSED");
  });

  it("joins base and ID with exactly one slash and encodes ID segments", async () => {
    for (const base of [`${origin}/base`, `${origin}/base/`, `${origin}/base//`]) {
      for (const id of ["ok", "/ok"]) {
        expect((await make({ EMISSARY_HTTP_URL: base }).fetch(ref(id), ctx())).value).toBe(VALUE);
      }
    }
    seen.length = 0;
    expect((await make().fetch(ref("nested/deep name"), ctx())).value).toBe("nested");
    expect(seen).toEqual(["/base/nested/deep%20name"]);
    const u = (id: string, base = "http://h/p") => joinUrl(new URL(base), id).href;
    expect(u("a/b")).toBe("http://h/p/a/b");
    expect(u("a?b#c")).toBe("http://h/p/a%3Fb%23c");
    expect(u("100%")).toBe("http://h/p/100%25");
    expect(u("x", "http://h/p/?q=1")).toBe("http://h/p/x?q=1");
    expect(u("x", "http://h")).toBe("http://h/x");
  });

  it("rejects . and .. segments and options in validate()", () => {
    const b = make();
    for (const id of ["../etc/passwd", "a/./b", "a/..", "/"]) expect(() => b.validate!(ref(id))).toThrow(FatalError);
    expect(() => b.validate!({ backend: "http", id: "a", options: { version: 1 } })).toThrow(FatalError);
    expect(() => b.validate!(ref("a/b.c/..d"))).not.toThrow();
  });

  it("sends credentials from the base URL as Basic auth and never names them", async () => {
    const base = `http://user:${encodeURIComponent(PASSWORD)}@127.0.0.1:${new URL(origin).port}/base`;
    const b = make({ EMISSARY_HTTP_URL: base });
    expect((await b.fetch(ref("auth"), ctx())).value).toBe("authorized");
    const e = await failure(b.fetch(ref("missing"), ctx()));
    expect(e.message).not.toContain("user:");
  });

  it("no base URL: FatalError saying which variables to set", async () => {
    const e = await failure(make({}).fetch(ref("ok"), ctx()));
    expect(e).toBeInstanceOf(FatalError);
    expect(e.message).toContain("EMISSARY_HTTP_URL");
    expect(e.message).toContain("EMISSARY_INSECURE_URLFILE");
  });

  it("a bad EMISSARY_HTTP_URL: FatalError", async () => {
    expect(await failure(make({ EMISSARY_HTTP_URL: "ftp://x" }).fetch(ref("ok"), ctx()))).toBeInstanceOf(FatalError);
  });

  describe("EMISSARY_INSECURE_URLFILE", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "emissary-http-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("reads the base URL from the file on every fetch, and waits for the file to appear", async () => {
      const file = join(dir, "url");
      const b = make({ EMISSARY_INSECURE_URLFILE: file });
      const e = await failure(b.fetch(ref("ok", "insecure"), ctx()));
      expect(e).toBeInstanceOf(SecretNotFoundError);
      expect(e.message).toContain(file);
      await writeFile(file, "");
      expect(await failure(b.fetch(ref("ok"), ctx()))).toBeInstanceOf(SecretNotFoundError);
      await writeFile(file, `${origin}/base\n`);
      expect((await b.fetch(ref("ok"), ctx())).value).toBe(VALUE);
      await writeFile(file, `${origin}/elsewhere\n`);
      seen.length = 0;
      expect(await failure(b.fetch(ref("ok"), ctx()))).toBeInstanceOf(SecretNotFoundError);
      expect(seen).toEqual(["/elsewhere/ok"]);
      await writeFile(file, "not a url");
      expect(await failure(b.fetch(ref("ok"), ctx()))).toBeInstanceOf(FatalError);
    });

    it("EMISSARY_HTTP_URL wins over the URL file, and config wins over both", async () => {
      const file = join(dir, "url2");
      await writeFile(file, "http://127.0.0.1:1/nowhere");
      expect((await make({ EMISSARY_HTTP_URL: `${origin}/base`, EMISSARY_INSECURE_URLFILE: file }).fetch(ref("ok"), ctx())).value).toBe(VALUE);
      expect((await make({ EMISSARY_HTTP_URL: "http://127.0.0.1:1/x" }, { url: `${origin}/base` }).fetch(ref("ok"), ctx())).value).toBe(VALUE);
      const file3 = join(dir, "url3");
      await writeFile(file3, `${origin}/base`);
      expect((await make({ EMISSARY_HTTP_URL: "http://127.0.0.1:1/x" }, { url_file: file3 }).fetch(ref("ok"), ctx())).value).toBe(VALUE);
    });
  });

  describe("config", () => {
    const build = (config: Record<string, unknown>) => () => createHttpBackend({ env: {}, config, logger: silentLogger() });
    it("rejects unknown keys, naming them", () => {
      expect(build({ headers: {} })).toThrow(ConfigError);
      expect(build({ headers: {} })).toThrow("backends.http.headers");
    });
    it("rejects url with url_file, a bad url and a bad timeout", () => {
      expect(build({ url: "http://x", url_file: "/f" })).toThrow(ConfigError);
      expect(build({ url: "nope" })).toThrow("backends.http.url");
      expect(build({ url: 5 })).toThrow(ConfigError);
      expect(build({ timeout: "soon" })).toThrow("backends.http.timeout");
      expect(build({ timeout: "0s" })).toThrow("backends.http.timeout");
      expect(build({ url: "https://x/base", timeout: "1m" })).not.toThrow();
    });
  });

  it("parseRetryAfter handles seconds, dates and junk", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
