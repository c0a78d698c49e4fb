/**
 * The `secrets:` map of a front matter: each name's reference, in the short form
 * (`vault:secret/nomad#token`) or the long form (`ref:` plus options: the core's `trim`,
 * `default`, `encoding`, `decode` and `escape`, the backend's own options), including the options of
 * issued secrets (SPEC "Issued secrets"): `params` (a write), `renew_at`, `private_key: local`,
 * `key_type` and `key_bits`. Every error names the file, line, column and field.
 * @module
 */
import { isAlias, isMap, isScalar, isSeq, type Node } from "yaml";
import type { ParamValue } from "../api/backend.js";
import { ESCAPE_MODES, parseRef, RefSyntaxError, VALUE_DECODINGS, VALUE_ENCODINGS, type EscapeMode, type RefSpec, type ValueDecoding, type ValueEncoding } from "../api/refs.js";
import { excerpt, type SourceFile } from "./source.js";
import { oneOf, shownValue, sourceOf, type At } from "./yaml-node.js";

/** Names a template may declare under `secrets:`. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Bounds of `renew_at`, the fraction of a certificate's validity after which it is re-issued. */
export const RENEW_AT_RANGE = { min: 0.5, max: 0.95 } as const;

/** Key sizes `private_key: local` can generate, per `key_type` (the first is the default). */
export const LOCAL_KEY_BITS: Readonly<Record<"ec" | "rsa", readonly number[]>> = { ec: [256, 384, 521], rsa: [2048, 3072, 4096] };

const REF_OPTION = /^[A-Za-z][A-Za-z0-9_-]*$/;
/** Long-form keys the core applies to every backend's values, with the values each accepts. */
const CORE_OPTIONS = { encoding: VALUE_ENCODINGS, decode: VALUE_DECODINGS, escape: ESCAPE_MODES } as const;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Paths `private_key: local` works with: the PKI engine's sign endpoints (`pki/sign/<role>`, `pki/issuer/<ref>/sign/<role>`, `sign-verbatim`). */
export const SIGN_PATH = /(^|\/)(sign\/[^/]+|sign-verbatim(\/[^/]+)?)$/;
/** Long-form keys that only make sense for a write. */
const ISSUE_OPTIONS = ["renew_at", "private_key", "key_type", "key_bits"] as const;

/** Reads the `secrets:` mapping; records each name's offset in `offsets`. */
export function parseSecrets(src: SourceFile, node: Node | null, offset: number, at: At, offsets: Map<string, number>): Map<string, RefSpec> {
  const out = new Map<string, RefSpec>();
  if (node === null || (isScalar(node) && node.value === null)) return out;
  if (!isMap(node)) src.fail(`must be a mapping of name: reference (got ${shownValue(node)})`, offset, "secrets");
  for (const pair of node.items) {
    const k = pair.key as Node | null;
    const keyPos = at(k, offset);
    const name = isScalar(k) ? String(k.value) : "";
    if (!SECRET_NAME.test(name)) {
      src.fail(`bad secret name "${excerpt(name)}": letters, digits, _ and -, not starting with a digit or -`, keyPos, "secrets");
    }
    const field = `secrets.${name}`;
    const value = pair.value as Node | null;
    const valuePos = at(value, keyPos);
    out.set(name, parseSecret(src, value, valuePos, field, at));
    offsets.set(name, keyPos);
  }
  return out;
}

function parseSecret(src: SourceFile, node: Node | null, offset: number, field: string, at: At): RefSpec {
  const toRef = (text: string, pos: number, f: string, extra: Parameters<typeof parseRef>[1] = {}): RefSpec => {
    try {
      return parseRef(text, extra);
    } catch (err) {
      if (err instanceof RefSyntaxError) src.fail(err.reason, pos, f, err);
      throw err;
    }
  };
  if (isScalar(node) && typeof node.value === "string") return toRef(node.value, offset, field);
  if (!isMap(node)) {
    return src.fail(`must be a reference BACKEND:ID[#FIELD] or a mapping with ref: (got ${shownValue(node)})`, offset, field);
  }
  let ref: { text: string; pos: number } | undefined;
  let trim: boolean | undefined;
  let dflt: string | undefined;
  const core: { encoding?: ValueEncoding; decode?: ValueDecoding; escape?: EscapeMode } = {};
  let params: Record<string, ParamValue> | undefined;
  const options: Record<string, string | number | boolean> = {};
  /** Where each issuance option was written, to blame it when it lacks what it needs. */
  const optionPos = new Map<string, number>();
  for (const pair of node.items) {
    const k = pair.key as Node | null;
    const key = isScalar(k) ? String(k.value) : "";
    const v = pair.value as Node | null;
    const pos = at(v, at(k, offset));
    const sub = `${field}.${excerpt(key)}`;
    if (isAlias(v)) src.fail("YAML aliases (*name) are not supported in front matter", pos, sub);
    if (key === "ref") {
      if (!isScalar(v) || typeof v.value !== "string") src.fail(`must be a reference BACKEND:ID[#FIELD] (got ${shownValue(v)})`, pos, sub);
      ref = { text: v.value, pos };
    } else if (key === "trim") {
      if (!isScalar(v) || typeof v.value !== "boolean") src.fail(`must be true or false (got ${shownValue(v)})`, pos, sub);
      trim = v.value;
    } else if (key === "default") {
      // Never quote a default in an error: it may be a real value.
      if (!isScalar(v) || v.value === null || typeof v.value === "object") src.fail('must be a string (write default: "" for empty)', pos, sub);
      dflt = typeof v.value === "string" ? v.value : (sourceOf(v) ?? String(v.value));
    } else if (key === "encoding" || key === "decode" || key === "escape") {
      (core as Record<string, string>)[key] = oneOf<string>(src, v, pos, sub, CORE_OPTIONS[key]);
    } else if (key === "params") {
      params = parseParams(src, v, pos, sub, at);
    } else {
      if (!REF_OPTION.test(key)) src.fail(`bad option name "${excerpt(key)}"`, at(k, offset), field);
      if (!isScalar(v) || v.value === null || !["string", "number", "boolean"].includes(typeof v.value)) {
        src.fail(`must be a string, number or boolean (got ${shownValue(v)})`, pos, sub);
      }
      options[key] = v.value as string | number | boolean;
      optionPos.set(key, pos);
      if ((ISSUE_OPTIONS as readonly string[]).includes(key)) checkIssueOption(src, key, v.value as string | number | boolean, pos, sub);
    }
  }
  if (ref === undefined) src.fail("the long form needs ref: BACKEND:ID[#FIELD]", offset, field);
  checkIssueCombination(src, options, optionPos, params, field);
  const spec = toRef(ref.text, ref.pos, `${field}.ref`);
  if (options.private_key === "local" && !SIGN_PATH.test(spec.ref.id.replace(/^\/+|\/+$/g, ""))) {
    src.fail(
      `private_key: local is only for a PKI sign path (pki/sign/<role>), not ${excerpt(spec.ref.id)}: there Vault would not sign a CSR; use pki/sign/<role>, or drop private_key to let pki/issue make the key`,
      optionPos.get("private_key")!,
      `${field}.private_key`,
    );
  }
  return toRef(ref.text, ref.pos, `${field}.ref`, {
    options,
    ...(params !== undefined ? { params } : {}),
    ...(trim !== undefined ? { trim } : {}),
    ...(dflt !== undefined ? { default: dflt } : {}),
    ...core,
  });
}

/** `params:` — a mapping of names to scalars or lists of scalars (the body of the write). */
function parseParams(src: SourceFile, node: Node | null, offset: number, field: string, at: At): Record<string, ParamValue> {
  if (!isMap(node)) {
    return src.fail(`must be a mapping of parameter: value, the body of the write (got ${shownValue(node)})`, offset, field);
  }
  const out: Record<string, ParamValue> = {};
  for (const pair of node.items) {
    const k = pair.key as Node | null;
    const key = isScalar(k) && (typeof k.value === "string" || typeof k.value === "number") ? String(k.value) : "";
    const keyPos = at(k, offset);
    if (!PARAM_NAME.test(key)) src.fail(`bad parameter name "${excerpt(key)}" (letters, digits, _, . and -)`, keyPos, field);
    const sub = `${field}.${key}`;
    if (Object.prototype.hasOwnProperty.call(out, key)) src.fail(`parameter "${key}" is given twice`, keyPos, field);
    const v = pair.value as Node | null;
    const pos = at(v, keyPos);
    if (isAlias(v)) src.fail("YAML aliases (*name) are not supported in front matter", pos, sub);
    if (isSeq(v)) {
      out[key] = v.items.map((item, i) => scalarParam(src, item as Node | null, at(item as Node | null, pos), `${sub}[${i}]`, "a list item"));
    } else {
      out[key] = scalarParam(src, v, pos, sub, "a parameter");
    }
  }
  return out;
}

function scalarParam(src: SourceFile, node: Node | null, offset: number, field: string, what: string): string | number | boolean {
  if (isAlias(node)) src.fail("YAML aliases (*name) are not supported in front matter", offset, field);
  if (!isScalar(node) || node.value === null || !["string", "number", "boolean"].includes(typeof node.value)) {
    const lists = what === "a parameter" ? " or a list of them" : "";
    return src.fail(`${what} must be a string, number or boolean${lists} (got ${shownValue(node)})`, offset, field);
  }
  const v = node.value as string | number | boolean;
  if (typeof v === "number" && !Number.isFinite(v)) src.fail(`${what} must be a finite number`, offset, field);
  return v;
}

function checkIssueOption(src: SourceFile, key: string, v: string | number | boolean, pos: number, field: string): void {
  switch (key) {
    case "renew_at":
      if (typeof v !== "number" || !(v >= RENEW_AT_RANGE.min && v <= RENEW_AT_RANGE.max)) {
        src.fail(`must be a number from ${RENEW_AT_RANGE.min} to ${RENEW_AT_RANGE.max}: the fraction of a certificate's validity after which it is re-issued (got ${excerpt(String(v))})`, pos, field);
      }
      return;
    case "private_key":
      if (v !== "local") src.fail(`must be "local" (generate the key here and send a CSR), got "${excerpt(String(v))}"`, pos, field);
      return;
    case "key_type":
      if (v !== "ec" && v !== "rsa") src.fail(`must be ec or rsa (got "${excerpt(String(v))}")`, pos, field);
      return;
    case "key_bits":
      if (typeof v !== "number" || !Number.isInteger(v)) src.fail(`must be a whole number of bits (got ${excerpt(String(v))})`, pos, field);
      return;
  }
}

function checkIssueCombination(
  src: SourceFile,
  options: Readonly<Record<string, string | number | boolean>>,
  pos: ReadonlyMap<string, number>,
  params: Readonly<Record<string, ParamValue>> | undefined,
  field: string,
): void {
  for (const key of ISSUE_OPTIONS) {
    if (options[key] !== undefined && params === undefined) {
      src.fail(`${key} goes with params (an issued secret is a write): add params: {common_name: …}`, pos.get(key)!, `${field}.${key}`);
    }
  }
  const local = options.private_key === "local";
  for (const key of ["key_type", "key_bits"] as const) {
    if (options[key] !== undefined && !local) {
      src.fail(`${key} is the type of a key generated here: it goes with private_key: local (for a key Vault generates, put ${key} in params)`, pos.get(key)!, `${field}.${key}`);
    }
  }
  if (local) {
    const type = (options.key_type as "ec" | "rsa" | undefined) ?? "ec";
    const bits = options.key_bits;
    if (bits !== undefined && !LOCAL_KEY_BITS[type].includes(bits as number)) {
      src.fail(`must be one of ${LOCAL_KEY_BITS[type].join(", ")} for key_type ${type} (got ${String(bits)})`, pos.get("key_bits")!, `${field}.key_bits`);
    }
    if (params && Object.prototype.hasOwnProperty.call(params, "csr")) {
      src.fail("private_key: local builds the CSR here: remove csr from params", pos.get("private_key")!, `${field}.params`);
    }
  }
}
