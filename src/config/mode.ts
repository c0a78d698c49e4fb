/**
 * File modes as templates and the config file write them (`mode: 0400`, `defaults.mode: "0640"`).
 * Shared by the template parser and the config resolver, so both accept and refuse the same values.
 */
import { TemplateError } from "../api/errors.js";

/** Bits a destination mode may not carry: setuid, setgid, sticky. */
export const SPECIAL_MODE_BITS = 0o7000;

function shown(text: string | undefined, raw: unknown): string {
  const cut = (s: string): string => {
    const one = s.replace(/\s+/g, " ");
    return one.length > 20 ? `${one.slice(0, 19)}…` : one;
  };
  if (text !== undefined) return `"${cut(text)}"`;
  if (typeof raw === "object") return raw === null ? "nothing" : "a collection";
  return `"${cut(String(raw))}"`;
}

/**
 * Reads a file mode written as 3 or 4 octal digits: `0400`, `400`, `0o400`, `"0640"`.
 *
 * Give `rawSource` (the scalar as written in the file) whenever there is one: YAML reads `0400`
 * as 400 or as 256 depending on the schema, and only the source text says what the user meant.
 * Without it a string is read as written and a number by its decimal digits (`400` → `0o400`).
 *
 * The setuid, setgid and sticky bits (`4755`, `2755`, `1777`) are refused: emissary writes
 * configuration and secrets, not programs, and a chown clears setuid/setgid anyway — the file
 * would then never match its mode, and be rewritten (and its command re-run) on every pass.
 *
 * @returns the mode as a number (`0o640` = 416)
 * @throws {@link TemplateError} with field `mode` (and no location) when it is not 3 or 4 octal
 *   digits, or carries a special bit
 */
export function parseMode(raw: unknown, rawSource?: string): number {
  let text: string | undefined = rawSource;
  if (text === undefined) {
    if (typeof raw === "string") text = raw;
    else if (typeof raw === "number" && Number.isSafeInteger(raw) && raw >= 0) text = String(raw);
  }
  const m = text === undefined ? null : /^(?:0o)?([0-7]{3,4})$/i.exec(text.trim());
  if (!m) throw new TemplateError(`must be 3 or 4 octal digits, like 0640 or "0640" (got ${shown(text, raw)})`, { field: "mode" });
  const mode = parseInt(m[1]!, 8);
  if (mode & SPECIAL_MODE_BITS) {
    const bits = [mode & 0o4000 ? "setuid" : "", mode & 0o2000 ? "setgid" : "", mode & 0o1000 ? "sticky" : ""].filter(Boolean).join(" and ");
    throw new TemplateError(
      `must not carry the ${bits} bit (got ${shown(text, raw)}): destinations are config and secret files, not programs or shared directories; use ${formatMode(mode & 0o777)}`,
      { field: "mode" },
    );
  }
  return mode;
}

/** `0o640` → `"0640"`. */
export function formatMode(mode: number): string {
  return "0" + (mode & 0o7777).toString(8).padStart(3, "0");
}
