import { describe, expect, it } from "vitest";
import createDefault, { createEnvBackend, ENV_REFRESH_MS } from "../../../backends/env.js";
import { ConfigError, FatalError, SecretNotFoundError, silentLogger, type FetchContext } from "../../../src/index.js";
import { canary } from "../../helpers/canary.js";

const ctx = (): FetchContext => ({ signal: new AbortController().signal, logger: silentLogger() });
const ref = (id: string, options: Record<string, string> = {}) => ({ backend: "env", id, options });
const make = (env: Record<string, string | undefined>, config: Record<string, unknown> = {}) => createEnvBackend({ env, config, logger: silentLogger() });

describe("env backend", () => {
  it("default-exports the factory and is named env with a very long refresh", () => {
    expect(createDefault).toBe(createEnvBackend);
    const b = make({});
    expect(b.name).toBe("env");
    expect(b.defaultRefreshMs).toBe(ENV_REFRESH_MS);
    expect(ENV_REFRESH_MS).toBeGreaterThanOrEqual(3_600_000);
  });

  it("fetches a variable with a version that does not reveal it", async () => {
    const value = canary();
    const s = await make({ DB_PASSWORD: value }).fetch(ref("DB_PASSWORD"), ctx());
    expect(s.value).toBe(value);
    expect(s.version).toBeDefined();
    expect(s.version).not.toContain("CANARY");
  });

  it("reads the environment once, at creation", async () => {
    const env: Record<string, string | undefined> = { A: "one" };
    const b = make(env);
    env.A = "two";
    env.B = "new";
    expect((await b.fetch(ref("A"), ctx())).value).toBe("one");
    await expect(b.fetch(ref("B"), ctx())).rejects.toBeInstanceOf(SecretNotFoundError);
    // A reload builds a new instance, which sees the new environment.
    expect((await make(env).fetch(ref("A"), ctx())).value).toBe("two");
  });

  it("treats missing and empty variables as not found", async () => {
    const b = make({ EMPTY: "" });
    const e1 = await b.fetch(ref("NOPE"), ctx()).catch((e: unknown) => e);
    const e2 = await b.fetch(ref("EMPTY"), ctx()).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(SecretNotFoundError);
    expect((e1 as Error).message).toContain("NOPE");
    expect(e2).toBeInstanceOf(SecretNotFoundError);
    expect((e2 as Error).message).toContain("empty");
  });

  it("rejects invalid names in validate() and fetch() with FatalError", async () => {
    const b = make({ "1BAD": "x" });
    for (const id of ["1BAD", "A-B", "A B", "A=B", ""]) {
      expect(() => b.validate!(ref(id))).toThrow(FatalError);
    }
    await expect(b.fetch(ref("1BAD"), ctx())).rejects.toBeInstanceOf(FatalError);
    expect(() => b.validate!(ref("_OK_1"))).not.toThrow();
  });

  it("rejects options it does not understand", () => {
    expect(() => make({}).validate!(ref("A", { version_stage: "AWSCURRENT" }))).toThrow(/version_stage/);
  });

  it("rejects any config key, naming it", () => {
    let err: unknown;
    try {
      make({}, { prefix: "APP_" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain("backends.env.prefix");
    expect((err as ConfigError).field).toBe("backends.env.prefix");
  });
});
