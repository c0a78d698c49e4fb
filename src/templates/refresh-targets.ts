/**
 * Which references an operator's refresh names: `emissary refresh [REF|TEMPLATE…]`. A name is a
 * template (its path, its file name, or its file name without the extension) or a reference
 * (as written in a template, with or without `#field`, or as its key in /status). No name means
 * every reference.
 * @module
 */
import { basename, extname, relative } from "node:path";
import { EmissaryError } from "../api/errors.js";
import type { TemplateEntry } from "./entry.js";

/** What to refresh. Every list is optional; none at all means everything. */
export interface RefreshSelection {
  /** Names of either kind, as `emissary refresh` takes them. */
  readonly names?: readonly string[];
  /** References: as written (`vault:secret/nomad#token`), without `#field`, or a /status key. */
  readonly refs?: readonly string[];
  /** Templates: path, file name, or file name without extension. */
  readonly templates?: readonly string[];
}

/** One reference to refresh. */
export interface RefreshTarget {
  /** Reference key (`vault:secret/nomad`). */
  readonly key: string;
  readonly backend: string;
  /** Template files that use it. */
  readonly templates: readonly string[];
}

/** A refresh named something no template uses. CLI exit code 2; HTTP 404. */
export class UnknownNameError extends EmissaryError {
  readonly code = "UNKNOWN_NAME" as const;
  /** The names that matched nothing, as given. */
  readonly names: readonly string[];
  constructor(names: readonly string[]) {
    super(`no template uses ${names.map((n) => JSON.stringify(n)).join(", ")} (name a template file or a reference as a template writes it)`);
    this.names = names;
  }
}

function templateNames(file: string, dir: string | undefined): string[] {
  const base = basename(file);
  const out = [file, base, base.slice(0, base.length - extname(base).length)];
  if (dir !== undefined) out.push(relative(dir, file));
  return out;
}

function refNames(e: TemplateEntry, b: TemplateEntry["bindings"][number]): string[] {
  const out = [b.key, b.label];
  const hash = b.label.indexOf("#");
  if (hash !== -1) out.push(b.label.slice(0, hash));
  const ref = e.refs?.get(b.key);
  if (ref) out.push(`${ref.backend}:${ref.id}`);
  return out;
}

/**
 * The references `sel` names, in template order, each once.
 * @param dir - the template directory, so a path relative to it names a template too
 * @throws {@link UnknownNameError} listing every name that matched nothing
 */
export function selectReferences(entries: readonly TemplateEntry[], sel: RefreshSelection, dir?: string): RefreshTarget[] {
  const all = new Map<string, { backend: string; templates: string[] }>();
  for (const e of entries) {
    for (const b of e.bindings) {
      let t = all.get(b.key);
      if (!t) all.set(b.key, (t = { backend: e.backends?.get(b.key)?.name ?? b.spec.ref.backend, templates: [] }));
      if (!t.templates.includes(e.file)) t.templates.push(e.file);
    }
  }
  const names = sel.names ?? [];
  const refs = sel.refs ?? [];
  const templates = sel.templates ?? [];
  const chosen = new Set<string>();
  if (names.length + refs.length + templates.length === 0) {
    for (const k of all.keys()) chosen.add(k);
  } else {
    const unknown: string[] = [];
    const byTemplate = (n: string): boolean => {
      const hits = entries.filter((e) => templateNames(e.file, dir).includes(n));
      for (const e of hits) for (const b of e.bindings) chosen.add(b.key);
      return hits.length > 0;
    };
    const byRef = (n: string): boolean => {
      let hit = false;
      for (const e of entries) {
        for (const b of e.bindings) {
          if (refNames(e, b).includes(n)) {
            chosen.add(b.key);
            hit = true;
          }
        }
      }
      return hit;
    };
    for (const n of templates) if (!byTemplate(n)) unknown.push(n);
    for (const n of refs) if (!byRef(n)) unknown.push(n);
    for (const n of names) {
      const t = byTemplate(n);
      if (!byRef(n) && !t) unknown.push(n);
    }
    if (unknown.length > 0) throw new UnknownNameError(unknown);
  }
  return [...all].filter(([k]) => chosen.has(k)).map(([key, t]) => ({ key, backend: t.backend, templates: t.templates }));
}
