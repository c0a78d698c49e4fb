/**
 * Output escaping of `{{name}}`: each mode turns a value into text that reads back as exactly
 * that value inside one kind of quoted string (SPEC "Secret references": escaping). Pure
 * functions of the value; an {@link EscapeError} never quotes it.
 * @module
 */
import type { EscapeMode } from "../api/refs.js";

export { ESCAPE_MODES, type EscapeMode } from "../api/refs.js";

/** A value that no string of the mode can hold (a NUL in a shell word). The reason names no value. */
export class EscapeError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "EscapeError";
  }
}

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
function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=/]/g, (c) => HTML_ENTITIES[c]!);
}

const hex4 = (c: string): string => c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
const hex2 = (c: string): string => c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0");

const HCL_NAMED: Readonly<Record<string, string>> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Inside a quoted HCL string, read the same by HCL 2 (Nomad jobs, Terraform) and by the HCL 1
 * parser of Consul, Vault and Nomad agent configuration: `"` `\` and newlines escaped, other
 * control characters as `\uXXXX`, and the `$` of `${` and the `%` of `%{` as `\u0024` and
 * `\u0025`. (HCL 2's own `$${` reads as `$${` in HCL 1, and leaves HCL 1's string open when no
 * `}` follows: its scanner takes `${` anywhere as the start of an interpolation.)
 */
function escapeHcl(s: string): string {
  return s.replace(/["\\\u0000-\u001f\u007f-\u009f]|[$%](?=\{)/g, (c) => HCL_NAMED[c] ?? `\\u${hex4(c)}`);
}

const YAML_NAMED: Readonly<Record<string, string>> = {
  '"': '\\"',
  "\\": "\\\\",
  "\0": "\\0",
  "\x07": "\\a",
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\v": "\\v",
  "\f": "\\f",
  "\r": "\\r",
  "\x1b": "\\e",
  "\x85": "\\N",
  "\u2028": "\\L",
  "\u2029": "\\P",
};

/**
 * Inside a double-quoted YAML scalar: `"` and `\`, and every character YAML does not allow
 * printed (C0 and C1 controls, DEL, the line and paragraph separators that YAML 1.1 reads as
 * line breaks, U+FEFF, U+FFFE, U+FFFF) as YAML's escapes.
 */
function escapeYaml(s: string): string {
  return s.replace(/["\\\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, (c) => {
    const named = YAML_NAMED[c];
    if (named !== undefined) return named;
    return c.charCodeAt(0) <= 0xff ? `\\x${hex2(c)}` : `\\u${hex4(c)}`;
  });
}

const TOML_NAMED: Readonly<Record<string, string>> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" };

/** Inside a TOML basic string (`"…"`): `"` `\` and the control characters TOML forbids there. */
function escapeToml(s: string): string {
  return s.replace(/["\\\u0000-\u001f\u007f]/g, (c) => TOML_NAMED[c] ?? `\\u${hex4(c)}`);
}

/**
 * A single-quoted POSIX shell word, quotes included: `it's` → `'it'\''s'`. Every byte but NUL
 * stands for itself between single quotes; no shell word can hold a NUL.
 */
function escapeShell(s: string): string {
  if (s.includes("\0")) throw new EscapeError("the value holds a NUL character, which no shell word can carry (escape: shell)");
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** The escape function of each mode, applied to a value's text. */
export const ESCAPERS: Readonly<Record<EscapeMode, (text: string) => string>> = {
  none: (s) => s,
  // For use inside a JSON string literal: the JSON encoding minus its surrounding quotes.
  json: (s) => JSON.stringify(s).slice(1, -1),
  html: escapeHtml,
  hcl: escapeHcl,
  yaml: escapeYaml,
  toml: escapeToml,
  shell: escapeShell,
};
