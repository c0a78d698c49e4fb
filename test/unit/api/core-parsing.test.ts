import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCli, UsageError } from "../../../src/cli/args.js";
import { resolveConfig } from "../../../src/config/resolve.js";
import { DurationError, formatDuration, parseDuration } from "../../../src/api/duration.js";
import { ConfigError, SecretNotFoundError } from "../../../src/api/errors.js";
import { globToRegExp } from "../../../src/config/glob.js";
import { extractValue, parseRef, RefSyntaxError } from "../../../src/api/refs.js";
import { refKey } from "../../../src/api/backend.js";
import { safeError } from "../../../src/observe/log.js";

describe("durations (Go syntax)", () => {
  it.each([
    ["0", 0],
    ["90s", 90_000],
    ["1m30s", 90_000],
    ["1.5h", 5_400_000],
    ["300ms", 300],
    ["2h45m", 9_900_000],
    ["1us", 0.001],
    ["+5s", 5000],
  ])("%s", (s, ms) => expect(parseDuration(s)).toBe(ms));
  it.each(["", "10", "-1s", "1x", "s", "1m30", "1 m", "abc"])("rejects %j", (s) => expect(() => parseDuration(s)).toThrow(DurationError));
  it("formats", () => expect([formatDuration(90_000), formatDuration(250), formatDuration(3_600_000)]).toEqual(["1m30s", "250ms", "1h"]));
  it("never throws anything but DurationError", () =>
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseDuration(s);
        } catch (e) {
          expect(e).toBeInstanceOf(DurationError);
        }
      }),
    ));
});

describe("references", () => {
  it("parses backend, id, field and pointer; ARNs keep their colons", () => {
    expect(parseRef("vault:secret/nomad#token")).toMatchObject({ ref: { backend: "vault", id: "secret/nomad" }, field: { kind: "key", key: "token" } });
    expect(parseRef("awssm:arn:aws:secretsmanager:eu-west-1:1:secret:x-AbC#/a/b~1c")).toMatchObject({
      ref: { id: "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbC" },
      field: { kind: "pointer", tokens: ["a", "b/c"] },
    });
    expect(parseRef("file:a.json#a.b")).toMatchObject({ field: { kind: "key", key: "a.b" } });
  });
  it.each(["", "nobackend", ":id", "Bad:x", "vault:", "vault:x#", "vault:x#/a~2"])("rejects %j", (s) => expect(() => parseRef(s)).toThrow(RefSyntaxError));
  it("refKey dedupes by backend, id and sorted options", () => {
    expect(refKey({ backend: "a", id: "x", options: { b: 1, a: "2" } })).toBe(refKey({ backend: "a", id: "x", options: { a: "2", b: 1 } }));
    expect(refKey({ backend: "a", id: "x", options: {} })).toBe("a:x");
  });
  it("extracts fields, trims, and treats empty / intentionally-empty / missing fields as not set — without quoting the value", () => {
    const secret = { value: ' {"k":" v ","n":{"x":1}} ' };
    expect(extractValue(parseRef("m:a#k"), secret)).toEqual({ kind: "text", text: "v" });
    expect(extractValue(parseRef("m:a#k", { trim: false }), secret)).toEqual({ kind: "text", text: " v " });
    expect(extractValue(parseRef("m:a#n"), secret)).toMatchObject({ kind: "object", data: { x: 1 } });
    for (const [r, v] of [["m:a", "  "], ["m:a", "intentionally-empty\n"], ["m:a#zz", '{"k":1}'], ["m:a#k", "not-json-CANARYish"]] as const) {
      try {
        extractValue(parseRef(r), { value: v });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(SecretNotFoundError);
        expect((e as Error).message).not.toContain("CANARYish");
      }
    }
  });
});

describe("config", () => {
  const dir = mkdtempSync(join(tmpdir(), "emissary-cfg-"));
  it("flag > env > file > default", () => {
    const file = join(dir, "c.yml");
    writeFileSync(file, "templates: ./from-file\npattern: '*.file'\nlog: { level: debug }\ndefaults: { mode: '0640', retry: 2s }\nbackends:\n  awssm: { region: eu-west-1, refresh: 30m }\n");
    const c = resolveConfig({ pattern: "*.flag" }, { EMISSARY_CONFIG: file, EMISSARY_TPL_PATTERN: "*.env", EMISSARY_LOG_LEVEL: "warn" }, "/cwd");
    expect(c.pattern).toBe("*.flag");
    expect(c.log.level).toBe("warn");
    expect(c.templates).toBe(join(dir, "from-file"));
    expect(c.defaults).toEqual({ mode: 0o640, commandTimeoutMs: 30_000, retryMs: 2000, splayMs: 0, minIntervalMs: 0 });
    expect(c.backends.awssm).toEqual({ refreshMs: 1_800_000, config: { region: "eu-west-1" } });
    const d = resolveConfig({}, {}, "/cwd");
    expect(d).toMatchObject({ templates: "/cwd", pattern: "*.tpl", startupDelayMs: 0, log: { level: "info", format: "json" } });
    expect(resolveConfig({}, { EMISSARY_STARTUP_DELAY: "1m30s", EMISSARY_BACKEND_MODULES: "a.js, b.js" }, "/cwd")).toMatchObject({ startupDelayMs: 90_000, modules: ["/cwd/a.js", "/cwd/b.js"] });
  });
  it.each([
    ["nope: 1\n", "nope"],
    ["log: { level: loud }\n", "log.level"],
    ["log: { colour: red }\n", "log.colour"],
    ["defaults: { mode: 999 }\n", "defaults.mode"],
    ["defaults: { retry: soon }\n", "defaults.retry"],
    ["status: { listen: 127.0.0.1 }\n", "status.listen"],
    ["templates: [\n", "YAML"],
  ])("rejects %j naming %s", (text, fragment) => {
    const file = join(dir, `bad-${Math.random()}.yml`);
    writeFileSync(file, text);
    expect(() => resolveConfig({}, { EMISSARY_CONFIG: file }, "/")).toThrow(ConfigError);
    expect(() => resolveConfig({}, { EMISSARY_CONFIG: file }, "/")).toThrow(fragment);
  });
  it("rejects a missing config file and bad env values naming them", () => {
    expect(() => resolveConfig({ config: "/nonexistent.yml" }, {}, "/")).toThrow("/nonexistent.yml");
    expect(() => resolveConfig({}, { EMISSARY_LOG_FORMAT: "xml" }, "/")).toThrow("EMISSARY_LOG_FORMAT");
    expect(() => resolveConfig({ timeout: "soon" }, {}, "/")).toThrow("--timeout");
  });
});

describe("CLI arguments", () => {
  it("defaults to run; parses every flag", () => {
    expect(parseCli([]).command).toBe("run");
    const a = parseCli(["once", "--templates", "d", "--backend-module", "a.js", "--backend-module", "b.js", "--timeout", "5s"]);
    expect(a).toMatchObject({ command: "once", flags: { templates: "d", backendModules: ["a.js", "b.js"], timeout: "5s" } });
    expect(parseCli(["render", "x.tpl"])).toMatchObject({ command: "render", file: "x.tpl" });
    expect(parseCli(["check", "--json"]).json).toBe(true);
  });
  it.each([["--bogus"], ["what"], ["render"], ["render", "a", "b"], ["run", "extra"], ["run", "--json"]])("rejects %j", (...args) => expect(() => parseCli(args)).toThrow(UsageError));
});

describe("globs and error serialization", () => {
  it("matches base names", () => {
    expect(globToRegExp("*.tpl").test("a.tpl")).toBe(true);
    expect(globToRegExp("*.tpl").test("a.tpl.bak")).toBe(false);
    expect(globToRegExp("*.{tpl,tmpl}").test("x.tmpl")).toBe(true);
    expect(globToRegExp("[ab]?.tpl").test("b1.tpl")).toBe(true);
  });
  it("keeps whitelisted error fields only: no headers, no request, no config", () => {
    const err = Object.assign(new Error("boom"), {
      code: "ECONNRESET",
      $metadata: { httpStatusCode: 503, requestId: "r" },
      config: { headers: { "X-Vault-Token": "CANARY-token" } },
      request: { headers: { authorization: "CANARY-auth" } },
      response: { data: "CANARY-body" },
      cause: Object.assign(new Error("inner"), { headers: { "x-vault-token": "CANARY-2" } }),
    });
    let syntax: unknown;
    try {
      JSON.parse("{CANARY-in-json");
    } catch (e) {
      syntax = e;
    }
    expect(JSON.stringify(safeError(syntax))).not.toContain("CANARY");
    const s = JSON.stringify(safeError(err));
    expect(s).not.toContain("CANARY");
    expect(safeError(err)).toMatchObject({ type: "Error", message: "boom", code: "ECONNRESET", httpStatusCode: 503, cause: { message: "inner" } });
  });
});
