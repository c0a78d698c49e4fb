import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnvBackend } from "../../../backends/env.js";
import { createFileBackend } from "../../../backends/file.js";
import { createHttpBackend } from "../../../backends/http.js";
import { SecretNotFoundError, TransientError, createMemoryBackend, refKey, silentLogger, type Backend, type SecretRef } from "../../../src/index.js";
import { assertBackendConformance, checkBackendConformance, type ConformanceOptions, type ConformanceResult } from "../../../src/testing/index.js";
import { binaryCanary, canary, findLeak } from "../../helpers/canary.js";

const ref = (backend: string, id: string): SecretRef => ({ backend, id, options: {} });
const factoryCtx = (env: Record<string, string | undefined> = {}) => ({ config: {}, env, logger: silentLogger() });

function failures(results: ConformanceResult[]): Record<string, string> {
  return Object.fromEntries(results.filter((r) => !r.ok).map((r) => [r.name, r.message ?? ""]));
}
function expectNoValueInResults(results: ConformanceResult[], value: string): void {
  for (const r of results) expect(r.message ?? "").not.toContain(value);
}

describe("conformance kit passes on the built-in backends", () => {
  it("memory (watch, version, close)", async () => {
    const value = canary();
    const mem = createMemoryBackend({ values: { a: value } });
    const results = await checkBackendConformance({
      backend: mem,
      existing: { ref: ref("memory", "a"), expectedValue: value },
      missing: ref("memory", "b"),
      change: async () => mem.set("a", canary()),
    });
    expect(failures(results)).toEqual({});
    expect(results.map((r) => r.name)).toEqual(["name", "fetch", "missing", "abort", "fetchMany", "watch", "version", "close", "errors"]);
    expect(results.find((r) => r.name === "watch")?.skipped).toBeUndefined();
    expect(results.find((r) => r.name === "fetchMany")?.skipped).toBe(true);
  });

  it("file (watching a real directory)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emissary-conf-"));
    try {
      const value = canary();
      const p = join(dir, "secret");
      await writeFile(p, value);
      await assertBackendConformance({
        backend: createFileBackend(factoryCtx()),
        existing: { ref: ref("file", p), expectedValue: value },
        missing: ref("file", join(dir, "missing")),
        change: () => writeFile(p, canary()),
        timeoutMs: 10_000,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("env", async () => {
    const value = canary();
    await assertBackendConformance({
      backend: createEnvBackend(factoryCtx({ SECRET: value })),
      existing: { ref: ref("env", "SECRET"), expectedValue: value },
      missing: ref("env", "MISSING"),
    });
  });

  describe("http", () => {
    let server: Server;
    let value = canary();
    beforeAll(async () => {
      server = createServer((req, res) => (req.url === "/kv/secret" ? res.end(value) : res.writeHead(404).end()));
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    it("passes, including version change", async () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/kv`;
      const first = value;
      const results = await checkBackendConformance({
        backend: createHttpBackend(factoryCtx({ EMISSARY_HTTP_URL: url })),
        existing: { ref: ref("http", "secret"), expectedValue: first },
        missing: ref("http", "nope"),
        change: async () => {
          value = canary();
        },
      });
      expect(failures(results)).toEqual({});
      expect(results.find((r) => r.name === "version")).toEqual({ name: "version", ok: true });
    });
  });
});

describe("conformance kit and bytes (Secret.value may be a Uint8Array)", () => {
  it("a backend returning Uint8Array values passes, with bytes as expectedValue", async () => {
    const first = Buffer.concat([binaryCanary(), Buffer.from([0xff, 0x00])]);
    const mem = createMemoryBackend({ values: { a: new Uint8Array(first) } });
    const results = await checkBackendConformance({
      backend: mem,
      existing: { ref: ref("memory", "a"), expectedValue: Uint8Array.from(first) },
      missing: ref("memory", "b"),
      change: async () => mem.set("a", binaryCanary()),
    });
    expect(failures(results)).toEqual({});
    expect((await mem.fetch(ref("memory", "a"), { signal: new AbortController().signal, logger: silentLogger() })).value).toBeInstanceOf(Uint8Array);
  });

  it("a plain custom backend returning a Buffer passes; other bytes than expected fail without printing them", async () => {
    const value = binaryCanary();
    const backend: Backend = {
      name: "bytes",
      async fetch(r) {
        if (r.id === "a") return { value, version: "1", binary: true };
        throw new SecretNotFoundError(`bytes:${r.id}: not found`);
      },
    };
    await assertBackendConformance({ backend, existing: { ref: ref("bytes", "a"), expectedValue: value }, missing: ref("bytes", "b") });
    const other = Buffer.from(value);
    other[0] ^= 1;
    const results = await checkBackendConformance({ backend, existing: { ref: ref("bytes", "a"), expectedValue: other }, missing: ref("bytes", "b") });
    expect(failures(results)).toEqual({ fetch: expect.stringMatching(/different from expectedValue \(48 and 48 bytes\)/) });
    for (const r of results) expect(findLeak(r.message ?? "", value)).toBeUndefined();
  });

  it("an error that leaks a binary value's base64 or hex form fails the errors check", async () => {
    const value = binaryCanary();
    for (const form of [value.toString("base64"), value.toString("hex")]) {
      const results = await checkBackendConformance({
        backend: {
          name: "leaky",
          async fetch(r) {
            if (r.id === "a") return { value };
            throw new SecretNotFoundError(`not found; the other one is ${form}`);
          },
        },
        existing: { ref: ref("leaky", "a") },
        missing: ref("leaky", "b"),
      });
      expect(failures(results)).toEqual({ errors: expect.stringMatching(/contains the secret's value/) });
    }
  });

  it("a value that is neither a string nor a Uint8Array fails the fetch check", async () => {
    const results = await checkBackendConformance({
      backend: { name: "odd", fetch: async (r) => (r.id === "a" ? ({ value: [1, 2, 3] } as unknown as { value: string }) : Promise.reject(new SecretNotFoundError("no"))) },
      existing: { ref: ref("odd", "a") },
      missing: ref("odd", "b"),
    });
    expect(failures(results).fetch).toMatch(/string or a Uint8Array/);
  });
});

/** A backend that behaves, with one thing broken by `patch`. */
function broken(value: string, patch: Partial<Backend> & Record<string, unknown>): ConformanceOptions {
  const good: Backend = {
    name: "broken",
    async fetch(r) {
      if (r.id === "a") return { value, version: "1" };
      throw new SecretNotFoundError(`broken:${r.id}: not found`);
    },
  };
  return { backend: { ...good, ...patch } as Backend, existing: { ref: ref("broken", "a"), expectedValue: value }, missing: ref("broken", "b"), timeoutMs: 300 };
}

describe("conformance kit fails, with useful messages, on broken backends", () => {
  it("a missing secret that throws the wrong class", async () => {
    const value = canary();
    const opts = broken(value, {
      async fetch(r: SecretRef) {
        if (r.id === "a") return { value };
        throw new TransientError("no such secret");
      },
    });
    const results = await checkBackendConformance(opts);
    expect(failures(results)).toEqual({ missing: expect.stringMatching(/threw TransientError \(code TRANSIENT\); expected SecretNotFoundError/) });
    await expect(assertBackendConformance(opts)).rejects.toThrow(/failed 1 conformance check:\n {2}- missing: /);
  });

  it("a missing secret that resolves", async () => {
    const results = await checkBackendConformance(broken("value-1", { async fetch() { return { value: "" }; } }));
    expect(failures(results).missing).toMatch(/resolved; a missing secret must throw SecretNotFoundError/);
  });

  it("a fetch that ignores abort and hangs", async () => {
    const value = canary();
    const results = await checkBackendConformance(broken(value, { fetch: () => new Promise<never>(() => undefined) }));
    const f = failures(results);
    expect(f.abort).toMatch(/did not settle within 300 ms; fetch must honour ctx.signal/);
    expect(f.fetch).toMatch(/did not settle/);
  });

  it("a fetch that hangs only once aborted (a swallowed abort)", async () => {
    const value = canary();
    const results = await checkBackendConformance(
      broken(value, {
        async fetch(r: SecretRef, c: { signal: AbortSignal }) {
          await new Promise((res) => setTimeout(res, 5));
          if (c.signal.aborted) return new Promise<never>(() => undefined);
          if (r.id === "a") return { value };
          throw new SecretNotFoundError("nope");
        },
      }),
    );
    expect(Object.keys(failures(results))).toEqual(["abort"]);
  });

  it("an error message that leaks the value", async () => {
    const value = canary();
    const results = await checkBackendConformance(
      broken(value, {
        async fetch(r: SecretRef) {
          if (r.id === "a") return { value: value + "\n" };
          throw new SecretNotFoundError(`not found (did you mean the one that is ${value}?)`);
        },
      }),
    );
    expect(failures(results)).toEqual({
      fetch: expect.stringMatching(/different from expectedValue/),
      errors: expect.stringMatching(/missing: the SecretNotFoundError \(code NOT_FOUND\) message contains the secret's value/),
    });
    expectNoValueInResults(results, value);
    const err = await assertBackendConformance(broken(value, { async fetch() { throw new Error(`x ${value}`); } })).then(
      () => new Error("assertBackendConformance did not throw"),
      (e: unknown) => e as Error,
    );
    expect(err.message).toMatch(/errors: /);
    expect(err.message).not.toContain(value);
  });

  it("a leak through an error's cause, and a thrown non-Error", async () => {
    const value = canary();
    const viaCause = await checkBackendConformance(
      broken(value, {
        async fetch(r: SecretRef) {
          if (r.id === "a") return { value };
          throw new SecretNotFoundError("not found", { cause: new Error(`body: ${value}`) });
        },
      }),
    );
    expect(failures(viaCause).errors).toMatch(/contains the secret's value/);
    const nonError = await checkBackendConformance(
      broken(value, {
        async fetch(r: SecretRef) {
          if (r.id === "a") return { value };
          throw "not found"; // eslint-disable-line no-throw-literal
        },
      }),
    );
    expect(failures(nonError).errors).toMatch(/threw a non-Error value \(string\) instead of an Error/);
  });

  it("a bad name", async () => {
    const results = await checkBackendConformance(broken("v", { name: "My Backend" }));
    expect(failures(results)).toEqual({ name: expect.stringMatching(/"My Backend" must match/) });
  });

  it("fetchMany keyed by id instead of refKey", async () => {
    const value = canary();
    const results = await checkBackendConformance(
      broken(value, {
        async fetchMany(refs: readonly SecretRef[]) {
          return new Map(refs.map((r) => [r.id, r.id === "a" ? { value } : new SecretNotFoundError("nope")]));
        },
      }),
    );
    expect(failures(results).fetchMany).toMatch(/not refKey\(\) of a requested reference/);
    const ok = await checkBackendConformance(
      broken(value, {
        async fetchMany(refs: readonly SecretRef[]) {
          return new Map(refs.map((r) => [refKey(r), r.id === "a" ? { value } : new SecretNotFoundError("nope")]));
        },
      }),
    );
    expect(failures(ok)).toEqual({});
  });

  it("a watch that never fires, and a version that does not change", async () => {
    const value = canary();
    const results = await checkBackendConformance({
      ...broken(value, { watch: () => () => undefined }),
      change: async () => undefined,
    });
    expect(failures(results)).toEqual({
      watch: "onChange was not called within 300 ms of change()",
      version: expect.stringMatching(/same version after change\(\)/),
    });
  });

  it("a watch that returns no unsubscribe function", async () => {
    const results = await checkBackendConformance(broken("v", { watch: (() => undefined) as unknown as Backend["watch"] }));
    expect(failures(results).watch).toMatch(/must return an unsubscribe function/);
  });

  it("a close that is not idempotent", async () => {
    let closed = false;
    const results = await checkBackendConformance(
      broken("v", {
        async close() {
          if (closed) throw new Error("already closed");
          closed = true;
        },
      }),
    );
    expect(failures(results)).toEqual({ close: expect.stringMatching(/a second close\(\) threw Error; close must be idempotent/) });
  });
});
