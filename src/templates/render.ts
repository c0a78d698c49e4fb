/**
 * Rendering: pure functions of (template, resolved values). Nothing is cached per render and
 * nothing is logged; errors name templates and secret names, never values.
 */
import Mustache from "mustache";
import { TemplateError } from "../api/errors.js";
import type { ResolvedValue } from "../api/refs.js";
import { EscapeError } from "./escape.js";
import { EmissaryWriter, RenderView, withView } from "./escaped-view.js";
import type { Template } from "./parse.js";

// renderTokens never touches the Writer's template cache, so one Writer serves every render.
const writer = new EmissaryWriter();

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
 * Renders a template's body with resolved values, as text.
 *
 * A text value renders as itself. A JSON object value renders whole as its original text
 * (`{{tls}}`), by field (`{{tls.ca}}`), or as a section (`{{#tls}}…{{/tls}}`); a nested object or
 * array renders as its JSON. JSON types are kept: a `#field` or nested name whose value is
 * `false`, `null`, `0` or `[]` is falsy in a section and an inverted section, and interpolates as
 * its JSON text (`false`, `null`, `0`, `[]`). `{{name}}` is escaped per the secret's own
 * `escape:`, else per {@link Template.escape}; `{{{name}}}` and `{{&name}}` never are.
 *
 * @throws {@link TemplateError} when a used name has no value (call {@link missingNames} first),
 *   when a value that is not UTF-8 text is used (see {@link renderOutput}), or when a value cannot
 *   be escaped; the message names secrets and references only.
 */
export function renderTemplate(t: Template, values: ReadonlyMap<string, ResolvedValue>): string {
  const out = renderOutput(t, values);
  if (typeof out !== "string") throw new TemplateError("the output is bytes that are not UTF-8 text: use renderOutput", { file: t.file });
  return out;
}

/**
 * {@link renderTemplate}, except that a template whose whole body is one tag (`{{name}}`,
 * `{{{name}}}` or `{{&name}}`, no other text, not even a final newline) naming a value that is not
 * UTF-8 text renders as that value's bytes, unchanged. Such a value anywhere else is a
 * {@link TemplateError} naming the secret: bytes are never re-encoded or replaced with U+FFFD.
 */
export function renderOutput(t: Template, values: ReadonlyMap<string, ResolvedValue>): string | Uint8Array {
  const missing = missingNames(t, values);
  if (missing.length > 0) {
    throw new TemplateError(`not ready: no value yet for ${missing.join(", ")}`, { file: t.file });
  }
  const whole = wholeBodyTag(t);
  if (whole) {
    const v = values.get(whole.name);
    if (v?.kind === "bytes") {
      const mode = t.secrets.get(whole.name)?.escape ?? t.escape;
      if (whole.raw || mode === "none") return v.bytes;
      throw new TemplateError(`${describe(t, whole.name)} is not UTF-8 text, so it cannot be escaped (escape: ${mode}); use {{{${whole.name}}}} or escape: none`, { file: t.file });
    }
  }
  const rv = new RenderView(t.escape);
  const view: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, spec] of t.secrets) {
    const v = values.get(name);
    if (v === undefined) continue;
    if (v.kind === "bytes") {
      view[name] = rv.binary(
        `${describe(t, name)} is not UTF-8 text: bytes like these are written only by a template whose whole body is {{${name}}} (no other text, not even a final newline); or give the secret encoding: base64`,
      );
      continue;
    }
    const plain = toView(v);
    view[name] = spec.escape !== undefined ? rv.withMode(plain, spec.escape) : plain;
  }
  const context = new Mustache.Context(view);
  let out: string;
  try {
    out = withView(rv, () => writer.renderTokens(t.tokens as string[][], context, undefined, t.bodySource, { escape: rv.escape }));
  } catch (err) {
    if (err instanceof EscapeError) throw new TemplateError(err.reason, { file: t.file });
    throw err;
  }
  if (LONE_SURROGATE.test(out)) {
    throw new TemplateError("the output holds an unpaired UTF-16 surrogate (a JSON \\uD800-style escape in a secret), which has no UTF-8 form", { file: t.file });
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The one tag a template's whole body consists of, if it is a single `{{name}}`-style tag. */
function wholeBodyTag(t: Template): { name: string; raw: boolean } | undefined {
  if (t.tokens.length !== 1) return undefined;
  const tok = t.tokens[0] as unknown[];
  if ((tok[0] !== "name" && tok[0] !== "&") || typeof tok[1] !== "string") return undefined;
  return { name: tok[1], raw: tok[0] === "&" };
}

/** `secret "keytab" (file:/etc/krb5.keytab)`, or for a legacy poll its reference alone. */
function describe(t: Template, name: string): string {
  const ref = t.secrets.get(name)?.text ?? "";
  return name.startsWith("__poll_") ? `the value of ${ref}` : `secret "${name}" (${ref})`;
}

function toView(v: Exclude<ResolvedValue, { kind: "bytes" }>): unknown {
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
