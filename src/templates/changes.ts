/**
 * Change reports: which of a template's secret names changed since its destination was last
 * known to match (written, or found identical). Only keyed hashes of the resolved values are
 * kept, never the values; the report names secrets, never values.
 * @module
 */
import { createHmac, randomBytes } from "node:crypto";
import type { ResolvedValue } from "../api/refs.js";

/** A per-process key: the fingerprints mean nothing outside this process. */
const KEY = randomBytes(32);

/** A keyed hash of each resolved value, by secret name. */
export function fingerprints(values: ReadonlyMap<string, ResolvedValue>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, v] of values) {
    const h = createHmac("sha256", KEY).update(v.kind).update("\0");
    const text = (v as { text?: unknown }).text;
    if (typeof text === "string" || text instanceof Uint8Array) h.update(text);
    else h.update(JSON.stringify(v) ?? "");
    out.set(name, h.digest("base64url"));
  }
  return out;
}

/**
 * The names whose fingerprint differs from `before`, in the order of `after`. With no `before`
 * (the first write since start: what the old file held is unknown) every name is listed.
 */
export function changedNames(before: ReadonlyMap<string, string> | undefined, after: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [name, fp] of after) if (!before || before.get(name) !== fp) out.push(name);
  return out;
}
