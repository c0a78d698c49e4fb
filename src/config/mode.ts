/**
 * File modes as templates and the config's `defaults.mode` write them.
 * @module
 */
import { TemplateError } from "../api/errors.js";

/** One line, at most `max` characters, for quoting a bad value in an error. */
function shorten(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/**
 * Reads a file mode written as 3 or 4 octal digits: `0400`, `400`, `0o400`, `"0640"`.
 *
 * Give `rawSource` (the scalar as written in the file) whenever there is one: YAML reads `0400`
 * as 400 or as 256 depending on the schema, and only the source text says what the user meant.
 * Without it a string is read as written and a number by its decimal digits (`400` → `0o400`).
 *
 * @returns the mode as a number (`0o640` = 416)
 * @throws {@link TemplateError} with field `mode` (and no location) when it is not 3 or 4 octal digits
 */
export function parseMode(raw: unknown, rawSource?: string): number {
  let text: string | undefined = rawSource;
  if (text === undefined) {
    if (typeof raw === "string") text = raw;
    else if (typeof raw === "number" && Number.isSafeInteger(raw) && raw >= 0) text = String(raw);
  }
  const shown = text !== undefined ? `"${shorten(text, 20)}"` : typeof raw === "object" ? (raw === null ? "nothing" : "a collection") : `"${shorten(String(raw), 20)}"`;
  const m = text === undefined ? null : /^(?:0o)?([0-7]{3,4})$/i.exec(text.trim());
  if (!m) throw new TemplateError(`must be 3 or 4 octal digits, like 0640 or "0640" (got ${shown})`, { field: "mode" });
  return parseInt(m[1]!, 8);
}

