/**
 * JSON types are kept. A `#field` (or a nested name) whose value is `false`, `null`, `0` or `[]`
 * is falsy in a section and in an inverted section, as mustache treats that JSON value, and
 * `{{name}}` interpolates it as its JSON text. The cases are the mustache spec's (sections.yml,
 * inverted.yml, interpolation.yml) with the spec's data as the JSON text of a secret, taken both
 * by `#field` and as a nested name of the whole object.
 */
import { describe, expect, it } from "vitest";
import { extractValue, parseRef, type ResolvedValue } from "../../../src/api/refs.js";
import { parseTemplate } from "../../../src/templates/parse.js";
import { renderTemplate } from "../../../src/templates/render.js";

interface Case {
  readonly name: string;
  /** The secret's JSON object. */
  readonly data: Record<string, unknown>;
  /** The body, with `K` standing for the key being tested. */
  readonly body: string;
  readonly key: string;
  readonly expected: string;
}

const CASES: readonly Case[] = [
  // sections.yml
  { name: "section: truthy", data: { boolean: true }, key: "boolean", body: '"{{#K}}This should be rendered.{{/K}}"', expected: '"This should be rendered."' },
  { name: "section: falsey", data: { boolean: false }, key: "boolean", body: '"{{#K}}This should not be rendered.{{/K}}"', expected: '""' },
  { name: "section: null is falsey", data: { null: null }, key: "null", body: '"{{#K}}This should not be rendered.{{/K}}"', expected: '""' },
  { name: "section: zero is falsey (JavaScript's and mustache.js's rule)", data: { n: 0 }, key: "n", body: '"{{#K}}This should not be rendered.{{/K}}"', expected: '""' },
  { name: "section: context", data: { context: { name: "Joe" } }, key: "context", body: '"{{#K}}Hi {{name}}.{{/K}}"', expected: '"Hi Joe."' },
  { name: "section: list", data: { list: [{ item: 1 }, { item: 2 }, { item: 3 }] }, key: "list", body: '"{{#K}}{{item}}{{/K}}"', expected: '"123"' },
  { name: "section: empty list", data: { list: [] }, key: "list", body: '"{{#K}}Yay lists!{{/K}}"', expected: '""' },
  { name: "section: implicit iterator, integers", data: { list: [1, 2, 3, 4, 5] }, key: "list", body: '"{{#K}}({{.}}){{/K}}"', expected: '"(1)(2)(3)(4)(5)"' },
  { name: "section: implicit iterator, booleans", data: { list: [true, false] }, key: "list", body: '"{{#K}}({{.}}){{/K}}"', expected: '"(true)(false)"' },
  { name: "section: non-zero number is truthy", data: { n: 8080 }, key: "n", body: '"{{#K}}port {{.}}{{/K}}"', expected: '"port 8080"' },
  // inverted.yml
  { name: "inverted: falsey", data: { boolean: false }, key: "boolean", body: '"{{^K}}This should be rendered.{{/K}}"', expected: '"This should be rendered."' },
  { name: "inverted: truthy", data: { boolean: true }, key: "boolean", body: '"{{^K}}This should not be rendered.{{/K}}"', expected: '""' },
  { name: "inverted: null is falsey", data: { null: null }, key: "null", body: '"{{^K}}This should be rendered.{{/K}}"', expected: '"This should be rendered."' },
  { name: "inverted: zero is falsey", data: { n: 0 }, key: "n", body: '"{{^K}}none{{/K}}"', expected: '"none"' },
  { name: "inverted: context", data: { context: { name: "Joe" } }, key: "context", body: '"{{^K}}Hi {{name}}.{{/K}}"', expected: '""' },
  { name: "inverted: list", data: { list: [{ n: 1 }, { n: 2 }, { n: 3 }] }, key: "list", body: '"{{^K}}{{n}}{{/K}}"', expected: '""' },
  { name: "inverted: empty list", data: { list: [] }, key: "list", body: '"{{^K}}Yay lists!{{/K}}"', expected: '"Yay lists!"' },
  // interpolation: the JSON text
  { name: "interpolation: false", data: { boolean: false }, key: "boolean", body: "{{K}} {{{K}}} {{&K}}", expected: "false false false" },
  { name: "interpolation: true", data: { boolean: true }, key: "boolean", body: "{{K}}", expected: "true" },
  { name: "interpolation: zero", data: { n: 0 }, key: "n", body: "{{K}} {{{K}}}", expected: "0 0" },
  { name: "interpolation: decimal", data: { n: 1.21 }, key: "n", body: "{{K}}", expected: "1.21" },
  { name: "interpolation: null", data: { null: null }, key: "null", body: "{{K}} {{{K}}}", expected: "null null" },
  { name: "interpolation: empty list", data: { list: [] }, key: "list", body: "{{K}}", expected: "[]" },
];

/** Renders `body` with the secret `v` declared as `ref`, whose stored text is `json`. */
function renderWith(ref: string, json: string, body: string, escape?: string): string {
  const t = parseTemplate(`---\ndest: /run/out\n${escape ? `escape: ${escape}\n` : ""}secrets:\n  v: "${ref}"\n---\n${body}`, { file: "/etc/emissary/t.tpl", cwd: "/" });
  const value: ResolvedValue = extractValue(t.secrets.get("v")!, { value: json });
  return renderTemplate(t, new Map([["v", value]]));
}

describe("JSON values keep their type in sections and interpolation", () => {
  for (const c of CASES) {
    it(`${c.name}: by #field`, () => {
      expect(renderWith(`file:s.json#${c.key}`, JSON.stringify(c.data), c.body.replaceAll("K", "v"))).toBe(c.expected);
    });
    it(`${c.name}: as a nested name`, () => {
      expect(renderWith("file:s.json", JSON.stringify(c.data), c.body.replaceAll("K", `v.${c.key}`))).toBe(c.expected);
    });
  }

  it("dotted names (sections.yml and inverted.yml): truthy and falsey", () => {
    const yes = JSON.stringify({ a: { b: { c: true } } });
    const no = JSON.stringify({ a: { b: { c: false } } });
    expect(renderWith("file:s.json#a", yes, '"{{#v.b.c}}Here{{/v.b.c}}" == "Here"')).toBe('"Here" == "Here"');
    expect(renderWith("file:s.json#a", no, '"{{#v.b.c}}Here{{/v.b.c}}" == ""')).toBe('"" == ""');
    expect(renderWith("file:s.json#a", no, '"{{^v.b.c}}Not Here{{/v.b.c}}" == "Not Here"')).toBe('"Not Here" == "Not Here"');
    expect(renderWith("file:s.json#a", yes, '"{{^v.b.c}}Not Here{{/v.b.c}}" == ""')).toBe('"" == ""');
    expect(renderWith("file:s.json#/a/b/c", no, "{{#v}}on{{/v}}{{^v}}off{{/v}} {{v}}")).toBe("off false");
  });

  it("a JSON null field is a value, not a missing field; an absent field still waits", () => {
    expect(extractValue(parseRef("file:s.json#x"), { value: '{"x": null}' })).toEqual({ kind: "json", text: "null", data: null });
    expect(() => extractValue(parseRef("file:s.json#y"), { value: '{"x": null}' })).toThrow(/field "y" is not in the secret/);
  });

  it("a JSON string \"false\" stays text and is truthy, as in mustache", () => {
    expect(renderWith("file:s.json#s", JSON.stringify({ s: "false" }), "{{#v}}ON{{/v}}{{^v}}OFF{{/v}}")).toBe("ON");
  });

  it("escape: json and html apply to the JSON text of scalars", () => {
    expect(renderWith("file:s.json#n", JSON.stringify({ n: null }), '"{{v}}"', "json")).toBe('"null"');
    expect(renderWith("file:s.json#b", JSON.stringify({ b: false }), "{{v}}", "html")).toBe("false");
  });
});
