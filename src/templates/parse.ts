/**
 * Template files: YAML front matter between `---` lines, then a mustache body (SPEC "Template
 * files"). {@link parseTemplate} turns the text of one file into a validated {@link Template}
 * without fetching anything; every problem is a {@link TemplateError} naming file, line, column
 * and field, in the original file.
 */
import { dirname, resolve } from "node:path";
import type { TemplateError } from "../api/errors.js";
import type { RefSpec } from "../api/refs.js";
import { analyzeBody, BodyError } from "./body.js";
import { parseFrontMatter, splitFrontMatter, type EscapeMode, type WaitSpec } from "./front-matter.js";
import { SourceFile } from "./source.js";

export { parseMode } from "../config/mode.js";
export { SECRET_NAME, FRONT_MATTER_KEYS, type EscapeMode, type WaitSpec } from "./front-matter.js";
export { GO_SYNTAX } from "./body.js";

/** Settings a template inherits when its front matter does not give them. */
export interface TemplateDefaults {
  /** File mode of the destination. @defaultValue 0o600 */
  mode: number;
  /** How long a command may run before SIGTERM. @defaultValue 30000 */
  commandTimeoutMs: number;
  /** Random wait before each command run, up to this. @defaultValue 0 */
  splayMs: number;
  /** Shortest time between two starts of the command. @defaultValue 0 */
  minIntervalMs: number;
}

/** The built-in {@link TemplateDefaults}. */
export const DEFAULT_TEMPLATE_SETTINGS: Readonly<TemplateDefaults> = Object.freeze({ mode: 0o600, commandTimeoutMs: 30_000, splayMs: 0, minIntervalMs: 0 });

/** One parsed, validated template file. Immutable by convention; safe to share between passes. */
export interface Template {
  /** Absolute path of the `.tpl` file. */
  readonly file: string;
  /** The template's directory: relative `file:` references resolve against it (done by the core). */
  readonly dir: string;
  /** Absolute destination; a relative `dest` is resolved against the working directory given to the parser. */
  readonly dest: string;
  /** File mode of the destination. @defaultValue 0o600 */
  readonly mode: number;
  /** Owner (user name or uid); unset leaves the owner alone. */
  readonly owner?: string | number;
  /** Group (name or gid); unset leaves the group alone. */
  readonly group?: string | number;
  /** argv to run after each write (a string `command:` is split like a shell, without a shell). */
  readonly command?: readonly string[];
  /** The command as written, for logs. */
  readonly commandText?: string;
  /** @defaultValue 30000 */
  readonly commandTimeoutMs: number;
  /** `splay`: before each command run, wait a uniformly random 0–splayMs. @defaultValue 0 (config `defaults.splay`) */
  readonly splayMs: number;
  /** `min_interval`: start the command at most once per this; writes in between coalesce into one run. @defaultValue 0 */
  readonly minIntervalMs: number;
  /** Quiescence: `wait: 2s` → min 2s, max 8s (4 × min, consul-template's rule). */
  readonly wait?: WaitSpec;
  /** Escaping of `{{name}}` output. @defaultValue "none" */
  readonly escape: EscapeMode;
  /** Re-fetch interval for this template's secrets, overriding each backend's default. */
  readonly refreshMs?: number;
  /** Declared names, then names synthesized for legacy `{{poll}}` calls (`__poll_1`, …), in order. */
  readonly secrets: ReadonlyMap<string, RefSpec>;
  /**
   * The names in {@link Template.secrets} that the body refers to. Only these gate rendering:
   * a declared but unused name never holds a template back.
   */
  readonly used: ReadonlySet<string>;
  /**
   * Where each name in {@link Template.secrets} is declared in the file: its key under `secrets:`
   * (field `secrets.NAME`), or its first `{{poll}}` (field `body`). For located errors about a
   * reference found later (unknown backend, bad ID).
   */
  readonly locations: ReadonlyMap<string, SecretLocation>;
  /** Pre-parsed mustache.js tokens of {@link Template.bodySource}. */
  readonly tokens: unknown[];
  /** The body after rewriting legacy polls: the text the tokens come from. */
  readonly bodySource: string;
}

/** A 1-based position in the template file, with the field it belongs to. */
export interface SecretLocation {
  readonly line: number;
  readonly column: number;
  readonly field: string;
}

/** Options of {@link parseTemplate}. */
export interface ParseTemplateOptions {
  /** Path of the template file (named in errors; made absolute against `cwd`). */
  file: string;
  /** Working directory: relative `dest` paths resolve against it. */
  cwd: string;
  /** Overrides of {@link DEFAULT_TEMPLATE_SETTINGS}. */
  defaults?: Partial<TemplateDefaults>;
}

/**
 * Parses and validates one template file without fetching anything.
 *
 * @param source - the whole file
 * @throws {@link TemplateError} with `file`, `line`, `column` (1-based, in the original file) and
 *   `field` (`front matter`, a key such as `mode` or `secrets.token`, or `body`)
 */
export function parseTemplate(source: string, opts: ParseTemplateOptions): Template {
  const src = new SourceFile(source, opts.file);
  const split = splitFrontMatter(src);
  const fm = parseFrontMatter(src, split);
  const file = resolve(opts.cwd, opts.file);
  const dest = resolve(opts.cwd, fm.dest);
  if (/[/\\]$/.test(fm.dest) || fm.dest.trim() === "." || fm.dest.trim() === "..") src.fail("dest must name a file, not a directory", fm.destOffset, "dest");
  if (dest === file) src.fail("dest is the template file itself", fm.destOffset, "dest");

  let body;
  try {
    body = analyzeBody(split.body, new Set(fm.secrets.keys()));
  } catch (err) {
    if (err instanceof BodyError) src.fail(err.reason, split.bodyOffset + err.offset, "body");
    throw err;
  }

  const defaults = { ...DEFAULT_TEMPLATE_SETTINGS, ...opts.defaults };
  const secrets = new Map<string, RefSpec>([...fm.secrets, ...body.polls]);
  const locations = new Map<string, SecretLocation>();
  for (const [name, offset] of fm.secretOffsets) locations.set(name, { ...src.position(offset), field: `secrets.${name}` });
  for (const [name, offset] of body.pollOffsets) locations.set(name, { ...src.position(split.bodyOffset + offset), field: "body" });
  const template: Template = {
    file,
    dir: dirname(file),
    dest,
    mode: fm.mode ?? defaults.mode,
    commandTimeoutMs: fm.commandTimeoutMs ?? defaults.commandTimeoutMs,
    splayMs: fm.splayMs ?? defaults.splayMs,
    minIntervalMs: fm.minIntervalMs ?? defaults.minIntervalMs,
    escape: fm.escape ?? "none",
    secrets,
    used: body.used,
    locations,
    tokens: body.tokens,
    bodySource: body.source,
    ...(fm.owner !== undefined ? { owner: fm.owner } : {}),
    ...(fm.group !== undefined ? { group: fm.group } : {}),
    ...(fm.command !== undefined ? { command: fm.command, commandText: fm.commandText ?? fm.command.join(" ") } : {}),
    ...(fm.wait !== undefined ? { wait: fm.wait } : {}),
    ...(fm.refreshMs !== undefined ? { refreshMs: fm.refreshMs } : {}),
  };
  return template;
}
