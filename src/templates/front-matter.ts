/**
 * The YAML front matter of a template: split it from the body, parse it with `yaml`, and turn
 * each key into a typed setting. Positions come from the YAML nodes, so every error points at the
 * offending key or value in the original file.
 */
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type Scalar, type YAMLMap } from "yaml";
import { TemplateError } from "../api/errors.js";
import { parseMode } from "../config/mode.js";
import { parseDuration } from "../api/duration.js";
import { ESCAPE_MODES, type EscapeMode, type RefSpec } from "../api/refs.js";
import { splitCommand } from "../output/split-command.js";
import { parseSecrets } from "./secret-spec.js";
import { excerpt, type SourceFile } from "./source.js";
import { oneOf, scalarString, shownValue, sourceOf, type At } from "./yaml-node.js";

/** Output escaping applied to every `{{name}}` (never to `{{{name}}}` or `{{&name}}`). */
export type { EscapeMode };

/** Quiescence: wait until values have been stable for `minMs`, but no longer than `maxMs` in all. */
export interface WaitSpec {
  /** Minimum quiet time. */
  readonly minMs: number;
  /** Upper bound on the wait. @defaultValue 4 × minMs (consul-template's rule) */
  readonly maxMs: number;
}

/** The settings a front matter gives; absent keys are left for the caller's defaults. */
export interface FrontMatter {
  dest: string;
  destOffset: number;
  mode?: number;
  owner?: string | number;
  group?: string | number;
  command?: string[];
  commandText?: string;
  commandTimeoutMs?: number;
  wait?: WaitSpec;
  escape?: EscapeMode;
  refreshMs?: number;
  splayMs?: number;
  minIntervalMs?: number;
  secrets: Map<string, RefSpec>;
  /** Offset in the file of each secret's declaration (its key). */
  secretOffsets: Map<string, number>;
}

/** Where the front matter and the body are in the file. */
export interface SplitFile {
  /** The YAML text between the `---` lines. */
  readonly yaml: string;
  /** Offset of {@link SplitFile.yaml} in the file. */
  readonly yamlOffset: number;
  /** Everything after the closing `---` line. */
  readonly body: string;
  /** Offset of {@link SplitFile.body} in the file. */
  readonly bodyOffset: number;
}

/** The front-matter keys a template may use. */
export const FRONT_MATTER_KEYS = [
  "dest",
  "mode",
  "owner",
  "group",
  "command",
  "onrender",
  "command_timeout",
  "wait",
  "escape",
  "refresh",
  "splay",
  "min_interval",
  "secrets",
] as const;

export { SECRET_NAME } from "./secret-spec.js";

const DELIMITER = /^---[ \t]*\r?$/;
const FM_FIELD = "front matter";

/**
 * Splits `---` front matter from the body. The file must start with a `---` line (a UTF-8 BOM
 * before it is allowed); the front matter ends at the next `---` line.
 */
export function splitFrontMatter(src: SourceFile): SplitFile {
  const text = src.text;
  const start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const lineAt = (from: number): { line: string; next: number } => {
    const nl = text.indexOf("\n", from);
    return nl === -1 ? { line: text.slice(from), next: text.length } : { line: text.slice(from, nl), next: nl + 1 };
  };
  const first = lineAt(start);
  if (!DELIMITER.test(first.line)) src.fail("no front matter (--- … ---): a template starts with a --- line", start, FM_FIELD);
  let pos = first.next;
  while (pos < text.length) {
    const l = lineAt(pos);
    if (DELIMITER.test(l.line)) {
      return { yaml: text.slice(first.next, pos), yamlOffset: first.next, body: text.slice(l.next), bodyOffset: l.next };
    }
    pos = l.next;
  }
  return src.fail("is not closed: no second --- line after the first", start, FM_FIELD);
}

/** Reads the YAML front matter. Throws a located {@link TemplateError} on the first problem. */
export function parseFrontMatter(src: SourceFile, split: SplitFile): FrontMatter {
  const base = split.yamlOffset;
  const doc = parseDocument(split.yaml, { prettyErrors: false, uniqueKeys: true, keepSourceTokens: false });
  const yamlError = doc.errors[0];
  if (yamlError) {
    // The message only: a YAML error object carries the source text, which may hold a default value.
    src.fail(`invalid YAML: ${excerpt(yamlError.message, 120)}`, base + yamlError.pos[0], FM_FIELD);
  }
  const at = (node: Node | null | undefined, fallback: number): number => base + (node?.range?.[0] ?? fallback - base);
  const root = doc.contents;
  if (!isMap(root)) {
    const what = root === null || (isScalar(root) && root.value === null) ? "is empty" : "is not a mapping of key: value";
    src.fail(`${what} (dest: is required)`, at(root, base), FM_FIELD);
  }
  const fm: Partial<FrontMatter> & Pick<FrontMatter, "secrets" | "secretOffsets"> = { secrets: new Map(), secretOffsets: new Map() };
  let commandKey: string | undefined;
  for (const pair of root.items) {
    const key = keyOf(src, pair, base);
    const keyPos = at(pair.key as Node, base);
    const value = pair.value as Node | null;
    const valuePos = at(value, keyPos);
    if (isAlias(value)) src.fail("YAML aliases (*name) are not supported in front matter", valuePos, key);
    switch (key) {
      case "dest": {
        const s = scalarString(value);
        if (s === undefined || s.trim() === "") src.fail("must be a non-empty path", valuePos, key);
        fm.dest = s;
        fm.destOffset = valuePos;
        break;
      }
      case "mode":
        fm.mode = relocate(src, valuePos, key, () => parseMode(isScalar(value) ? value.value : value, sourceOf(value)));
        break;
      case "owner":
      case "group":
        fm[key] = parseOwner(src, value, valuePos, key);
        break;
      case "command":
      case "onrender": {
        if (commandKey !== undefined) {
          src.fail(`both ${commandKey} and ${key} are given (onrender is the original's name for command): keep one`, keyPos, key);
        }
        commandKey = key;
        Object.assign(fm, parseCommand(src, value, valuePos, key, at));
        break;
      }
      case "command_timeout":
      case "refresh": {
        const ms = duration(src, value, valuePos, key);
        if (ms <= 0) src.fail("must be longer than 0", valuePos, key);
        if (key === "refresh") fm.refreshMs = ms;
        else fm.commandTimeoutMs = ms;
        break;
      }
      case "splay":
      case "min_interval":
        fm[key === "splay" ? "splayMs" : "minIntervalMs"] = duration(src, value, valuePos, key); // 0s = off
        break;
      case "wait":
        fm.wait = parseWait(src, value, valuePos, at);
        break;
      case "escape":
        fm.escape = oneOf(src, value, valuePos, key, ESCAPE_MODES);
        break;
      case "secrets":
        fm.secrets = parseSecrets(src, value, valuePos, at, fm.secretOffsets);
        break;
      default:
        src.fail(`unknown key "${excerpt(key)}" (expected one of ${FRONT_MATTER_KEYS.join(", ")})`, keyPos, excerpt(key));
    }
  }
  if (fm.dest === undefined) src.fail("is required (the file to write)", at(root, base), "dest");
  return fm as FrontMatter;
}

function keyOf(src: SourceFile, pair: Pair, base: number): string {
  const k = pair.key as Node | null;
  if (isScalar(k) && (typeof k.value === "string" || typeof k.value === "number")) return String(k.value);
  return src.fail("keys must be plain names", base + ((k as Node | null)?.range?.[0] ?? 0), FM_FIELD);
}




/** Runs `fn`, re-throwing an unlocated TemplateError (from parseMode) at `offset`. */
function relocate<T>(src: SourceFile, offset: number, field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TemplateError) src.fail(err.reason, offset, field);
    throw err;
  }
}

function duration(src: SourceFile, node: Node | null, offset: number, field: string): number {
  const text = isScalar(node) ? sourceOf(node) : undefined;
  if (text === undefined || text.trim() === "") src.fail(`must be a duration like 30s or 1m30s (got ${shownValue(node)})`, offset, field);
  try {
    return parseDuration(text);
  } catch (err) {
    return src.fail((err as Error).message, offset, field);
  }
}

function parseOwner(src: SourceFile, node: Node | null, offset: number, field: string): string | number {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0 || v > 0xfffffffe) src.fail(`must be a name or a numeric id (got ${shownValue(node)})`, offset, field);
    return v;
  }
  if (typeof v !== "string" || !/^[^\s:]+$/.test(v)) src.fail(`must be a name or a numeric id (got ${shownValue(node)})`, offset, field);
  // A quoted "1000" is an id, as it would be on a command line.
  return /^\d+$/.test(v) && Number(v) <= 0xfffffffe ? Number(v) : v;
}

/**
 * `command` / `onrender`. Empty (`onrender: ""`, `onrender:`, `onrender: ~`, `[]`) means no
 * command, as in the original, whose templates often carry an empty `onrender:` line: the file is
 * written and nothing runs.
 */
function parseCommand(src: SourceFile, node: Node | null, offset: number, field: string, at: At): { command?: string[]; commandText?: string } {
  if (node === null || (isScalar(node) && node.value === null)) return {};
  if (isScalar(node) && typeof node.value === "string") {
    const text = node.value.trim();
    if (text === "") return {};
    try {
      return { command: splitCommand(text), commandText: text };
    } catch (err) {
      return src.fail((err as Error).message, offset, field);
    }
  }
  if (isSeq(node)) {
    const argv = node.items.map((item, i) => {
      const n = item as Node | null;
      const pos = at(n, offset);
      if (!isScalar(n) || n.value === null || typeof n.value === "object") src.fail(`item ${i + 1} must be a string`, pos, field);
      return typeof n.value === "string" ? n.value : (sourceOf(n) ?? String(n.value));
    });
    if (argv.length === 0) return {};
    if (argv[0] === "") src.fail("has an empty program name", offset, field);
    const commandText = argv.map((a) => (a === "" || /[\s"'\\$`]/.test(a) ? JSON.stringify(a) : a)).join(" ");
    return { command: argv, commandText };
  }
  return src.fail(`must be a string or a list of strings (got ${shownValue(node)})`, offset, field);
}

function parseWait(src: SourceFile, node: Node | null, offset: number, at: At): WaitSpec {
  const field = "wait";
  if (isScalar(node)) {
    const text = sourceOf(node) ?? "";
    const colon = text.indexOf(":");
    if (colon !== -1) {
      // consul-template's "min:max" string form.
      return checkWait(src, durationText(src, text.slice(0, colon), offset, field), durationText(src, text.slice(colon + 1), offset, field), offset);
    }
    const min = duration(src, node, offset, field);
    return { minMs: min, maxMs: 4 * min };
  }
  if (isMap(node)) {
    let min: number | undefined;
    let max: number | undefined;
    for (const pair of (node as YAMLMap).items) {
      const k = isScalar(pair.key) ? String((pair.key as Scalar).value) : "";
      const v = pair.value as Node | null;
      const pos = at(v, at(pair.key as Node | null, offset));
      if (k === "min") min = duration(src, v, pos, "wait.min");
      else if (k === "max") max = duration(src, v, pos, "wait.max");
      else src.fail(`unknown key "${excerpt(k)}" under wait (expected min, max)`, pos, "wait");
    }
    if (min === undefined) src.fail("needs min (e.g. {min: 2s, max: 10s})", offset, field);
    return checkWait(src, min, max ?? 4 * min, offset);
  }
  return src.fail(`must be a duration (2s) or {min, max} (got ${shownValue(node)})`, offset, field);
}

function durationText(src: SourceFile, text: string, offset: number, field: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    return src.fail((err as Error).message, offset, field);
  }
}

function checkWait(src: SourceFile, minMs: number, maxMs: number, offset: number): WaitSpec {
  if (maxMs < minMs) src.fail("max must not be shorter than min", offset, "wait");
  return { minMs, maxMs };
}
