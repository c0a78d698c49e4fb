/**
 * Secret values are bytes end to end: a backend may return text (a `string`) or bytes (a
 * `Uint8Array`, a Buffer included). These helpers convert between the two without ever
 * replacing what is not UTF-8 with U+FFFD, and compare values byte for byte.
 * @packageDocumentation
 */
import { Buffer } from "node:buffer";

/** The literal the original emissary used for "not set yet". */
export const INTENTIONALLY_EMPTY = "intentionally-empty";

/** What {@link Secret.value} may hold: text, or bytes that need not be UTF-8. */
export type SecretValue = string | Uint8Array;

// fatal: invalid UTF-8 is an error, never U+FFFD. ignoreBOM: a leading BOM is kept as U+FEFF, so
// decoding and encoding again gives back the very same bytes.
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The bytes as text when they are valid UTF-8 (re-encoding the result gives the same bytes),
 * otherwise `undefined`. A leading byte order mark is kept.
 */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * What a backend that reads bytes (a file, an HTTP body) returns as {@link Secret.value}: the
 * text when the bytes are valid UTF-8, the bytes themselves otherwise.
 */
export function textOrBytes(bytes: Uint8Array): SecretValue {
  return utf8Text(bytes) ?? bytes;
}

/** A value's bytes: text encoded as UTF-8, bytes as they are (as a Buffer view, not a copy). */
export function valueBytes(value: SecretValue): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Whether `v` is a value a backend may return: a string or a Uint8Array (Buffer included). */
export function isSecretValue(v: unknown): v is SecretValue {
  return typeof v === "string" || v instanceof Uint8Array;
}

/** Whether two values hold the same bytes (a string and its UTF-8 bytes are the same value). */
export function sameValue(a: SecretValue, b: SecretValue): boolean {
  if (typeof a === "string" && typeof b === "string") return a === b;
  return valueBytes(a).equals(valueBytes(b));
}

/** Bytes that are ASCII whitespace, as String.prototype.trim removes them from text. */
function isSpaceByte(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/**
 * Whether a value counts as "not yet set": empty, or (after trimming surrounding whitespace)
 * the original emissary's placeholder `intentionally-empty`.
 */
export function isUnsetValue(value: SecretValue): boolean {
  if (typeof value === "string") {
    const t = value.trim();
    return t === "" || t === INTENTIONALLY_EMPTY;
  }
  let start = 0;
  let end = value.length;
  while (start < end && isSpaceByte(value[start]!)) start++;
  while (end > start && isSpaceByte(value[end - 1]!)) end--;
  if (end === start) return true;
  return end - start === INTENTIONALLY_EMPTY.length && valueBytes(value).subarray(start, end).toString("latin1") === INTENTIONALLY_EMPTY;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Decodes base64 strictly: the standard or the URL-safe alphabet (not mixed), padding optional,
 * whitespace (line breaks of PEM-style text) ignored. Returns `undefined` for anything else —
 * Node's own decoder would silently skip the characters it does not know.
 */
export function decodeBase64(text: string): Buffer | undefined {
  const s = text.replace(/[\t\n\r ]+/g, "");
  if (!(BASE64.test(s) || BASE64URL.test(s))) return undefined;
  const body = s.replace(/=+$/, "");
  const pad = s.length - body.length;
  if (body.length % 4 === 1) return undefined;
  if (pad > 0 && (body.length + pad) % 4 !== 0) return undefined;
  const out = Buffer.from(body, BASE64.test(s) ? "base64" : "base64url");
  // Canonical form only: trailing bits that are not zero mean the text was not produced by an encoder.
  if (out.toString("base64url") !== body.replace(/\+/g, "-").replace(/\//g, "_")) return undefined;
  return out;
}
