/**
 * Converts a file-name glob (`*.tpl`, `app-?.tpl`, `*.{tpl,tmpl}`, `[ab]*.tpl`) into a RegExp
 * matching a base name. Not recursive: `/` never matches.
 * @throws Error naming the pattern when a `{` is not closed or a `[…]` class is invalid (`[z-a]`).
 */
export function globToRegExp(glob: string): RegExp {
  let re = "^";
  let inGroup = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end === -1) re += "\\[";
      else {
        let cls = glob.slice(i + 1, end);
        if (cls.startsWith("!")) cls = "^" + cls.slice(1);
        re += `[${cls.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (c === "{") {
      inGroup++;
      re += "(?:";
    } else if (c === "}" && inGroup > 0) {
      inGroup--;
      re += ")";
    } else if (c === "," && inGroup > 0) re += "|";
    else re += c.replace(/[.+^$()|\\]/g, "\\$&");
  }
  if (inGroup > 0) throw new Error(`pattern "${glob}" has an unclosed "{"`);
  try {
    return new RegExp(re + "$");
  } catch {
    // A character class such as [z-a]: say which pattern, not the generated expression.
    throw new Error(`pattern "${glob}" has an invalid character class`);
  }
}
