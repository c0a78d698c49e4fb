/**
 * The mustache body of a template: find its tags the way mustache.js does, rewrite the original
 * emissary's `{{poll "BACKEND" "ID"}}` into declared names, reject Go-template syntax and
 * partials, check that every top-level name is declared, then let mustache.js parse the result.
 *
 * Our own tag scan runs first because it knows where each tag starts in the ORIGINAL file, so
 * errors point at the right line and column (mustache.js reports offsets into the rewritten
 * text, and for an unclosed tag only the end of the file).
 */
import Mustache from "mustache";
import { parseRef, RefSyntaxError, type RefSpec } from "../api/refs.js";
import { excerpt } from "./source.js";

/** A tag as mustache.js sees it. */
interface Tag {
  /** `name`, `#`, `^`, `/`, `>`, `&` (also for `{{{…}}}`), `=`, `!`. */
  readonly type: string;
  /** The tag's content as mustache.js reads it (surrounding whitespace dropped). */
  readonly value: string;
  /** Offset of the opening delimiter in the body. */
  readonly start: number;
  /** Offset just past the closing delimiter. */
  readonly end: number;
  /** The delimiters in force for this tag. */
  readonly open: string;
  readonly close: string;
}

/** A reason and a body offset; the caller turns it into a located TemplateError. */
export class BodyError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(reason);
    this.name = "BodyError";
  }
}

/** What {@link analyzeBody} found. */
export interface BodyAnalysis {
  /** The body with every legacy poll replaced by its synthesized name. */
  readonly source: string;
  /** Synthesized names for legacy polls, in order of first appearance. */
  readonly polls: ReadonlyMap<string, RefSpec>;
  /** Body offset of each poll's first appearance. */
  readonly pollOffsets: ReadonlyMap<string, number>;
  /** Declared (or synthesized) names the body refers to anywhere. */
  readonly used: ReadonlySet<string>;
  /** mustache.js tokens of {@link BodyAnalysis.source}. */
  readonly tokens: unknown[];
}

/** The message for any Go-template construct other than `poll`. */
export const GO_SYNTAX = 'Go-template syntax is not supported (only {{poll "BACKEND" "ID"}})';

const TAG_TYPES = "#^/>{&=!";
/** Go-template actions that take no argument, so they look like mustache names. */
const GO_BARE_WORDS = new Set(["end", "else", "break", "continue", "nil"]);
const STR = String.raw`"(?:[^"\\]|\\[\s\S])*"|'(?:[^'\\]|\\[\s\S])*'|` + "`[^`]*`";
const POLL = new RegExp(String.raw`^poll\s+(${STR})\s+(${STR})$`);
const NAME_PATH = /^[^\s.]+(?:\.[^\s.]+)*$/;

/** Index of the first match of `\s*` + `lit` at or after `from` (mustache's scanUntil), or -1. */
function findClose(text: string, lit: string, from: number): { at: number; after: number } | undefined {
  const i = text.indexOf(lit, from);
  if (i === -1) return undefined;
  let j = i;
  while (j > from && /\s/.test(text[j - 1]!)) j--;
  return { at: j, after: i + lit.length };
}

/**
 * Lists the tags of `body` exactly as mustache.js 4.2's parser would find them (same delimiters,
 * same `{{= =}}` handling). Stops with a {@link BodyError} at the first tag that cannot be read.
 */
export function scanTags(body: string): Tag[] {
  const tags: Tag[] = [];
  let open = "{{";
  let close = "}}";
  let pos = 0;
  for (;;) {
    const start = body.indexOf(open, pos);
    if (start === -1) return tags;
    let p = start + open.length;
    while (p < body.length && /\s/.test(body[p]!)) p++;
    let type = "name";
    if (p < body.length && TAG_TYPES.includes(body[p]!)) type = body[p++]!;
    while (p < body.length && /\s/.test(body[p]!)) p++;
    let value: string;
    let end: number;
    const unclosed = (): never => {
      throw new BodyError(`unclosed tag ${excerpt(body.slice(start, start + 20), 20)} (no ${close} after it)`, start);
    };
    if (type === "=") {
      const eq = findClose(body, "=", p) ?? unclosed();
      value = body.slice(p, eq.at);
      const c = findClose(body, close, eq.after) ?? unclosed();
      end = c.after;
      const parts = value.split(/\s+/, 2);
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
        throw new BodyError(`bad delimiters in ${excerpt(body.slice(start, end))}: expected {{=<% %>=}}`, start);
      }
      tags.push({ type, value, start, end, open, close });
      [open, close] = parts as [string, string];
    } else if (type === "{") {
      const c = findClose(body, `}${close}`, p) ?? unclosed();
      value = body.slice(p, c.at);
      // mustache.js scans `\s*}` then up to the closing delimiter.
      const c2 = findClose(body, close, c.after - close.length) ?? unclosed();
      end = c2.after;
      tags.push({ type: "&", value, start, end, open, close });
    } else {
      const c = findClose(body, close, p) ?? unclosed();
      value = body.slice(p, c.at);
      end = c.after;
      tags.push({ type, value, start, end, open, close });
    }
    pos = end;
  }
}

function unquote(lit: string, offset: number): string {
  const q = lit[0];
  const inner = lit.slice(1, -1);
  if (q === "`") return inner;
  if (q === '"') {
    try {
      return JSON.parse(lit) as string;
    } catch {
      throw new BodyError(`bad string ${excerpt(lit)} in poll (escapes as in JSON)`, offset);
    }
  }
  return inner.replace(/\\([\s\S])/g, "$1");
}

/** Whether `value`, the content of a `{{name}}` tag, can only be Go-template syntax. */
function isGoSyntax(value: string): boolean {
  return (
    /^-\s/.test(value) || // {{- trim markers
    /\s-$/.test(value) ||
    (value.startsWith(".") && value !== ".") || // {{ .Field }}
    /[\s|()"'`$]|:=/.test(value) // {{if x}}, pipes, calls, variables, string literals
  );
}

/**
 * Rewrites legacy polls, validates every tag against `declared`, and parses with mustache.js.
 * @param declared - names declared under `secrets:`
 * @throws {@link BodyError} (offset into `body`) on the first problem
 */
export function analyzeBody(body: string, declared: ReadonlySet<string>): BodyAnalysis {
  const tags = scanTags(body);

  // Legacy polls first, so their synthesized names count as declared wherever they appear.
  const polls = new Map<string, RefSpec>();
  const pollOffsets = new Map<string, number>();
  const byRef = new Map<string, string>();
  const pollName = new Map<Tag, string>();
  const trims = new Map<Tag, { left: boolean; right: boolean }>();
  let n = 0;
  for (const tag of tags) {
    // Go's trim markers: `{{- ` and ` -}}` (the dash touching the delimiter, then white space).
    const left = body.startsWith("-", tag.start + tag.open.length) && /^-[ \t\r\n]/.test(tag.value + " ");
    const right = body.startsWith("-", tag.end - tag.close.length - 1) && /[ \t\r\n]-$/.test(tag.value);
    const value = tag.value.replace(left ? /^-[ \t\r\n]+/ : /^$/, "").replace(right ? /[ \t\r\n]+-$/ : /^$/, "");
    const attempt = /^poll[\s"'`]/.test(value) || (value === "poll" && !declared.has("poll"));
    if (tag.type !== "name" || !attempt) continue;
    if (left || right) trims.set(tag, { left, right });
    const m = POLL.exec(value);
    if (!m) throw new BodyError(`bad poll ${excerpt(body.slice(tag.start, tag.end))}: expected {{poll "BACKEND" "ID"}}`, tag.start);
    const backend = unquote(m[1]!, tag.start);
    const id = unquote(m[2]!, tag.start);
    const text = `${backend}:${id}`;
    let name = byRef.get(text);
    if (name === undefined) {
      let spec: RefSpec;
      try {
        // The original passed the ID through untouched: a `#` in it is part of the ID.
        spec = parseRef(text, { literalId: true });
      } catch (err) {
        if (err instanceof RefSyntaxError) throw new BodyError(`bad poll: ${err.reason}`, tag.start);
        throw err;
      }
      do name = `__poll_${++n}`;
      while (declared.has(name));
      polls.set(name, spec);
      pollOffsets.set(name, tag.start);
      byRef.set(text, name);
    }
    pollName.set(tag, name);
  }
  const known = (name: string): boolean => declared.has(name) || polls.has(name);

  const used = new Set<string>();
  const sections: Tag[] = [];
  for (const tag of tags) {
    const { type, value } = tag;
    if (pollName.has(tag)) {
      used.add(pollName.get(tag)!);
      continue;
    }
    if (type === "!" || type === "=") continue;
    const shown = excerpt(body.slice(tag.start, tag.end)); // template text, never a value
    if (type === ">") throw new BodyError(`partials are not supported: ${shown}`, tag.start);
    if (type === "/" && value.startsWith("*")) throw new BodyError(`${GO_SYNTAX}: ${shown}`, tag.start);
    if (type === "name" && isGoSyntax(value)) throw new BodyError(`${GO_SYNTAX}: ${shown}`, tag.start);
    if (value === "") throw new BodyError(`empty tag ${shown}`, tag.start);
    if (value !== "." && !NAME_PATH.test(value)) throw new BodyError(`bad name ${shown}: names are letters, digits, _ and -, with . between fields`, tag.start);
    if (type === "/") {
      const openTag = sections.pop();
      if (!openTag) throw new BodyError(`${shown} closes a section that was never opened`, tag.start);
      if (openTag.value !== value) {
        throw new BodyError(`unclosed section "${excerpt(openTag.value)}": ${shown} closes a different one`, tag.start);
      }
      continue;
    }
    const first = value.split(".")[0]!;
    if (known(first)) used.add(first);
    if (sections.length === 0) {
      // Outside sections every name must be declared; inside, a name may be a field of the section's object.
      if (value === ".") throw new BodyError(`{{.}} outside a section has nothing to show`, tag.start);
      if (!known(first)) {
        if (type === "name" && GO_BARE_WORDS.has(value)) throw new BodyError(`${GO_SYNTAX}: ${shown}`, tag.start);
        throw new BodyError(`unknown name "${excerpt(first)}" (declare it under secrets:)`, tag.start);
      }
    }
    if (type === "#" || type === "^") sections.push(tag);
  }
  const unclosedSection = sections.pop();
  if (unclosedSection) {
    throw new BodyError(`unclosed section "${excerpt(unclosedSection.value)}" (no {{/${excerpt(unclosedSection.value)}}})`, unclosedSection.start);
  }

  // Rewrite polls into names, keeping a map from new offsets back to the original.
  let source = "";
  let last = 0;
  const shifts: Array<{ at: number; orig: number }> = [];
  for (const [tag, name] of pollName) {
    const trim = trims.get(tag);
    // A trim marker drops the white space (space, tab, CR, LF) of the text next to it, as Go does.
    const before = body.slice(last, tag.start);
    source += trim?.left ? before.replace(/[ \t\r\n]+$/, "") : before;
    shifts.push({ at: source.length, orig: tag.start });
    source += `${tag.open}${name}${tag.close}`;
    last = tag.end;
    if (trim?.right) while (last < body.length && " \t\r\n".includes(body[last]!)) last++;
    shifts.push({ at: source.length, orig: last });
  }
  source += body.slice(last);
  const toOriginal = (offset: number): number => {
    let best = { at: 0, orig: 0 };
    for (const s of shifts) if (s.at <= offset) best = s;
    return best.orig + (offset - best.at);
  };

  let tokens: unknown[];
  try {
    // A fresh Writer per parse: a Writer caches every template string it has parsed.
    tokens = new Mustache.Writer().parse(source, ["{{", "}}"]) as unknown[];
  } catch (err) {
    // Our scan should have caught everything mustache.js rejects; this is the safety net.
    const msg = err instanceof Error ? err.message : "cannot parse";
    const at = /at (\d+)$/.exec(msg);
    throw new BodyError(`mustache: ${excerpt(msg.replace(/ at \d+$/, ""), 80)}`, at ? toOriginal(Number(at[1])) : 0);
  }
  return { source, polls, pollOffsets, used, tokens };
}
