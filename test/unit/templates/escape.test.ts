/**
 * Every escape mode, property-tested: a value holding any mix of the format's special characters
 * is rendered through a real template into a real file of that format, and a real parser of that
 * format reads the same value back — HCL with HashiCorp's own parsers (HCL 2 as wasm, HCL 1 as
 * Consul, Vault and Nomad's agent read their config), YAML with `yaml`, TOML with `smol-toml`,
 * shell with /bin/sh, JSON with JSON.parse, HTML by decoding its entities. A neighbouring key
 * after the value proves the value cannot break out of its string. (HCL 2 normalizes every string
 * it reads to Unicode NFC, whatever the escaping: its reading is compared with the NFC form.)
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseHcl2 } from "@cdktf/hcl2json";
import fc from "fast-check";
import hcl1 from "js-hcl-parser";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { EscapeMode, ResolvedValue } from "../../../src/api/refs.js";
import { TemplateError } from "../../../src/api/errors.js";
import { ESCAPERS, ESCAPE_MODES } from "../../../src/templates/escape.js";
import { parseTemplate } from "../../../src/templates/parse.js";
import { renderTemplate } from "../../../src/templates/render.js";
import { tmpDir } from "../../helpers/e2e.js";

const dir = tmpDir("emissary-escape-");
const RUNS = 150;

/** Characters that mean something in at least one of the formats, and a few that look alike. */
const SPECIAL = ['"', "\\", "'", "\n", "\r", "\t", "\0", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\u00a0", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff",
  "${", "%{", "$${", "%%{", "$", "%", "{", "}", "}}", "{{", "#", ":", "- ", "&", "<", ">", "=", "/", "`", "*", "!", "|", "~", "[", "]", ",", "@", "é", "日本", "😀", " ", "  "];

/** Any string: the special characters above, any code point at all, and plain text, mixed. */
const anyText = fc
  .array(fc.oneof(fc.constantFrom(...SPECIAL), fc.string({ unit: "binary", maxLength: 4 }), fc.string({ maxLength: 6 })), { maxLength: 12 })
  .map((parts) => parts.join(""));

/** Renders `value` with a one-secret template of escape `mode` whose body is `body`, into a file. */
function renderFile(mode: EscapeMode, body: string, value: string, ext: string): string {
  const t = parseTemplate(`---\ndest: /run/x.${ext}\nescape: ${mode}\nsecrets:\n  v: env:V\n---\n${body}`, { file: "/etc/emissary/x.tpl", cwd: "/" });
  const out = renderTemplate(t, new Map<string, ResolvedValue>([["v", { kind: "text", text: value }]]));
  const file = join(dir, `out.${ext}`);
  writeFileSync(file, out);
  return readFileSync(file, "utf8");
}

/** HCL's JSON syntax (what hcl2json prints) writes a literal `${` as `$${` and `%{` as `%%{`. */
function fromHclJson(s: string): string {
  return s.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{");
}

describe("escape modes read back by a real parser of the format", () => {
  it("json: JSON.parse reads the value back", () => {
    fc.assert(
      fc.property(anyText, (v) => {
        const doc = JSON.parse(renderFile("json", '{"v": "{{v}}", "after": "x"}\n', v, "json")) as Record<string, string>;
        expect(doc).toEqual({ v, after: "x" });
      }),
      { numRuns: RUNS },
    );
  });

  it("hcl: HCL 2 (Nomad jobs, Terraform) and HCL 1 (Consul, Vault, Nomad agent config) read the value back", async () => {
    await fc.assert(
      fc.asyncProperty(anyText, async (v) => {
        const text = renderFile("hcl", 'acl {\n  tokens {\n    agent = "{{v}}"\n  }\n}\nafter = "x"\n', v, "hcl");
        const two = (await parseHcl2("out.hcl", text)) as { acl: { tokens: { agent: string }[] }[]; after: string };
        // HCL 2 normalizes every string to NFC (escaped or not); HCL 1 keeps the value as it is.
        expect(fromHclJson(two.acl[0]!.tokens[0]!.agent)).toBe(v.normalize("NFC"));
        expect(two.after).toBe("x");
        const one = JSON.parse(hcl1.parse(text) as string) as { acl: { tokens: { agent: string }[] }[]; after: string };
        expect(one.acl[0]!.tokens[0]!.agent).toBe(v);
        expect(one.after).toBe("x");
      }),
      { numRuns: RUNS },
    );
  });

  it("yaml: a double-quoted scalar reads the value back", () => {
    fc.assert(
      fc.property(anyText, (v) => {
        const doc = parseYaml(renderFile("yaml", 'v: "{{v}}"\nlist: ["{{v}}", x]\nafter: x\n', v, "yaml")) as Record<string, unknown>;
        expect(doc).toEqual({ v, list: [v, "x"], after: "x" });
      }),
      { numRuns: RUNS },
    );
  });

  it("toml: a basic string reads the value back", () => {
    fc.assert(
      fc.property(anyText, (v) => {
        const doc = parseToml(renderFile("toml", '[server]\nv = "{{v}}"\nafter = "x"\n', v, "toml"));
        expect(doc).toEqual({ server: { v, after: "x" } });
      }),
      { numRuns: RUNS },
    );
  });

  it("shell: a single-quoted word that /bin/sh prints back byte for byte", () => {
    fc.assert(
      fc.property(
        anyText.filter((v) => !v.includes("\0")),
        (v) => {
          const script = renderFile("shell", "printf %s {{v}}\nprintf '|after'\n", v, "sh");
          const r = spawnSync("/bin/sh", [join(dir, "out.sh")], { env: { PATH: "/usr/bin:/bin", LC_ALL: "C" } });
          expect(r.status, r.stderr.toString()).toBe(0);
          expect(r.stdout.equals(Buffer.concat([Buffer.from(v, "utf8"), Buffer.from("|after")]))).toBe(true);
          // And as the brief's one-liner: sh -c 'printf %s <word>'.
          const word = ESCAPERS.shell(v);
          const c = spawnSync("/bin/sh", ["-c", `printf %s ${word}`], { env: { PATH: "/usr/bin:/bin", LC_ALL: "C" } });
          expect(c.stdout.equals(Buffer.from(v, "utf8"))).toBe(true);
          expect(script.startsWith(`printf %s ${word}\n`)).toBe(true);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("html: decoding the entities of text and of a quoted attribute gives the value back", () => {
    const decode = (s: string): string =>
      s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (_m, e: string) => {
        if (e[0] === "#") return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
        const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
        if (!(e in named)) throw new Error(`unknown entity &${e};`);
        return named[e]!;
      });
    fc.assert(
      fc.property(anyText, (v) => {
        const html = renderFile("html", '<p title="{{v}}">{{v}}</p>\n', v, "html");
        const m = /^<p title="([^"<>]*)">([^<>]*)<\/p>\n$/s.exec(html);
        expect(m, "the value broke out of the attribute or the element").not.toBeNull();
        expect(decode(m![1]!)).toBe(v);
        expect(decode(m![2]!)).toBe(v);
      }),
      { numRuns: RUNS },
    );
  });

  it("none: the value as it is", () => {
    fc.assert(
      fc.property(anyText, (v) => {
        expect(ESCAPERS.none(v)).toBe(v);
      }),
    );
  });
});

describe("escape modes: the details", () => {
  it("covers every mode the SPEC lists", () => {
    expect([...ESCAPE_MODES].sort()).toEqual(["hcl", "html", "json", "none", "shell", "toml", "yaml"]);
  });

  it("hcl: quotes, backslashes and newlines escaped, other controls as \\uXXXX, ${ and %{ made literal", () => {
    expect(ESCAPERS.hcl('a"b\\c\nd\re\tf\u0001\u007f')).toBe('a\\"b\\\\c\\nd\\re\\tf\\u0001\\u007F');
    expect(ESCAPERS.hcl("${var.x} %{if} $x %y {")).toBe("\\u0024{var.x} \\u0025{if} $x %y {");
  });

  it("shell: quotes included; a NUL, which no shell word can carry, is an error that names no value", () => {
    expect(ESCAPERS.shell("it's")).toBe("'it'\\''s'");
    expect(ESCAPERS.shell("")).toBe("''");
    const t = parseTemplate("---\ndest: /x\nescape: shell\nsecrets:\n  v: env:V\n---\nX={{v}}\n", { file: "/etc/emissary/x.tpl", cwd: "/" });
    const err = (() => {
      try {
        renderTemplate(t, new Map<string, ResolvedValue>([["v", { kind: "text", text: "sec\0ret" }]]));
      } catch (e) {
        return e as TemplateError;
      }
      throw new Error("no error");
    })();
    expect(err).toBeInstanceOf(TemplateError);
    expect(err.message).toContain("{{v}}");
    expect(err.message).toContain("NUL");
    expect(err.message).not.toContain("sec");
  });

  it("yaml: YAML's named escapes, \\x for the rest of C0/C1, \\u above", () => {
    expect(ESCAPERS.yaml('"\\\0\x07\b\t\n\v\f\r\x1b\x85\u2028\u2029\x01\x9f\ufeff')).toBe('\\"\\\\\\0\\a\\b\\t\\n\\v\\f\\r\\e\\N\\L\\P\\x01\\x9F\\uFEFF');
  });

  it("toml: TOML's named escapes, \\u for other controls and DEL", () => {
    expect(ESCAPERS.toml('"\\\b\t\n\f\r\x01\x7f\x85')).toBe('\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u007F\x85');
  });
});
