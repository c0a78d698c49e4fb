import type { Logger } from "pino";
import { bindTemplate } from "../templates/bind.js";
import type { ResolvedConfig } from "../config/resolve.js";
import { globToRegExp } from "../config/glob.js";
import { BackendRegistry } from "../sources/registry.js";
import { readTemplateDir } from "../templates/template-dir.js";

/** Version of the `check --json` document; bumped only on incompatible changes. */
export const CHECK_SCHEMA_VERSION = 1;

/** Where and why a check failed. Messages never quote secret values (check fetches nothing). */
export interface CheckError {
  readonly message: string;
  /** Stable machine-readable code when known (`TEMPLATE`, `CONFIG`, `NO_TEMPLATE_DIR`). */
  readonly code?: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly field?: string;
}

/** A set-up failure (a backend module that does not load, an unreadable directory) as a {@link CheckError}. */
export function setupError(err: unknown): CheckError {
  const e = err as { message?: unknown; code?: unknown; file?: unknown; field?: unknown };
  return {
    message: typeof e?.message === "string" ? e.message : String(err),
    ...(typeof e?.code === "string" ? { code: e.code } : {}),
    ...(typeof e?.file === "string" ? { file: e.file } : {}),
    ...(typeof e?.field === "string" ? { field: e.field } : {}),
  };
}

/** One declared secret of a valid template. */
export interface CheckSecret {
  /** The name the body uses (`__poll_N` for a legacy `{{poll}}`). */
  readonly name: string;
  /** The reference as written (`vault:secret/nomad#token`). */
  readonly ref: string;
  /** Canonical backend name (`insecure` is reported as `http`). */
  readonly backend: string;
  /** A `default:` is declared (its text is not reported). */
  readonly hasDefault: boolean;
  /** The body uses it (only used names hold a render back). */
  readonly used: boolean;
  /** Long form `encoding:`, `decode:` and `escape:`, when given. */
  readonly encoding?: string;
  readonly decode?: string;
  readonly escape?: string;
}

/** One template in the `check` summary. */
export interface CheckEntry {
  readonly file: string;
  readonly ok: boolean;
  readonly dest?: string;
  /** Destination mode as 4 octal digits, e.g. `"0600"`. */
  readonly mode?: string;
  readonly owner?: string | number;
  readonly group?: string | number;
  readonly command?: readonly string[];
  readonly commandTimeoutMs?: number;
  readonly escape?: string;
  readonly wait?: { readonly minMs: number; readonly maxMs: number };
  readonly refreshMs?: number;
  /** `splay` and `min_interval` of the command, when set (front matter or `defaults:`). */
  readonly splayMs?: number;
  readonly minIntervalMs?: number;
  /** Unique references as written. */
  readonly references?: readonly string[];
  /** Backends the template uses, sorted. */
  readonly backends?: readonly string[];
  readonly secrets?: readonly CheckSecret[];
  readonly error?: CheckError;
}

/** The `emissary check --json` document. */
export interface CheckReport {
  readonly schemaVersion: typeof CHECK_SCHEMA_VERSION;
  /** No error at all: what exit code 0 means. */
  readonly ok: boolean;
  readonly templatesDir: string;
  readonly pattern: string;
  readonly directoryExists: boolean;
  readonly summary: { readonly templates: number; readonly valid: number; readonly invalid: number; readonly errors: number };
  /** Backends the valid templates use, sorted. */
  readonly backends: readonly string[];
  /** Unique references of the valid templates, as written, sorted. */
  readonly references: readonly string[];
  /** Every error: the invalid templates' and any other (missing directory, backend module). */
  readonly errors: readonly CheckError[];
  readonly templates: readonly CheckEntry[];
}

/** Options for {@link buildCheckReport}. */
export interface CheckOptions {
  /** @defaultValue process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** @defaultValue process.cwd() */
  readonly cwd?: string;
  /**
   * Throw errors that are not about one template (a backend module that does not load) instead
   * of reporting them. @defaultValue false
   */
  readonly throwSetupErrors?: boolean;
}

/**
 * Builds the `check` report: parses and validates every template without fetching anything.
 * Never throws for a bad template; nor, unless asked, for a backend module: it is reported.
 */
export async function buildCheckReport(config: ResolvedConfig, logger: Logger, opts: CheckOptions = {}): Promise<CheckReport> {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const errors: CheckError[] = [];
  const entries: CheckEntry[] = [];
  const registry = new BackendRegistry({
    settings: config.backends,
    env,
    logger,
    modules: config.modules,
    ...(config.configFile ? { configFile: config.configFile } : {}),
  });
  let files: Awaited<ReturnType<typeof readTemplateDir>>;
  try {
    files = await readTemplateDir(config.templates, globToRegExp(config.pattern));
    await registry.init();
    if (!files) errors.push({ message: `template directory ${config.templates} does not exist`, code: "NO_TEMPLATE_DIR", file: config.templates });
    for (const f of files ?? []) {
      const e = await bindTemplate(f, { registry, config, cwd });
      const t = e.template;
      if (t) {
        const secrets = e.bindings.map(
          (b): CheckSecret => ({
            name: b.name,
            ref: b.label,
            backend: e.backends?.get(b.key)?.name ?? b.spec.ref.backend,
            hasDefault: b.spec.default !== undefined,
            used: t.used.has(b.name),
            ...(b.spec.encoding !== undefined ? { encoding: b.spec.encoding } : {}),
            ...(b.spec.decode !== undefined ? { decode: b.spec.decode } : {}),
            ...(b.spec.escape !== undefined ? { escape: b.spec.escape } : {}),
          }),
        );
        entries.push({
          file: f.file,
          ok: true,
          dest: t.dest,
          mode: t.mode.toString(8).padStart(4, "0"),
          ...(t.owner !== undefined ? { owner: t.owner } : {}),
          ...(t.group !== undefined ? { group: t.group } : {}),
          ...(t.command ? { command: t.command, commandTimeoutMs: t.commandTimeoutMs } : {}),
          escape: t.escape,
          ...(t.wait ? { wait: { minMs: t.wait.minMs, maxMs: t.wait.maxMs } } : {}),
          ...(t.refreshMs !== undefined ? { refreshMs: t.refreshMs } : {}),
          ...(t.command && t.splayMs > 0 ? { splayMs: t.splayMs } : {}),
          ...(t.command && t.minIntervalMs > 0 ? { minIntervalMs: t.minIntervalMs } : {}),
          references: [...new Set(secrets.map((s) => s.ref))],
          backends: [...new Set(secrets.map((s) => s.backend))].sort(),
          secrets,
        });
      } else {
        const err = e.error as { message: string; code?: unknown; line?: number; column?: number; field?: string };
        const error: CheckError = {
          message: err.message,
          ...(typeof err.code === "string" ? { code: err.code } : {}),
          file: f.file,
          ...(err.line ? { line: err.line } : {}),
          ...(err.column ? { column: err.column } : {}),
          ...(err.field ? { field: err.field } : {}),
        };
        errors.push(error);
        entries.push({ file: f.file, ok: false, error });
      }
    }
  } catch (err) {
    // A backend module that does not load, or an unreadable directory.
    if (opts.throwSetupErrors) throw err;
    errors.push(setupError(err));
  } finally {
    await registry.close().catch(() => undefined);
  }
  const valid = entries.filter((e) => e.ok);
  return {
    schemaVersion: CHECK_SCHEMA_VERSION,
    ok: errors.length === 0,
    templatesDir: config.templates,
    pattern: config.pattern,
    directoryExists: files !== undefined,
    summary: { templates: entries.length, valid: valid.length, invalid: entries.length - valid.length, errors: errors.length },
    backends: [...new Set(valid.flatMap((e) => e.backends ?? []))].sort(),
    references: [...new Set(valid.flatMap((e) => e.references ?? []))].sort(),
    errors,
    templates: entries,
  };
}

/**
 * `emissary check`: parse and validate every template without fetching. Exit 0, or 2 when
 * anything is wrong. With `json`, stdout is one {@link CheckReport} document and nothing else.
 */
export async function runCheck(config: ResolvedConfig, logger: Logger, json: boolean, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  // Text mode keeps the CLI's usual handling of setup errors (message on stderr, exit 2).
  const report = await buildCheckReport(config, logger, { throwSetupErrors: !json });
  if (json) {
    out(JSON.stringify(report, null, 2) + "\n");
  } else {
    if (!report.directoryExists) out(`error: template directory ${config.templates} does not exist\n`);
    for (const e of report.templates) {
      if (e.ok) out(`ok     ${e.file} -> ${e.dest}${e.references!.length ? ` (${e.references!.join(", ")})` : ""}\n`);
      else out(`error  ${e.error!.message}\n`);
    }
    out(`${report.templates.length} template(s) in ${config.templates}, ${report.errors.length} error(s)\n`);
  }
  return report.ok ? 0 : 2;
}
