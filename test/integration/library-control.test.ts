/**
 * Operator control through the library: emissary.refresh() by reference, by template and for
 * everything, with per-reference results and the UnknownNameError; write events naming the
 * changed secrets; status() with each reference's next fetch and why.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createEmissary, createMemoryBackend, silentLogger, UnknownNameError, type Emissary, type EmissaryEvents } from "../../src/index.js";
import { tmpDir, waitFor } from "../helpers/e2e.js";

let current: Emissary | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

describe("library: refresh, change reports, next fetches", () => {
  it("refreshes what is named, reports per reference, names changed secrets in write events", async () => {
    const dir = tmpDir();
    // No watch: only the scheduler's timers (an hour away) or a refresh fetch again.
    const mem = Object.assign(createMemoryBackend({ values: { db: '{"user":"app","password":"pw1"}', other: "o1" } }), { watch: undefined });
    writeFileSync(join(dir, "app.tpl"), `---\ndest: ${join(dir, "app.out")}\nrefresh: 1h\nsecrets:\n  user: memory:db#user\n  pw: memory:db#password\n---\n{{user}}:{{pw}}\n`);
    writeFileSync(join(dir, "other.tpl"), `---\ndest: ${join(dir, "other.out")}\nrefresh: 1h\nsecrets:\n  o: memory:other\n---\n{{o}}\n`);
    const writes: EmissaryEvents["write"][] = [];
    current = await createEmissary({ templates: dir, backends: [mem], logger: silentLogger(), env: {}, watch: false });
    current.on("write", (w) => writes.push(w));
    await current.start();
    await current.settled();
    expect(Object.fromEntries(writes.map((w) => [w.dest, w.changed]))).toEqual({ [join(dir, "app.out")]: ["user", "pw"], [join(dir, "other.out")]: ["o"] });

    const s = current.status();
    for (const r of s.references) {
      expect(r.nextFetchReason).toBe("refresh");
      expect(r.nextFetchAt! - Date.now()).toBeGreaterThan(20 * 60_000);
    }

    const fetches = mem.fetchCount;
    mem.set("db", '{"user":"app","password":"pw2"}');
    const report = await current.refresh({ refs: ["memory:db#password"] });
    expect(report).toEqual({ ok: true, reissue: false, results: [expect.objectContaining({ ref: "memory:db", backend: "memory", result: "changed", templates: [join(dir, "app.tpl")] })] });
    expect(mem.fetchCount).toBe(fetches + 1);
    await waitFor(() => readFileSync(join(dir, "app.out"), "utf8") === "app:pw2\n", 5_000, "rendered");
    await waitFor(() => writes.length === 3, 5_000, "write event");
    expect(writes[2]).toMatchObject({ dest: join(dir, "app.out"), changed: ["pw"] });
    expect(current.status().templates.find((t) => t.file.endsWith("app.tpl"))!.lastChanged).toEqual(["pw"]);

    const again = await current.refresh({ templates: ["app"] });
    expect(again.results).toEqual([expect.objectContaining({ ref: "memory:db", result: "changed", rateLimited: true })]);
    expect(mem.fetchCount).toBe(fetches + 1);

    const all = await current.refresh({ names: ["other.tpl"], reissue: true });
    expect(all).toMatchObject({ reissue: true, results: [{ ref: "memory:other", result: "fetched" }] });

    mem.fail("other", new Error("boom"));
    await new Promise((r) => setTimeout(r, 1100));
    const failed = await current.refresh({});
    expect(failed.ok).toBe(false);
    expect(failed.results.find((r) => r.ref === "memory:other")).toMatchObject({ result: "error", errorClass: "transient" });
    expect(current.status().references.find((r) => r.ref === "memory:other")).toMatchObject({ nextFetchReason: "backoff" });

    await expect(current.refresh({ names: ["nope"] })).rejects.toBeInstanceOf(UnknownNameError);
  });
});
