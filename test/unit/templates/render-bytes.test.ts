/**
 * Rendering with bytes and per-secret escaping: a template that is one tag writes a value that is
 * not UTF-8 byte for byte; such a value anywhere else is an error naming the secret (never U+FFFD);
 * a secret's own `escape:` wins for its values, fields and section items, while falsy values stay
 * falsy in sections; unknown modes and encodings are rejected at load with file, line and field.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TemplateError } from "../../../src/api/errors.js";
import { extractValue, parseRef, type ResolvedValue } from "../../../src/api/refs.js";
import { parseTemplate, type Template } from "../../../src/templates/parse.js";
import { renderOutput, renderTemplate } from "../../../src/templates/render.js";

const FILE = "/etc/emissary/app.tpl";
const tpl = (src: string): Template => parseTemplate(src, { file: FILE, cwd: "/" });
const text = (t: string): ResolvedValue => ({ kind: "text", text: t });
const bytes = (b: Uint8Array): ResolvedValue => ({ kind: "bytes", bytes: b });
const json = (t: string): ResolvedValue => ({ kind: "object", text: t, data: JSON.parse(t) as Record<string, unknown> });
const KEYTAB = Buffer.from([0x05, 0x02, 0x00, 0x00, 0x00, 0x3c, 0xff, 0xfe, 0x0d, 0x0a, 0xc3, 0x28, 0x00, 0x41, 0x80, 0x20]);

function failure(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error("expected a TemplateError");
}

describe("renderOutput: bytes", () => {
  it.each([["{{k}}"], ["{{{k}}}"], ["{{& k}}"]])("a body that is exactly %s writes the bytes unchanged", (body) => {
    const t = tpl(`---\ndest: /x\nsecrets:\n  k: file:/k\n---\n${body}`);
    const out = renderOutput(t, new Map([["k", bytes(KEYTAB)]]));
    expect(out).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(out as Uint8Array).equals(KEYTAB)).toBe(true);
  });

  it("any bytes at all, through extractValue with encoding: binary, come out byte for byte", () => {
    const t = tpl("---\ndest: /x\nsecrets:\n  k:\n    ref: file:/k\n    encoding: binary\n---\n{{k}}");
    const spec = t.secrets.get("k")!;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (b) => {
        const out = renderOutput(t, new Map([["k", extractValue(spec, { value: Buffer.from(b) })]]));
        expect(Buffer.from(typeof out === "string" ? Buffer.from(out, "utf8") : out).equals(Buffer.from(b))).toBe(true);
      }),
    );
  });

  it("bytes inside other text are an error naming the secret and reference — never U+FFFD", () => {
    for (const body of ["{{k}}\n", "key={{k}}", "{{{k}}} ", "{{#k}}{{.}}{{/k}}"]) {
      const t = tpl(`---\ndest: /x\nsecrets:\n  k: file:/etc/krb5.keytab\n---\n${body}`);
      const err = failure(() => renderOutput(t, new Map([["k", bytes(KEYTAB)]])));
      expect(err.message).toContain('secret "k" (file:/etc/krb5.keytab) is not UTF-8 text');
      expect(err.message).toContain("not even a final newline");
      expect(err.file).toBe(FILE);
    }
  });

  it("a section only tests that binary bytes are there; an inverted one that they are not", () => {
    const t = tpl("---\ndest: /x\nsecrets:\n  k: file:/k\n---\n{{#k}}have keytab{{/k}}{{^k}}none{{/k}}\n");
    expect(renderOutput(t, new Map([["k", bytes(KEYTAB)]]))).toBe("have keytab\n");
  });

  it("a whole-body {{name}} with an escape mode cannot escape bytes: an error (use {{{name}}})", () => {
    const t = tpl("---\ndest: /x\nescape: json\nsecrets:\n  k: file:/k\n---\n{{k}}");
    expect(failure(() => renderOutput(t, new Map([["k", bytes(KEYTAB)]]))).message).toMatch(/cannot be escaped \(escape: json\); use \{\{\{k\}\}\}/);
    const raw = tpl("---\ndest: /x\nescape: json\nsecrets:\n  k: file:/k\n---\n{{{k}}}");
    expect(Buffer.from(renderOutput(raw, new Map([["k", bytes(KEYTAB)]])) as Uint8Array).equals(KEYTAB)).toBe(true);
  });

  it("renderTemplate (text only) refuses the binary whole-body case instead of re-encoding it", () => {
    const t = tpl("---\ndest: /x\nsecrets:\n  k: file:/k\n---\n{{k}}");
    expect(failure(() => renderTemplate(t, new Map([["k", bytes(KEYTAB)]]))).message).toMatch(/not UTF-8/);
  });

  it("an unpaired surrogate (from a JSON \\uD800 escape) has no UTF-8 form: an error, not U+FFFD", () => {
    const t = tpl("---\ndest: /x\nsecrets:\n  j: file:/j.json\n---\n{{j.s}}\n");
    const err = failure(() => renderOutput(t, new Map([["j", json('{"s":"a\\ud800b"}')]])));
    expect(err.message).toMatch(/unpaired UTF-16 surrogate/);
  });
});

describe("renderOutput: a secret's own escape mode", () => {
  const src = (body: string, extra = "", secret = "escape: shell"): Template =>
    tpl(`---\ndest: /x\n${extra}secrets:\n  s:\n    ref: env:S\n    ${secret}\n  t: env:T\n---\n${body}`);

  it("wins over the template's for {{name}}; {{{name}}} and {{&name}} stay raw; other secrets keep the template's", () => {
    const t = src("{{s}} {{{s}}} {{&s}} {{t}}", "escape: json\n");
    expect(renderTemplate(t, new Map([["s", text("it's")], ["t", text('a"b')]]))).toBe("'it'\\''s' it's it's a\\\"b");
  });

  it("applies to section items and to the fields of a JSON object, whole or nested", () => {
    const t = src('{{#s}}[{{.}}]{{/s}} {{s.user}} {{#s}}{{user}}{{/s}} {{s.list}} {{s}} {{#s.list}}<{{.}}>{{/s.list}}', "", "escape: hcl");
    const v = json('{"user":"a\\"${b}","list":["x\\"",1]}');
    const out = renderTemplate(t, new Map([["s", v], ["t", text("t")]]));
    expect(out).toBe(
      [
        '[{\\"user\\":\\"a\\\\\\"\\u0024{b}\\",\\"list\\":[\\"x\\\\\\"\\",1]}]',
        'a\\"\\u0024{b}',
        'a\\"\\u0024{b}',
        '[\\"x\\\\\\"\\",1]',
        '{\\"user\\":\\"a\\\\\\"\\u0024{b}\\",\\"list\\":[\\"x\\\\\\"\\",1]}',
        '<x\\"><1>',
      ].join(" "),
    );
  });

  it("keeps falsy values falsy in sections and inverted sections, and still escapes them", () => {
    const t = src("[{{s}}]{{#s}}yes{{/s}}{{^s}}no{{/s}}");
    // An empty default: falsy, but as a shell word it is still the empty word ''.
    expect(renderTemplate(t, new Map([["s", text("")], ["t", text("")]]))).toBe("['']no");
    expect(renderTemplate(t, new Map([["s", text("v")], ["t", text("")]]))).toBe("['v']yes");
    const obj = src("{{#s.off}}on{{/s.off}}{{^s.off}}off{{/s.off}} {{#s.zero}}z{{/s.zero}}{{^s.zero}}nz{{/s.zero}} {{#s.n}}n{{/s.n}}{{^s.n}}null{{/s.n}} {{#s.list}}{{.}}{{/s.list}}");
    expect(renderTemplate(obj, new Map([["s", json('{"off":false,"zero":0,"n":null,"list":[0,false,"x"]}')], ["t", text("")]]))).toBe("off nz null '0''false''x'");
  });

  it("a section over another secret inside this one's section uses that secret's mode", () => {
    const t = src("{{#s}}{{t}}|{{.}}{{/s}}", "escape: json\n");
    expect(renderTemplate(t, new Map([["s", text("'")], ["t", text('"')]]))).toBe("\\\"|''\\'''");
  });
});

describe("check: modes, encodings and decodings are validated at load", () => {
  const load = (secret: string, extra = ""): TemplateError =>
    failure(() => tpl(`---\ndest: /x\n${extra}secrets:\n  s:\n    ref: env:S\n    ${secret}\n---\n{{s}}\n`));

  it("an unknown per-secret escape names the field, the line and the accepted modes", () => {
    const err = load("escape: xml");
    expect(err.field).toBe("secrets.s.escape");
    expect(err.line).toBe(6);
    expect(err.message).toContain("must be one of none, json, html, hcl, yaml, toml, shell");
    expect(err.message).toContain('"xml"');
  });

  it("an unknown template escape, encoding or decode is rejected the same way", () => {
    const t = failure(() => tpl("---\ndest: /x\nescape: sql\n---\nx\n"));
    expect(t.field).toBe("escape");
    expect(t.line).toBe(3);
    expect(t.message).toContain("none, json, html, hcl, yaml, toml, shell");
    const enc = load("encoding: hex");
    expect(enc.field).toBe("secrets.s.encoding");
    expect(enc.message).toContain("must be one of utf8, binary, base64");
    const dec = load("decode: hex");
    expect(dec.field).toBe("secrets.s.decode");
    expect(dec.message).toContain("must be one of base64");
  });

  it("the long form's encoding, decode and escape reach the reference, not the backend's options", () => {
    const t = tpl("---\ndest: /x\nsecrets:\n  s:\n    ref: awssm:k\n    encoding: binary\n    decode: base64\n    escape: toml\n---\n{{s}}\n");
    const spec = t.secrets.get("s")!;
    expect(spec).toMatchObject({ encoding: "binary", decode: "base64", escape: "toml" });
    expect(spec.ref.options).toEqual({});
    expect(parseRef("awssm:k", { encoding: "base64" }).encoding).toBe("base64");
  });
});
