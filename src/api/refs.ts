import type { ParamValue, Secret, SecretRef } from "./backend.js";
import { Buffer } from "node:buffer";
import { INTENTIONALLY_EMPTY, decodeBase64, utf8Text, valueBytes } from "./bytes.js";
import { FatalError, SecretNotFoundError } from "./errors.js";

/**
 * How a value's bytes reach the template: `utf8` as text (the default), `binary` as the raw
 * bytes, `base64` as base64 text of the bytes (the default for AWS `SecretBinary`).
 */
export type ValueEncoding = "utf8" | "binary" | "base64";
/** The accepted {@link ValueEncoding}s, for validation and messages. */
export const VALUE_ENCODINGS: readonly ValueEncoding[] = ["utf8", "binary", "base64"];
/** `decode: base64`: the value is base64 text of the bytes wanted. */
export type ValueDecoding = "base64";
/** The accepted {@link ValueDecoding}s. */
export const VALUE_DECODINGS: readonly ValueDecoding[] = ["base64"];
/** Output escaping of `{{name}}` (never of `{{{name}}}` or `{{&name}}`). */
export type EscapeMode = "none" | "json" | "html" | "hcl" | "yaml" | "toml" | "shell";
/** The accepted {@link EscapeMode}s. */
export const ESCAPE_MODES: readonly EscapeMode[] = ["none", "json", "html", "hcl", "yaml", "toml", "shell"];

/** How a value is picked out of a JSON (or YAML) object secret. */
export type FieldSelector =
  | { readonly kind: "key"; readonly key: string }
  | { readonly kind: "pointer"; readonly pointer: string; readonly tokens: readonly string[] };

/** A reference as a template declares it: what to fetch plus what the core does with the value. */
export interface RefSpec {
  /** What to fetch. `backend` is as written until the registry canonicalizes it. */
  readonly ref: SecretRef;
  /** `#field` or `#/json/pointer`. */
  readonly field?: FieldSelector;
  /** Trim surrounding whitespace. @defaultValue true */
  readonly trim: boolean;
  /** Resolve to this instead of waiting when the secret is missing. */
  readonly default?: string;
  /** The reference text as written, for logs (`awssm:prod/db#password`). */
  readonly text: string;
  /** Long form `encoding:`. @defaultValue "utf8" ("base64" for a backend's binary value) */
  readonly encoding?: ValueEncoding;
  /** Long form `decode: base64`: decode the (text) value into bytes first. */
  readonly decode?: ValueDecoding;
  /** Long form `escape:`: this secret's own escaping, which wins over the template's. */
  readonly escape?: EscapeMode;
}

const BACKEND_NAME = /^[a-z][a-z0-9_-]*$/;

export { INTENTIONALLY_EMPTY };

/** Error thrown by {@link parseRef} — carries only the reference text and the reason. */
export class RefSyntaxError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "RefSyntaxError";
  }
}

/** Parses RFC 6901 pointer tokens (`/a/b~1c` → `["a", "b/c"]`). */
export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new RefSyntaxError(`JSON pointer "${pointer}" must start with "/"`);
  return pointer
    .slice(1)
    .split("/")
    .map((t) => {
      if (/~[^01]|~$/.test(t)) throw new RefSyntaxError(`JSON pointer "${pointer}" has a bad escape (only ~0 and ~1)`);
      return t.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

/**
 * Parses `BACKEND:ID[#FIELD]`. The ID runs to the first `#`; ARNs with colons are fine because
 * only the first colon separates the backend.
 */
export function parseRef(
  text: string,
  extra: {
    options?: Record<string, string | number | boolean>;
    params?: Record<string, ParamValue>;
    trim?: boolean;
    default?: string;
    encoding?: ValueEncoding;
    decode?: ValueDecoding;
    escape?: EscapeMode;
    /** The ID runs to the end: a `#` in it is part of the ID (a legacy `{{poll}}`), not a field. */
    literalId?: boolean;
  } = {},
): RefSpec {
  if (typeof text !== "string" || text.trim() === "") throw new RefSyntaxError("reference is empty (expected BACKEND:ID[#FIELD])");
  const t = text.trim();
  const colon = t.indexOf(":");
  if (colon <= 0) throw new RefSyntaxError(`reference "${t}" has no backend (expected BACKEND:ID[#FIELD])`);
  const backend = t.slice(0, colon);
  if (!BACKEND_NAME.test(backend)) throw new RefSyntaxError(`reference "${t}" has a bad backend name "${backend}"`);
  const rest = t.slice(colon + 1);
  const hash = extra.literalId ? -1 : rest.indexOf("#");
  const id = hash === -1 ? rest : rest.slice(0, hash);
  if (id === "") throw new RefSyntaxError(`reference "${t}" has an empty ID`);
  let field: FieldSelector | undefined;
  if (hash !== -1) {
    const f = rest.slice(hash + 1);
    if (f === "") throw new RefSyntaxError(`reference "${t}" has an empty field after "#"`);
    field = f.startsWith("/") ? { kind: "pointer", pointer: f, tokens: parsePointer(f) } : { kind: "key", key: f };
  }
  const spec: RefSpec = {
    ref: { backend, id, options: { ...(extra.options ?? {}) }, ...(extra.params !== undefined ? { params: { ...extra.params } } : {}) },
    trim: extra.trim ?? true,
    text: t,
    ...(field ? { field } : {}),
    ...(extra.default !== undefined ? { default: extra.default } : {}),
    ...(extra.encoding !== undefined ? { encoding: extra.encoding } : {}),
    ...(extra.decode !== undefined ? { decode: extra.decode } : {}),
    ...(extra.escape !== undefined ? { escape: extra.escape } : {}),
  };
  return spec;
}

/**
 * A resolved value as a template sees it: text; a JSON object or array (`data`, with `text` its
 * JSON); or a JSON scalar picked by `#field` (`false`, `0`, `null`…), which keeps its type so a
 * section treats it as mustache treats that JSON value, while `{{name}}` renders `text`; or bytes.
 */
export type ResolvedValue =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "object"; readonly text: string; readonly data: Record<string, unknown> | unknown[] }
  | { readonly kind: "json"; readonly text: string; readonly data: boolean | number | null }
  /** Bytes that are not UTF-8 text: written as they are by a template that is this value alone. */
  | { readonly kind: "bytes"; readonly bytes: Uint8Array };

function parseStructured(secret: Secret, text: string): unknown {
  if (secret.data !== undefined) return secret.data;
  const v = text.trim();
  if (!(v.startsWith("{") || v.startsWith("["))) return undefined;
  try {
    return JSON.parse(v);
  } catch {
    // Never pass JSON.parse's message on: it quotes the secret's text.
    return undefined;
  }
}

function isEmpty(text: string): boolean {
  return text === "" || text === INTENTIONALLY_EMPTY;
}

/**
 * Applies field selection, trimming and the "not yet set" rule to a fetched secret.
 * Throws {@link SecretNotFoundError} (with a message free of the value) when the value counts as
 * not set or the field is absent.
 */
export function extractValue(spec: RefSpec, secret: Secret): ResolvedValue {
  const source = textSource(spec, secret);
  if (source === undefined) return extractBytes(spec, secret);
  let picked: unknown;
  let text: string;
  if (spec.field) {
    const data = parseStructured(secret, source);
    if (data === undefined || data === null || typeof data !== "object") {
      throw new SecretNotFoundError(`${spec.text}: the secret is not a JSON object, so it has no field "${fieldLabel(spec.field)}"`);
    }
    picked = spec.field.kind === "key" ? lookupKey(data, spec.field.key) : lookupPointer(data, spec.field.tokens);
    // A field that is there with the value null is a value (falsy in a section), not a missing field.
    if (picked === undefined) throw new SecretNotFoundError(`${spec.text}: field "${fieldLabel(spec.field)}" is not in the secret`);
    text = typeof picked === "string" ? picked : (JSON.stringify(picked) ?? "");
  } else {
    text = source;
    picked = parseStructured(secret, source);
  }
  if (spec.trim) text = text.trim();
  if (isEmpty(text)) throw new SecretNotFoundError(`${spec.text}: the value is empty or "${INTENTIONALLY_EMPTY}"`);
  if (picked !== null && typeof picked === "object") {
    return { kind: "object", text, data: picked as Record<string, unknown> };
  }
  if (spec.field && (picked === null || typeof picked === "boolean" || (typeof picked === "number" && Number.isFinite(picked)))) {
    return { kind: "json", text, data: picked };
  }
  return { kind: "text", text };
}

function fieldLabel(f: FieldSelector): string {
  return f.kind === "key" ? f.key : f.pointer;
}

function lookupKey(data: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(data, key) ? (data as Record<string, unknown>)[key] : undefined;
}

function lookupPointer(data: unknown, tokens: readonly string[]): unknown {
  let cur: unknown = data;
  for (const tok of tokens) {
    if (cur === null || typeof cur !== "object") return undefined;
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(tok)) return undefined;
      cur = cur[Number(tok)];
    } else {
      cur = lookupKey(cur, tok);
    }
  }
  return cur;
}

/**
 * The encoding a value gets: the reference's; else base64 for a backend's binary value (AWS
 * `SecretBinary`) that is not `decode`d; else utf8.
 */
export function effectiveEncoding(spec: RefSpec, secret: Secret): ValueEncoding {
  return spec.encoding ?? (secret.binary === true && spec.decode === undefined ? "base64" : "utf8");
}

/** The value as text when it is plain UTF-8 text to take as it is; `undefined` for the bytes way. */
function textSource(spec: RefSpec, secret: Secret): string | undefined {
  if (spec.decode !== undefined || effectiveEncoding(spec, secret) !== "utf8") return undefined;
  return typeof secret.value === "string" ? secret.value : utf8Text(secret.value);
}

/**
 * The bytes way: a value that is not UTF-8, `encoding: binary` or `base64`, or `decode: base64`.
 * Raw bytes are never trimmed; a field or a `decode` takes the text way first (field, trim and
 * "not set" apply to that text), then works on its bytes.
 */
function extractBytes(spec: RefSpec, secret: Secret): ResolvedValue {
  let bytes: Uint8Array;
  if (spec.field !== undefined || spec.decode !== undefined) {
    const text = typeof secret.value === "string" ? secret.value : utf8Text(secret.value);
    if (text === undefined) {
      if (spec.field !== undefined) throw new SecretNotFoundError(`${spec.text}: the secret is not UTF-8 text, so it has no field "${fieldLabel(spec.field)}"`);
      throw new FatalError(`${spec.text}: decode: base64 needs base64 text, and the value is not even UTF-8 text`);
    }
    const inner = extractValue({ ...spec, encoding: "utf8", decode: undefined, trim: spec.decode !== undefined && spec.trim }, { ...secret, value: text });
    const innerText = inner.kind === "bytes" ? "" : inner.text;
    if (spec.decode === undefined) bytes = Buffer.from(innerText, "utf8");
    else {
      const decoded = decodeBase64(innerText);
      if (decoded === undefined) throw new FatalError(`${spec.text}: the value is not valid base64 (decode: base64)`);
      bytes = decoded;
    }
  } else {
    bytes = valueBytes(secret.value);
  }
  const placeholder = spec.decode === undefined && bytes.length === INTENTIONALLY_EMPTY.length && valueBytes(bytes).toString("latin1") === INTENTIONALLY_EMPTY;
  if (bytes.length === 0 || placeholder) {
    throw new SecretNotFoundError(`${spec.text}: the value is empty or "${INTENTIONALLY_EMPTY}"`);
  }
  if (effectiveEncoding(spec, secret) === "base64") return { kind: "text", text: valueBytes(bytes).toString("base64") };
  const text = utf8Text(bytes);
  return text === undefined ? { kind: "bytes", bytes } : { kind: "text", text };
}
