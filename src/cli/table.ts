/** Plain-text tables for the CLI's human output (`refresh`, `check --connect`). */

/**
 * Formats rows under a header, each column as wide as its widest cell, two spaces apart; the
 * last column is not padded. Control characters in cells are replaced, so a name cannot move
 * the terminal's cursor.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
  const all = [header, ...rows].map((r) => r.map(clean));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd() + "\n").join("");
}
