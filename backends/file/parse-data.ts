/**
 * The structured data of a JSON or YAML secret file, for `#field` references.
 * @module
 */
import { parseDocument } from "yaml";

/**
 * Parses JSON and YAML files so `#field` works. Never lets a parser's message out: parsers
 * quote the text they choke on.
 */
export function parseData(path: string, text: string): unknown {
  const lower = path.toLowerCase();
  try {
    if (lower.endsWith(".json")) return asStructured(JSON.parse(text));
    if (lower.endsWith(".yaml") || lower.endsWith(".yml")) {
      // parseDocument reports errors instead of throwing or printing them; a broken file has no data.
      const doc = parseDocument(text, { logLevel: "silent", uniqueKeys: true });
      return doc.errors.length > 0 ? undefined : asStructured(doc.toJS({ maxAliasCount: 100 }));
    }
    if (text.trimStart().startsWith("{")) return asStructured(JSON.parse(text));
  } catch {
    return undefined;
  }
  return undefined;
}

function asStructured(v: unknown): unknown {
  return v !== null && typeof v === "object" ? v : undefined;
}
