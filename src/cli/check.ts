import type { Logger } from "pino";
import { bindTemplate } from "../bind.js";
import type { ResolvedConfig } from "../config.js";
import { globToRegExp } from "../glob.js";
import { BackendRegistry } from "../registry.js";
import { readTemplateDir } from "../template-dir.js";

/** One template in the `check` summary. */
export interface CheckEntry {
  readonly file: string;
  readonly ok: boolean;
  readonly dest?: string;
  readonly command?: readonly string[];
  readonly references?: readonly string[];
  readonly error?: { readonly message: string; readonly line?: number; readonly column?: number; readonly field?: string };
}

/** `emissary check`: parse and validate every template without fetching. Exit 0 or 2. */
export async function runCheck(config: ResolvedConfig, logger: Logger, json: boolean, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const registry = new BackendRegistry({
    settings: config.backends,
    env: process.env,
    logger,
    modules: config.modules,
    ...(config.configFile ? { configFile: config.configFile } : {}),
  });
  await registry.init();
  const files = await readTemplateDir(config.templates, globToRegExp(config.pattern));
  const entries: CheckEntry[] = [];
  for (const f of files ?? []) {
    const e = await bindTemplate(f, { registry, config, cwd: process.cwd() });
    if (e.template) {
      entries.push({ file: f.file, ok: true, dest: e.template.dest, ...(e.template.command ? { command: e.template.command } : {}), references: [...new Set(e.bindings.map((b) => b.label))] });
    } else {
      const err = e.error as { message: string; line?: number; column?: number; field?: string };
      entries.push({ file: f.file, ok: false, error: { message: err.message, ...(err.line ? { line: err.line } : {}), ...(err.column ? { column: err.column } : {}), ...(err.field ? { field: err.field } : {}) } });
    }
  }
  await registry.close();
  const errors = entries.filter((e) => !e.ok).length + (files ? 0 : 1);
  if (json) {
    out(JSON.stringify({ ok: errors === 0, templatesDir: config.templates, pattern: config.pattern, directoryExists: files !== undefined, templates: entries }, null, 2) + "\n");
  } else {
    if (!files) out(`error: template directory ${config.templates} does not exist\n`);
    for (const e of entries) {
      if (e.ok) out(`ok     ${e.file} -> ${e.dest}${e.references!.length ? ` (${e.references!.join(", ")})` : ""}\n`);
      else out(`error  ${e.error!.message}\n`);
    }
    out(`${entries.length} template(s) in ${config.templates}, ${errors} error(s)\n`);
  }
  return errors > 0 ? 2 : 0;
}
