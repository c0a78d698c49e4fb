import { describe, expect, it } from "vitest";
import { FatalError, SecretNotFoundError, TransientError, classifyError, createMemoryBackend, silentLogger, type FetchContext } from "../../../src/index.js";
import { canary } from "../../helpers/canary.js";

const ctx = (): FetchContext => ({ signal: new AbortController().signal, logger: silentLogger() });
const ref = (id: string) => ({ backend: "memory", id, options: {} });

describe("createMemoryBackend", () => {
  it("is named memory by default and fetches initial values", async () => {
    const value = canary();
    const mem = createMemoryBackend({ values: { "db/pass": value } });
    expect(mem.name).toBe("memory");
    const s = await mem.fetch(ref("db/pass"), ctx());
    expect(s.value).toBe(value);
    expect(typeof s.version).toBe("string");
    expect(s.version).not.toContain(value);
    expect(mem.fetchCount).toBe(1);
  });

  it("takes another name", () => {
    expect(createMemoryBackend({ name: "consul" }).name).toBe("consul");
  });

  it("throws SecretNotFoundError for a missing id, without the value of others", async () => {
    const mem = createMemoryBackend({ values: { a: canary() } });
    const err = await mem.fetch(ref("b"), ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    expect(classifyError(err)).toBe("not_found");
    expect(String(err)).not.toContain("CANARY");
    expect(mem.fetchCount).toBe(1);
  });

  it("set changes value and version and notifies watchers synchronously; delete makes it missing", async () => {
    const mem = createMemoryBackend({ values: { a: "one" } });
    const v1 = (await mem.fetch(ref("a"), ctx())).version;
    let calls = 0;
    const off = mem.watch!(ref("a"), () => calls++);
    mem.set("a", "two");
    expect(calls).toBe(1);
    const s2 = await mem.fetch(ref("a"), ctx());
    expect(s2.value).toBe("two");
    expect(s2.version).not.toBe(v1);
    mem.set("a", "three", "v3");
    expect((await mem.fetch(ref("a"), ctx())).version).toBe("v3");
    mem.delete("a");
    expect(calls).toBe(3);
    await expect(mem.fetch(ref("a"), ctx())).rejects.toBeInstanceOf(SecretNotFoundError);
    off();
    mem.set("a", "four");
    expect(calls).toBe(3);
    expect(mem.watcherCount("a")).toBe(0);
  });

  it("only notifies watchers of the changed id, and counts subscriptions", () => {
    const mem = createMemoryBackend();
    const seen: string[] = [];
    const offA = mem.watch!(ref("a"), () => seen.push("a"));
    const offB = mem.watch!(ref("b"), () => seen.push("b"));
    expect(mem.watcherCount()).toBe(2);
    mem.set("b", "x");
    expect(seen).toEqual(["b"]);
    offA();
    offA(); // idempotent
    offB();
    expect(mem.watcherCount()).toBe(0);
  });

  it("fail makes fetches throw the given error until cleared, and notifies watchers", async () => {
    const mem = createMemoryBackend({ values: { a: "one" } });
    let calls = 0;
    mem.watch!(ref("a"), () => calls++);
    const boom = new FatalError("denied");
    mem.fail("a", boom);
    expect(calls).toBe(1);
    await expect(mem.fetch(ref("a"), ctx())).rejects.toBe(boom);
    await expect(mem.fetch(ref("a"), ctx())).rejects.toBe(boom);
    mem.fail("a", undefined);
    expect(calls).toBe(2);
    expect((await mem.fetch(ref("a"), ctx())).value).toBe("one");
    expect(mem.fetchCount).toBe(3);
  });

  it("rejects a fetch whose signal is already aborted", async () => {
    const mem = createMemoryBackend({ values: { a: "one" } });
    const ac = new AbortController();
    ac.abort();
    await expect(mem.fetch(ref("a"), { signal: ac.signal, logger: silentLogger() })).rejects.toBeInstanceOf(TransientError);
  });

  it("calls every watcher even if one throws, then rethrows", () => {
    const mem = createMemoryBackend();
    let second = 0;
    mem.watch!(ref("a"), () => {
      throw new Error("subscriber bug");
    });
    mem.watch!(ref("a"), () => second++);
    expect(() => mem.set("a", "x")).toThrow("subscriber bug");
    expect(second).toBe(1);
  });

  it("a watch given the value the caller holds reports a change made before it subscribed, and only then", async () => {
    const mem = createMemoryBackend({ values: { a: "one" } });
    const held = await mem.fetch(ref("a"), ctx());
    mem.set("a", "two"); // while nobody watched (a reload replacing the watch)
    let calls = 0;
    mem.watch!(ref("a"), () => calls++, { previous: held });
    await Promise.resolve();
    expect(calls).toBe(1);
    let unchanged = 0;
    mem.watch!(ref("a"), () => unchanged++, { previous: await mem.fetch(ref("a"), ctx()) });
    let off = 0;
    mem.watch!(ref("a"), () => off++, { previous: held })();
    await Promise.resolve();
    expect(unchanged).toBe(0);
    expect(off).toBe(0);
  });

  it("close is idempotent and drops watchers", async () => {
    const mem = createMemoryBackend();
    mem.watch!(ref("a"), () => undefined);
    await mem.close!();
    await mem.close!();
    expect(mem.closed).toBe(true);
    expect(mem.watcherCount()).toBe(0);
  });
});
