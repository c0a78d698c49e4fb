import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpBackend } from "../../../backends/http.js";
import { OriginLimit } from "../../../backends/http/origin-limit.js";
import { TransientError, silentLogger, type FetchContext } from "../../../src/index.js";

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

describe("OriginLimit", () => {
  it("runs at most `limit` calls per origin at once, others in order, origins apart", async () => {
    const lim = new OriginLimit(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const job = (i: number) => async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      order.push(i);
      running--;
      return i;
    };
    const never = new AbortController().signal;
    const got = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => lim.run("http://a", never, job(i))));
    expect(got).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
    // Another origin does not wait for the first one's queue.
    let otherRan = false;
    const slow = [0, 1, 2].map(() => lim.run("http://a", never, () => new Promise((r) => setTimeout(r, 50))));
    await lim.run("http://b", never, async () => (otherRan = true));
    expect(otherRan).toBe(true);
    await Promise.all(slow);
  });

  it("a queued call whose signal aborts leaves the queue without running", async () => {
    const lim = new OriginLimit(1);
    let release!: () => void;
    const first = lim.run("o", new AbortController().signal, () => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    let ran = false;
    const queued = lim.run("o", ac.signal, async () => (ran = true));
    ac.abort();
    await expect(queued).rejects.toThrow();
    release();
    await first;
    expect(ran).toBe(false);
    await lim.run("o", new AbortController().signal, async () => undefined);
  });
});

describe("http backend connections", () => {
  it("100 references on one server use a few kept-alive connections, not one each", async () => {
    let connections = 0;
    server = createServer((req, res) => res.end(`value of ${req.url}`));
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const b = createHttpBackend({ config: {}, env: { EMISSARY_HTTP_URL: `http://127.0.0.1:${port}/` }, logger: silentLogger() });
    const ctx: FetchContext = { signal: new AbortController().signal, logger: silentLogger() };
    const got = await Promise.all(Array.from({ length: 100 }, (_, i) => b.fetch({ backend: "http", id: `k${i}`, options: {} }, ctx)));
    expect(got.map((s) => s.value)).toEqual(Array.from({ length: 100 }, (_, i) => `value of /k${i}`));
    expect(connections).toBeLessThanOrEqual(16);
    await b.close?.();
  });

  it("a fetch stopped while it waits for a connection is a TransientError", async () => {
    let hold!: () => void;
    server = createServer((req, res) => {
      if (req.url === "/slow") hold = () => res.end("x");
      else res.end("y");
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    const b = createHttpBackend({ config: {}, env: { EMISSARY_HTTP_URL: `http://127.0.0.1:${port}/` }, logger: silentLogger() });
    const busy = Array.from({ length: 4 }, () => b.fetch({ backend: "http", id: "slow", options: {} }, { signal: new AbortController().signal, logger: silentLogger() }).catch(() => undefined));
    const ac = new AbortController();
    const waiting = b.fetch({ backend: "http", id: "other", options: {} }, { signal: ac.signal, logger: silentLogger() });
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(TransientError);
    await expect(waiting).rejects.toThrow(/aborted/);
    await b.close?.();
    hold?.();
    await Promise.all(busy);
  });
});
