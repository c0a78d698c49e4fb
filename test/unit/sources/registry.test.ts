import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/api/errors.js";
import { silentLogger } from "../../../src/api/log.js";
import { BackendRegistry } from "../../../src/sources/registry.js";

/** A ConfigError as another copy of emissaryd makes it: same name and code, another class. */
class ForeignConfigError extends Error {
  readonly code = "CONFIG";
  readonly field = "backends.consul.address";
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

describe("BackendRegistry", () => {
  it("passes a factory's ConfigError through, from this copy of emissaryd or another (matched by code)", async () => {
    for (const make of [() => new ConfigError("consul: address is required", { field: "backends.consul.address" }), () => new ForeignConfigError("consul: address is required")]) {
      const registry = new BackendRegistry({ settings: {}, env: {}, logger: silentLogger(), custom: [() => Promise.reject(make())] });
      const err = await registry.init().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toBe("consul: address is required");
      expect((err as ConfigError).field).toBe("backends.consul.address");
    }
  });

  it("wraps any other factory error as a ConfigError saying which backend", async () => {
    const registry = new BackendRegistry({ settings: {}, env: {}, logger: silentLogger(), custom: [() => Promise.reject(new TypeError("boom"))] });
    await expect(registry.init()).rejects.toThrow(/custom backend: cannot create it: boom/);
    await expect(registry.init()).rejects.toBeInstanceOf(ConfigError);
  });
});
