/**
 * Small readers of `yaml` nodes shared by the front-matter parsers: the scalar as written, a
 * description of a node for error messages, and the offset type they use.
 * @module
 */
import { isScalar, isSeq, type Node } from "yaml";
import { excerpt, type SourceFile } from "./source.js";

/** Maps a YAML node to its offset in the file, or `fallback` when it has none. */
export type At = (node: Node | null | undefined, fallback: number) => number;

/** The scalar as written (yaml keeps it as `source`), for modes and durations. */
export function sourceOf(node: Node | null): string | undefined {
  if (!isScalar(node)) return undefined;
  if (typeof node.source === "string") return node.source;
  return typeof node.value === "string" || typeof node.value === "number" ? String(node.value) : undefined;
}

/** The node's value when it is a string scalar. */
export function scalarString(node: Node | null): string | undefined {
  return isScalar(node) && typeof node.value === "string" ? node.value : undefined;
}

/** What a node is, for an error message: `nothing`, `a list`, `a mapping` or its text, shortened. */
export function shownValue(node: Node | null): string {
  if (node === null || (isScalar(node) && node.value === null)) return "nothing";
  if (!isScalar(node)) return isSeq(node) ? "a list" : "a mapping";
  return `"${excerpt(sourceOf(node) ?? String(node.value), 30)}"`;
}

/** A string scalar that must be one of `accepted`; the error names the field and lists them. */
export function oneOf<T extends string>(src: SourceFile, node: Node | null, offset: number, field: string, accepted: readonly T[]): T {
  const s = scalarString(node);
  if (s === undefined || !(accepted as readonly string[]).includes(s)) src.fail(`must be one of ${accepted.join(", ")} (got ${shownValue(node)})`, offset, field);
  return s as T;
}
