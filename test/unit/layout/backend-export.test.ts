/**
 * A backend author's view of the package: `emissaryd/backend` holds the backend contract and
 * helpers, and nothing of the daemon; `emissaryd` re-exports every one of them (the same
 * objects, so `instanceof` works across both).
 */
import { execFileSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

describe("package exports: emissaryd/backend", () => {
  it("resolves by the package name, is a subset of emissaryd with identical objects, and has no daemon in it", () => {
    const script = `
      const api = await import("emissaryd/backend");
      const all = await import("emissaryd");
      const testing = await import("emissaryd/testing");
      const names = Object.keys(api).sort();
      const different = names.filter((n) => all[n] !== api[n]);
      console.log(JSON.stringify({ names, different, daemon: "createEmissary" in api, testing: typeof testing.checkBackendConformance }));`;
    const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" })) as {
      names: string[];
      different: string[];
      daemon: boolean;
      testing: string;
    };
    expect(out.names).toEqual(expect.arrayContaining(["FatalError", "SecretNotFoundError", "TransientError", "refKey", "safeError", "createMemoryBackend", "readRegularFile", "parseRef"]));
    expect(out.different).toEqual([]);
    expect(out.daemon).toBe(false);
    expect(out.testing).toBe("function");
  });
});
