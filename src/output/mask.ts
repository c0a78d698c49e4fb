/**
 * Masking secret values out of what a reload command printed, before its output tail is logged.
 * A command that echoes its config (`nginx -t`, a failing `consul reload` quoting the file) may
 * print a secret; the log line must not carry it at any level.
 * @module
 */
import type { ResolvedValue } from "../api/refs.js";

/** What a masked value is replaced by. */
export const MASK = "[redacted]";

/**
 * Values shorter than this are not replaced where they occur (a secret `0` or `on` would mask
 * ordinary text): an output that contains one is withheld whole instead.
 */
export const MIN_MASK_LENGTH = 4;

/**
 * The texts of a resolved value a command could print: the value itself, and every string and
 * number leaf of a JSON object (leaves shorter than {@link MIN_MASK_LENGTH} are structure, such as
 * a port `1`, not secrets). `true`, `false` and `null` are not secret material.
 */
export function valueTexts(v: ResolvedValue): string[] {
  if (v.kind === "bytes") return bytesTexts(v.bytes);
  if (v.kind === "json" && typeof v.data !== "number") return [];
  const out = [v.text];
  if (v.kind === "object") collectLeaves(v.data, out, new Set());
  return out;
}

/**
 * Bytes as a command's output tail can show them: decoded as UTF-8 the way the tail is (invalid
 * sequences become U+FFFD), and as hex. (Their base64 forms are added by {@link secretForms}.)
 */
function bytesTexts(bytes: Uint8Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [buf.toString("utf8"), buf.toString("hex"), buf.toString("base64")].filter((t) => t !== "");
}

function collectLeaves(data: unknown, out: string[], seen: Set<object>): void {
  const leaf = (s: string): void => {
    if (s.length >= MIN_MASK_LENGTH) out.push(s);
  };
  if (typeof data === "string") {
    leaf(data);
    leaf(data.trim());
  } else if (typeof data === "number") leaf(String(data));
  else if (data !== null && typeof data === "object" && !seen.has(data)) {
    seen.add(data);
    for (const item of Object.values(data)) collectLeaves(item, out, seen);
  }
}

/**
 * The texts of a fetched secret, as the store holds it: the value (and trimmed), and the string
 * and number leaves of its JSON (or parsed YAML) data — every field a template could take from it.
 * Texts shorter than {@link MIN_MASK_LENGTH} are left out (they are only masked, never withheld).
 */
export function storedTexts(secret: { readonly value: string | Uint8Array; readonly data?: unknown }): string[] {
  if (typeof secret.value !== "string") return bytesTexts(secret.value).filter((t) => t.length >= MIN_MASK_LENGTH);
  const out: string[] = [];
  for (const t of [secret.value, secret.value.trim()]) if (t.length >= MIN_MASK_LENGTH) out.push(t);
  let data = secret.data;
  const v = secret.value.trim();
  if (data === undefined && (v.startsWith("{") || v.startsWith("["))) {
    try {
      data = JSON.parse(v);
    } catch {
      data = undefined;
    }
  }
  if (data !== null && typeof data === "object") collectLeaves(data, out, new Set());
  return out;
}

const HTML: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "/": "&#x2F;", "`": "&#x60;", "=": "&#x3D;" };

/**
 * Every form in which a value may show up in output: as it is, base64 (standard and URL-safe,
 * with and without padding), JSON-escaped (as inside a JSON string), HTML-escaped, and with
 * CRLF line ends. Longest first, so that a value containing another is masked whole.
 */
export function secretForms(values: Iterable<string>): string[] {
  const forms = new Set<string>();
  for (const v of values) {
    if (v === "") continue;
    const b64 = Buffer.from(v, "utf8").toString("base64");
    const b64url = Buffer.from(v, "utf8").toString("base64url");
    for (const f of [v, b64, b64.replace(/=+$/, ""), b64url, JSON.stringify(v).slice(1, -1), v.replace(/[&<>"'`=/]/g, (c) => HTML[c]!), v.replace(/\r?\n/g, "\r\n")]) {
      if (f !== "") forms.add(f);
    }
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * Replaces every occurrence of every form by {@link MASK}. The text is a tail: it may begin in the
 * middle of a secret, so a beginning that is the end of a form is masked too. When a form shorter
 * than {@link MIN_MASK_LENGTH} occurs, the whole text is withheld.
 */
export function maskOutput(text: string, forms: readonly string[]): string {
  let out = text;
  for (const f of forms) {
    if (f.length < MIN_MASK_LENGTH) continue;
    if (out.includes(f)) out = out.split(f).join(MASK);
  }
  // The tail may start inside a secret: mask a beginning that is the end of one.
  for (const f of forms) {
    if (f.length < MIN_MASK_LENGTH) continue;
    for (let n = Math.min(f.length - 1, out.length); n >= MIN_MASK_LENGTH; n--) {
      if (out.startsWith(f.slice(f.length - n))) {
        out = MASK + out.slice(n);
        break;
      }
    }
  }
  for (const f of forms) {
    if (f.length < MIN_MASK_LENGTH && out.includes(f)) return `[output withheld: it contains a value of a secret shorter than ${MIN_MASK_LENGTH} characters]`;
  }
  return out;
}
