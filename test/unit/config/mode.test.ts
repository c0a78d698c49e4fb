import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatMode, parseMode } from "../../../src/config/mode.js";
import { readConfigFile, resolveConfig } from "../../../src/config/resolve.js";
import { parseTemplate } from "../../../src/templates/parse.js";
import { ConfigError, TemplateError } from "../../../src/api/errors.js";

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), "emissary-mode-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

describe("parseMode: setuid, setgid and sticky bits", () => {
  it.each([
    ["4755", "setuid"],
    ["2755", "setgid"],
    ["1777", "sticky"],
    ["6750", "setuid and setgid"],
    ["0o4700", "setuid"],
  ])("refuses %s, naming the %s bit and the mode without it", (text, bits) => {
    const err = thrown(() => parseMode(Number(text.replace("0o", "")), text));
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as TemplateError).field).toBe("mode");
    expect((err as TemplateError).reason).toContain(`must not carry the ${bits} bit`);
    expect((err as TemplateError).reason).toContain(formatMode(parseInt(text.replace("0o", ""), 8) & 0o777));
  });

  it("accepts four digits starting with 0, and every plain permission", () => {
    expect(parseMode("0755")).toBe(0o755);
    expect(parseMode(777)).toBe(0o777);
    expect(parseMode("0000")).toBe(0);
  });
});

describe("a template's mode with a special bit", () => {
  it("is a TemplateError naming file, line, column and field", () => {
    const file = join(dir, "prog.tpl");
    const err = thrown(() => parseTemplate("---\ndest: out\nmode: 4755\n---\nx\n", { file, cwd: dir }));
    expect(err).toBeInstanceOf(TemplateError);
    expect(err).toMatchObject({ file, line: 3, column: 7, field: "mode" });
    expect(err.message).toContain(`${file}:3:7: mode: must not carry the setuid bit`);
  });
});

describe("defaults.mode with a special bit", () => {
  it("is a ConfigError naming the config file, line and field", async () => {
    const file = join(dir, "emissary.yaml");
    await fsp.writeFile(file, 'templates: .\nlog: { level: info }\ndefaults:\n  command_timeout: 5s\n  mode: "2750"\n');
    const err = thrown(() => readConfigFile(file));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ file, field: "defaults.mode" });
    expect(err.message).toBe(`${file}:5: defaults.mode: must not carry the setgid bit (got "2750"): destinations are config and secret files, not programs or shared directories; use 0750`);
    expect(() => resolveConfig({ config: file }, {}, dir)).toThrow(ConfigError);
  });

  it("a plain defaults.mode still resolves", async () => {
    const file = join(dir, "emissary.yaml");
    await fsp.writeFile(file, "defaults: { mode: 0640 }\n");
    expect(resolveConfig({ config: file }, {}, dir).defaults.mode).toBe(0o640);
  });
});
