// @ts-check
/**
 * Writes the same workload for each tool: emissary templates (YAML front matter + mustache) and
 * consul-template configurations (HCL, strings JSON-quoted, which HCL accepts).
 * @module
 */
import { mkdirSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";

/**
 * Empties and recreates a directory.
 * @param {string} dir
 * @returns {string} dir
 */
export function freshDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Writes a file atomically (temp file + rename), as Kubernetes, editors and LinuxKit do: a
 * reader never sees it half-written.
 * @param {string} path
 * @param {string} text
 */
export function writeAtomic(path, text) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * @typedef {object} EmissaryTemplate
 * @property {string} file - template file name (ends in .tpl)
 * @property {string} dest - absolute destination
 * @property {string[]} [command] - argv run after a write
 * @property {Record<string, string>} secrets - name → reference
 * @property {string} body - mustache body
 * @property {string} [refresh] - per-template refresh
 */

/**
 * Writes emissary templates into `dir`.
 * @param {string} dir
 * @param {readonly EmissaryTemplate[]} templates
 */
export function writeEmissaryTemplates(dir, templates) {
  mkdirSync(dir, { recursive: true });
  for (const t of templates) {
    const lines = ["---", `dest: ${JSON.stringify(t.dest)}`];
    if (t.command) lines.push(`command: ${JSON.stringify(t.command)}`);
    if (t.refresh) lines.push(`refresh: ${t.refresh}`);
    lines.push("secrets:");
    for (const [name, ref] of Object.entries(t.secrets)) lines.push(`  ${name}: ${JSON.stringify(ref)}`);
    lines.push("---");
    writeFileSync(join(dir, t.file), lines.join("\n") + "\n" + t.body);
  }
}

/**
 * @typedef {object} CtTemplate
 * @property {string} source - absolute path of the .ctmpl file (written by the caller)
 * @property {string} dest
 * @property {string[]} [command]
 */

/**
 * Writes a consul-template HCL configuration.
 * @param {string} file
 * @param {{ templates: readonly CtTemplate[], vault?: { address: string, token: string, defaultLeaseDuration?: string }, logLevel?: string }} o
 */
export function writeConsulTemplateConfig(file, o) {
  const q = JSON.stringify;
  const out = [];
  if (o.logLevel) out.push(`log_level = ${q(o.logLevel)}`);
  if (o.vault) {
    out.push("vault {", `  address = ${q(o.vault.address)}`, `  token = ${q(o.vault.token)}`, "  renew_token = false");
    if (o.vault.defaultLeaseDuration) out.push(`  default_lease_duration = ${q(o.vault.defaultLeaseDuration)}`);
    out.push("}");
  }
  for (const t of o.templates) {
    out.push("template {", `  source = ${q(t.source)}`, `  destination = ${q(t.dest)}`);
    if (t.command) out.push(`  command = [${t.command.map((c) => q(c)).join(", ")}]`);
    out.push("}");
  }
  writeFileSync(file, out.join("\n") + "\n");
}
