/**
 * Rendering: pure functions of (template, resolved values). Nothing is cached per render and
 * nothing is logged; errors name templates and secret names, never values.
 */
import Mustache from "mustache";
import { TemplateError } from "../api/errors.js";
import type { ResolvedValue } from "../api/refs.js";
import type { EscapeMode } from "./front-matter.js";
import type { Template } from "./parse.js";

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "/": "&#x2F;",
  "`": "&#x60;",
  "=": "&#x3D;",
};

/** mustache.js's default HTML escape, copied so that nobody's change to `Mustache.escape` affects us. */
function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`=/]/g, (c) => HTML_ENTITIES[c]!);
}

const ESCAPERS: Readonly<Record<EscapeMode, (value: unknown) => string>> = {
  none: (value) => String(value),
  // For use inside a JSON string literal: the JSON encoding minus its surrounding quotes.
  json: (value) => JSON.stringify(String(value)).slice(1, -1),
  html: escapeHtml,
};

/**
 * mustache.js, except that a JSON `null` interpolates as `null` (its JSON text), as `false` and
 * `0` do, instead of the empty string: a value that is there renders as what it is. Sections are
 * untouched: `false`, `null`, `0` and `[]` are falsy there, as mustache treats those JSON values.
 */
class JsonWriter extends Mustache.Writer {
  override escapedValue(token: string[], context: Mustache.Context, config?: Mustache.RenderOptions): string {
    if (context.lookup(token[1]!) === null) return config?.escape ? config.escape("null") : "null";
    return super.escapedValue(token, context, config);
  }
  override unescapedValue(token: string[], context: Mustache.Context): string {
    if (context.lookup(token[1]!) === null) return "null";
    return super.unescapedValue(token, context);
  }
}

// renderTokens never touches the Writer's template cache, so one Writer serves every render.
const writer = new JsonWriter();

/**
 * Names the template uses that have no value yet, in declaration order. A template renders only
 * when this is empty. Declared names the body never uses are not waited for.
 */
export function missingNames(t: Template, values: ReadonlyMap<string, ResolvedValue>): string[] {
  const missing: string[] = [];
  for (const name of t.secrets.keys()) if (t.used.has(name) && !values.has(name)) missing.push(name);
  return missing;
}

/**
 * Renders a template's body with resolved values.
 *
 * A text value renders as itself. A JSON object value renders whole as its original text
 * (`{{tls}}`), by field (`{{tls.ca}}`), or as a section (`{{#tls}}…{{/tls}}`); a nested object or
 * array renders as its JSON. JSON types are kept: a `#field` or nested name whose value is
 * `false`, `null`, `0` or `[]` is falsy in a section and an inverted section, and interpolates as
 * its JSON text (`false`, `null`, `0`, `[]`). `{{name}}` is escaped per {@link Template.escape}; `{{{name}}}` and
 * `{{&name}}` never are.
 *
 * @throws {@link TemplateError} when a used name has no value (call {@link missingNames} first);
 *   the message lists names only.
 */
export function renderTemplate(t: Template, values: ReadonlyMap<string, ResolvedValue>): string {
  const missing = missingNames(t, values);
  if (missing.length > 0) {
    throw new TemplateError(`not ready: no value yet for ${missing.join(", ")}`, { file: t.file });
  }
  const view: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const name of t.secrets.keys()) {
    const v = values.get(name);
    if (v !== undefined) view[name] = toView(v);
  }
  const context = new Mustache.Context(view);
  return writer.renderTokens(t.tokens as string[][], context, undefined, t.bodySource, { escape: ESCAPERS[t.escape] });
}

function toView(v: ResolvedValue): unknown {
  if (v.kind === "text") return v.text;
  // JSON scalars keep their type: `{{#enabled}}` is falsy for false, and `{{enabled}}` renders "false".
  if (v.kind === "json") return v.data;
  return copy(v.data, v.text, new Set());
}

/**
 * A copy of JSON-like data in which every object and array carries a non-enumerable `toString`:
 * the top level returns the secret's original text, nested ones their JSON. Objects have no
 * prototype, so names like `constructor` are only ever the secret's own keys.
 */
function copy(data: unknown, text: string | undefined, path: Set<object>): unknown {
  if (data instanceof Date) return data.toISOString();
  if (data === null || typeof data !== "object") return data;
  if (path.has(data)) return undefined; // a cycle (possible in YAML-parsed data): cut it
  path.add(data);
  let out: Record<string, unknown> | unknown[];
  if (Array.isArray(data)) {
    out = data.map((item) => copy(item, undefined, path));
  } else {
    const obj = Object.create(null) as Record<string, unknown>;
    for (const [k, val] of Object.entries(data)) obj[k] = copy(val, undefined, path);
    out = obj;
  }
  path.delete(data);
  const toString = text !== undefined ? () => text : () => safeJson(data);
  Object.defineProperty(out, "toString", { value: toString, enumerable: false, writable: false, configurable: false });
  return out;
}

function safeJson(data: unknown): string {
  try {
    return JSON.stringify(data) ?? "";
  } catch {
    return ""; // cyclic: there is no faithful text for it
  }
}
