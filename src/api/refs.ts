import type { ParamValue, Secret, SecretRef } from "./backend.js";
import { SecretNotFoundError } from "./errors.js";

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
}

const BACKEND_NAME = /^[a-z][a-z0-9_-]*$/;

/** The literal the original emissary used for "not set yet". */
export const INTENTIONALLY_EMPTY = "intentionally-empty";

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
  extra: { options?: Record<string, string | number | boolean>; params?: Record<string, ParamValue>; trim?: boolean; default?: string } = {},
): RefSpec {
  if (typeof text !== "string" || text.trim() === "") throw new RefSyntaxError("reference is empty (expected BACKEND:ID[#FIELD])");
  const t = text.trim();
  const colon = t.indexOf(":");
  if (colon <= 0) throw new RefSyntaxError(`reference "${t}" has no backend (expected BACKEND:ID[#FIELD])`);
  const backend = t.slice(0, colon);
  if (!BACKEND_NAME.test(backend)) throw new RefSyntaxError(`reference "${t}" has a bad backend name "${backend}"`);
  const rest = t.slice(colon + 1);
  const hash = rest.indexOf("#");
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
  };
  return spec;
}

/** A resolved value as a template sees it. */
export type ResolvedValue =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "object"; readonly text: string; readonly data: Record<string, unknown> | unknown[] };

function parseStructured(secret: Secret): unknown {
  if (secret.data !== undefined) return secret.data;
  const v = secret.value.trim();
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
  let picked: unknown;
  let text: string;
  if (spec.field) {
    const data = parseStructured(secret);
    if (data === undefined || data === null || typeof data !== "object") {
      throw new SecretNotFoundError(`${spec.text}: the secret is not a JSON object, so it has no field "${fieldLabel(spec.field)}"`);
    }
    picked = spec.field.kind === "key" ? lookupKey(data, spec.field.key) : lookupPointer(data, spec.field.tokens);
    if (picked === undefined || picked === null) throw new SecretNotFoundError(`${spec.text}: field "${fieldLabel(spec.field)}" is not in the secret`);
    text = typeof picked === "string" ? picked : JSON.stringify(picked);
  } else {
    text = secret.value;
    picked = parseStructured(secret);
  }
  if (spec.trim) text = text.trim();
  if (isEmpty(text)) throw new SecretNotFoundError(`${spec.text}: the value is empty or "${INTENTIONALLY_EMPTY}"`);
  if (picked !== null && typeof picked === "object") {
    return { kind: "object", text, data: picked as Record<string, unknown> };
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
