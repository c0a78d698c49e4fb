import type { Backend, SecretRef } from "../api/backend.js";
import { refKey } from "../api/backend.js";
import type { ResolvedConfig } from "../config/resolve.js";
import { TemplateError } from "../api/errors.js";
import type { BackendRegistry } from "../sources/registry.js";
import type { Binding, TemplateEntry } from "./entry.js";
import { parseTemplate } from "./parse.js";
import type { TemplateFile } from "./template-dir.js";

/** What {@link bindTemplate} needs. */
export interface BindContext {
  readonly registry: BackendRegistry;
  readonly config: ResolvedConfig;
  readonly cwd: string;
}

/**
 * Parses a template file and binds each declared secret to its backend and canonical reference
 * key. Any failure makes an `invalid` entry carrying a {@link TemplateError} with file, line,
 * column and field; it never throws.
 */
export async function bindTemplate(f: TemplateFile, ctx: BindContext): Promise<TemplateEntry> {
  const base = { file: f.file, source: f.source, pending: [], hasRendered: false, dirty: true, failed: false };
  try {
    if (f.readError !== undefined) throw new TemplateError(`cannot read the template (${f.readError})`, { file: f.file });
    const template = parseTemplate(f.source, {
      file: f.file,
      cwd: ctx.cwd,
      defaults: {
        mode: ctx.config.defaults.mode,
        commandTimeoutMs: ctx.config.defaults.commandTimeoutMs,
        splayMs: ctx.config.defaults.splayMs,
        minIntervalMs: ctx.config.defaults.minIntervalMs,
      },
    });
    const bindings: Binding[] = [];
    const backends = new Map<string, Backend>();
    const refs = new Map<string, SecretRef>();
    for (const [name, spec] of template.secrets) {
      const loc = template.locations.get(name) ?? locate(f.source, name, spec.ref.backend, spec.ref.id);
      const canonical = ctx.registry.canonical(spec.ref.backend);
      if (!canonical) {
        throw new TemplateError(`unknown backend "${spec.ref.backend}" in "${spec.text}" (known: ${ctx.registry.names().join(", ")})`, { file: f.file, ...loc });
      }
      let backend: Backend;
      try {
        backend = await ctx.registry.get(canonical);
      } catch (err) {
        throw new TemplateError(`backend "${canonical}" is not usable: ${(err as Error).message}`, { file: f.file, ...loc });
      }
      let ref: SecretRef = { ...spec.ref, backend: backend.name };
      try {
        ref = backend.resolve?.(ref, { baseDir: template.dir }) ?? ref;
        backend.validate?.(ref);
      } catch (err) {
        throw new TemplateError(`bad reference "${spec.text}": ${(err as Error).message}`, { file: f.file, ...loc });
      }
      // Declared but unused names are validated, not fetched: a template waits only for what it uses.
      if (!template.used.has(name)) continue;
      const key = refKey(ref);
      bindings.push({ name, spec, key, label: spec.text });
      backends.set(key, backend);
      refs.set(key, ref);
    }
    return { ...base, template, bindings, backends, refs, state: "pending" };
  } catch (err) {
    const error = err instanceof TemplateError ? err : new TemplateError(`cannot load template: ${(err as Error).message}`, { file: f.file });
    return { ...base, bindings: [], state: "invalid", error, lastError: error.message, failed: true, dirty: false };
  }
}

/** Line and column of a secret's declaration, for error messages. */
function locate(source: string, name: string, backend: string, id: string): { line?: number; column?: number; field: string } {
  const lines = source.split("\n");
  if (name.startsWith("__poll")) {
    for (let i = 0; i < lines.length; i++) {
      const col = lines[i]!.search(/\{\{-?\s*poll\b/);
      if (col !== -1 && lines[i]!.includes(backend) && lines[i]!.includes(id)) return { line: i + 1, column: col + 1, field: "poll" };
    }
    return { field: "poll" };
  }
  const re = new RegExp(`^(\\s*)["']?${name.replace(/[-]/g, "\\-")}["']?\\s*:`);
  for (let i = 0; i < lines.length; i++) {
    const m = re.exec(lines[i]!);
    if (m) return { line: i + 1, column: m[1]!.length + 1, field: `secrets.${name}` };
    if (i > 0 && lines[i]!.trim() === "---") break;
  }
  return { field: `secrets.${name}` };
}

/** One reference to schedule: the canonical ref, its backend and the shortest refresh asked for. */
export interface PlannedReference {
  readonly ref: SecretRef;
  readonly backend: Backend;
  readonly refreshMs: number;
  readonly label: string;
}

/**
 * The unique references a set of templates needs, keyed by reference key. Where several
 * templates use one reference, the shortest refresh wins: `refresh` of a template, else the
 * backend's default from `refreshFor`.
 */
export function planReferences(entries: readonly TemplateEntry[], refreshFor: (backend: Backend) => number): Map<string, PlannedReference> {
  const needed = new Map<string, PlannedReference>();
  for (const e of entries) {
    for (const b of e.bindings) {
      const backend = e.backends!.get(b.key)!;
      const refreshMs = e.template?.refreshMs ?? refreshFor(backend);
      const have = needed.get(b.key);
      if (!have || refreshMs < have.refreshMs) needed.set(b.key, { ref: e.refs!.get(b.key)!, backend, refreshMs, label: b.label });
    }
  }
  return needed;
}
