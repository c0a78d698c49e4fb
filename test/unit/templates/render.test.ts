import { describe, expect, it } from "vitest";
import fc from "fast-check";
import Mustache from "mustache";
import { TemplateError } from "../../../src/api/errors.js";
import type { ResolvedValue } from "../../../src/api/refs.js";
import { parseTemplate, type Template } from "../../../src/templates/parse.js";
import { missingNames, renderTemplate } from "../../../src/templates/render.js";
import { canary } from "../../helpers/canary.js";

const FILE = "/etc/emissary/app.tpl";

function template(secrets: Record<string, string>, body: string, extra = ""): Template {
  const lines = Object.entries(secrets).map(([k, v]) => `  ${k}: ${v}`);
  const fm = `dest: /run/out.conf\n${extra}${lines.length ? `secrets:\n${lines.join("\n")}\n` : ""}`;
  return parseTemplate(`---\n${fm}---\n${body}`, { file: FILE, cwd: "/" });
}

const text = (t: string): ResolvedValue => ({ kind: "text", text: t });
const json = (t: string): ResolvedValue => ({ kind: "object", text: t, data: JSON.parse(t) as Record<string, unknown> });

function render(t: Template, values: Record<string, ResolvedValue>): string {
  return renderTemplate(t, new Map(Object.entries(values)));
}

describe("renderTemplate: text values", () => {
  const t = template({ v: "env:V" }, 'value = "{{v}}"\nraw = {{{v}}} {{&v}}\n');

  it.each([
    ["quotes", `it's "quoted" & <tagged>`],
    ["newlines", "line1\nline2\r\nline3\n"],
    ["unicode", "Grüße — 日本語 — 🔐 — \u2028"],
    ["mustache-looking text (values are not re-rendered)", "{{v}} {{#x}}{{/x}} {{> p}}"],
    ["replacement patterns", "$1 $& $$ $` $'"],
    ["backslashes and control characters", "a\\b\u0000\u0007\t"],
  ])("renders %s verbatim, with no HTML escaping by default", (_label, value) => {
    expect(render(t, { v: text(value) })).toBe(`value = "${value}"\nraw = ${value} ${value}\n`);
  });

  it("renders a legacy poll", () => {
    const legacy = parseTemplate('---\ndest: /x\n---\nencrypt = "{{poll "insecure" "consul_key"}}"\n', { file: FILE, cwd: "/" });
    expect(render(legacy, { __poll_1: text("k3y==") })).toBe('encrypt = "k3y=="\n');
  });

  it("renders text that is used as a section once, and skips an inverted section", () => {
    const s = template({ v: "env:V" }, "{{#v}}[{{v}}]{{/v}}{{^v}}none{{/v}}");
    expect(render(s, { v: text("x") })).toBe("[x]");
    expect(render(s, { v: text("") })).toBe("none");
  });
});

describe("renderTemplate: escape modes", () => {
  const nasty = `a"b\\c\nd\te\u0001f </script> & 'q' é 🔐`;

  it("escape: json produces a valid JSON string body that decodes to the value", () => {
    const t = template({ v: "env:V" }, '{"v": "{{v}}", "raw": {{{v}}}}', "escape: json\n");
    const out = render(t, { v: text(nasty) }).replace(/, "raw": .*$/s, "}");
    expect((JSON.parse(out) as { v: string }).v).toBe(nasty);
    // Triple mustache is never escaped.
    expect(render(t, { v: text("<&>") })).toBe('{"v": "<&>", "raw": <&>}');
  });

  it("escape: json round-trips any string", () => {
    const t = template({ v: "env:V" }, '{"v": "{{v}}"}', "escape: json\n");
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        expect((JSON.parse(render(t, { v: text(s) })) as { v: string }).v).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it("escape: html is mustache's default escaping, and ignores changes to Mustache.escape", () => {
    const t = template({ v: "env:V" }, "<p>{{v}}</p>{{{v}}}", "escape: html\n");
    const value = `<a href="x" onclick='y'>&=\`/</a>`;
    const want = `<p>&lt;a href&#x3D;&quot;x&quot; onclick&#x3D;&#39;y&#39;&gt;&amp;&#x3D;&#x60;&#x2F;&lt;&#x2F;a&gt;</p>${value}`;
    expect(render(t, { v: text(value) })).toBe(want);
    expect(render(t, { v: text(value) })).toBe(`<p>${Mustache.escape(value)}</p>${value}`);
    const saved = Mustache.escape;
    try {
      Mustache.escape = (s: string) => s.toUpperCase();
      expect(render(t, { v: text(value) })).toBe(want);
    } finally {
      Mustache.escape = saved;
    }
  });

  it("escape: none (the default) leaves everything alone", () => {
    const t = template({ v: "env:V" }, "{{v}}", "escape: none\n");
    expect(render(t, { v: text(nasty) })).toBe(nasty);
  });

  it("escapes object fields and whole objects too", () => {
    const t = template({ o: "env:O" }, "{{o}}|{{o.k}}", "escape: json\n");
    expect(render(t, { o: json('{"k": "a\\"b"}') })).toBe('{\\"k\\": \\"a\\\\\\"b\\"}|a\\"b');
  });
});

describe("renderTemplate: JSON object values", () => {
  const tlsText = `{
  "ca": "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----",
  "port": 8443, "enabled": true, "none": null,
  "nested": {"a": {"b": "deep"}, "list": [1, "two"]},
  "servers": [{"host": "a", "port": 1}, {"host": "b", "port": 2}],
  "dotted.key": "d"
}`;
  const tls = json(tlsText);

  it("renders the whole object as its original text", () => {
    expect(render(template({ tls: "awssm:tls" }, "{{tls}}"), { tls })).toBe(tlsText);
    expect(render(template({ tls: "awssm:tls" }, "{{{tls}}}"), { tls })).toBe(tlsText);
  });

  it("renders fields, nested fields, numbers and booleans", () => {
    const t = template({ tls: "awssm:tls" }, "{{tls.ca}}|{{tls.port}}|{{tls.enabled}}|{{tls.none}}|{{tls.nested.a.b}}|{{tls.nested.list.1}}");
    // JSON null renders as its JSON text, like false and 0 (SPEC: JSON types are kept).
    expect(render(t, { tls })).toBe("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----|8443|true|null|deep|two");
  });

  it("renders nested objects and arrays as JSON", () => {
    const t = template({ tls: "awssm:tls" }, "{{tls.nested.a}}|{{tls.nested.list}}|{{tls.nested}}");
    expect(render(t, { tls })).toBe('{"b":"deep"}|[1,"two"]|{"a":{"b":"deep"},"list":[1,"two"]}');
  });

  it("works as a section, over objects and arrays", () => {
    const t = template(
      { tls: "awssm:tls" },
      "{{#tls}}\nca={{ca}}\nport={{port}}\n{{/tls}}\n{{#tls.servers}}\n- {{host}}:{{port}}\n{{/tls.servers}}\n{{#tls.nested.list}}[{{.}}]{{/tls.nested.list}}\n{{^tls.missing}}no missing{{/tls.missing}}\n",
    );
    expect(render(t, { tls })).toBe(
      "ca=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nport=8443\n- a:1\n- b:2\n[1][two]\nno missing\n",
    );
  });

  it("renders a top-level array whole, and iterates it", () => {
    const list: ResolvedValue = { kind: "object", text: '[ "x", "y" ]', data: ["x", "y"] };
    expect(render(template({ l: "env:L" }, "{{l}} {{#l}}<{{.}}>{{/l}}"), { l: list })).toBe('[ "x", "y" ] <x><y>');
  });

  it("treats prototype-looking keys as plain data and pollutes nothing", () => {
    const data = JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": "c", "hasOwnProperty": "h"}') as Record<string, unknown>;
    const t = template({ o: "env:O" }, "{{o.__proto__.polluted}}|{{o.constructor}}|{{o.hasOwnProperty}}|{{o.toString}}|{{#o}}{{valueOf}}{{/o}}");
    const out = render(t, { o: { kind: "object", text: "TEXT", data } });
    expect(out).toBe("yes|c|h|TEXT|");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("never changes the values it is given (frozen data renders fine)", () => {
    const deepFreeze = (o: unknown): unknown => {
      if (o && typeof o === "object") {
        for (const v of Object.values(o)) deepFreeze(v);
        Object.freeze(o);
      }
      return o;
    };
    const data = deepFreeze(JSON.parse(tlsText)) as Record<string, unknown>;
    const before = JSON.stringify(data);
    const t = template({ tls: "awssm:tls" }, "{{tls}}{{tls.nested}}{{#tls.servers}}{{host}}{{/tls.servers}}");
    const out = render(t, { tls: { kind: "object", text: tlsText, data } });
    expect(out.startsWith(tlsText)).toBe(true);
    expect(JSON.stringify(data)).toBe(before);
    expect(Object.getOwnPropertyNames(data)).not.toContain("toString");
  });

  it("renders data parsed from YAML (dates, shared sub-objects)", () => {
    const shared = { k: "v" };
    const data = { when: new Date("2024-01-02T03:04:05Z"), a: shared, b: shared };
    const out = render(template({ y: "file:y.yaml" }, "{{y.when}} {{y.a.k}} {{y.b}}"), { y: { kind: "object", text: "yaml text", data } });
    expect(out).toBe('2024-01-02T03:04:05.000Z v {"k":"v"}');
  });
});

describe("missingNames and readiness", () => {
  const t = template({ b: "env:B", unused: "env:UNUSED", a: "env:A" }, '{{a}} {{#b}}{{/b}} {{poll "env" "P"}}');

  it("lists used names without a value, in declaration order, polls last", () => {
    expect(missingNames(t, new Map())).toEqual(["b", "a", "__poll_1"]);
    expect(missingNames(t, new Map([["a", text("1")]]))).toEqual(["b", "__poll_1"]);
    expect(missingNames(t, new Map([["a", text("1")], ["b", text("2")], ["__poll_1", text("3")]]))).toEqual([]);
  });

  it("does not wait for declared names the body never uses", () => {
    expect(missingNames(t, new Map())).not.toContain("unused");
    expect(render(t, { a: text("1"), b: text("2"), __poll_1: text("3") })).toBe("1  3");
  });

  it("refuses to render when a used name is missing, naming names but no values", () => {
    const secret = canary("value");
    let err: unknown;
    try {
      render(t, { a: text(secret) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateError);
    const te = err as TemplateError;
    expect(te.message).toContain("b, __poll_1");
    expect(te.file).toBe(FILE);
    expect(te.message).not.toContain("CANARY");
    expect(JSON.stringify(te)).not.toContain("CANARY");
  });
});

describe("renderTemplate: purity and size", () => {
  it("renders the same output every time and keeps nothing between renders", () => {
    const t = template({ a: "env:A" }, "<{{a}}>");
    expect(render(t, { a: text("1") })).toBe("<1>");
    expect(render(t, { a: text("2") })).toBe("<2>");
    expect(render(t, { a: text("1") })).toBe("<1>");
  });

  it("keeps mustache's standalone-line rules (section tags on their own lines leave no blank lines)", () => {
    const t = template({ a: "env:A" }, "begin\n{{#a}}\n  value={{a}}\n{{/a}}\nend\n");
    expect(render(t, { a: text("x") })).toBe("begin\n  value=x\nend\n");
  });

  it("renders a 10,000-line template", () => {
    const body = Array.from({ length: 10_000 }, (_, i) => `k${i} = "{{a}}" {{o.f}}`).join("\n");
    const t = template({ a: "env:A", o: "env:O" }, body);
    const out = render(t, { a: text("v"), o: json('{"f": 1}') });
    const lines = out.split("\n");
    expect(lines).toHaveLength(10_000);
    expect(lines[9_999]).toBe('k9999 = "v" 1');
  });
});
