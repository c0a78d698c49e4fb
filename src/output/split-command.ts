/**
 * Splits a command string into argv the way a POSIX shell splits words — without a shell.
 * Kept apart from the executor so the template parser can validate `command:` at load time.
 */

/** A command as a template gives it: a string (split like a shell, no shell) or an argv list. */
export type CommandSpec = string | readonly string[];

const SHELL_HINT =
  'commands are not run through a shell; write command: ["/bin/sh", "-c", "..."] if you want one';

/** Characters a shell treats as operators when unquoted. */
const OPERATOR_CHARS = new Set(["|", "&", ";", "<", ">"]);

function operatorError(what: string): Error {
  return new Error(`shell syntax ${what} is not supported: ${SHELL_HINT}`);
}

/**
 * Splits `cmd` into words like a POSIX shell: single quotes (everything literal), double quotes
 * (backslash escapes only `"` `\` `$` `` ` `` and newline), backslash escapes outside quotes,
 * runs of whitespace separate words. `$VAR` is not expanded: it stays literal.
 *
 * @throws Error with a clear reason on an unclosed quote, a trailing backslash, an empty command,
 *   or shell syntax that only a shell could honour — unquoted `&&` `||` `|` `;` `&` `<` `>` `>>`
 *   (alone or inside a word, as a shell would read them), and `$(` or a backtick outside single
 *   quotes. The message says to use `["/bin/sh", "-c", "..."]` when a shell is wanted.
 */
export function splitCommand(cmd: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false; // distinguishes an empty quoted word ('') from no word at all
  let i = 0;
  const n = cmd.length;
  const end = (): void => {
    if (inWord) words.push(word);
    word = "";
    inWord = false;
  };
  while (i < n) {
    const c = cmd[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      end();
      i++;
    } else if (c === "'") {
      const close = cmd.indexOf("'", i + 1);
      if (close < 0) throw new Error(`unclosed single quote at column ${i + 1}`);
      word += cmd.slice(i + 1, close);
      inWord = true;
      i = close + 1;
    } else if (c === '"') {
      const start = i;
      i++;
      inWord = true;
      for (;;) {
        if (i >= n) throw new Error(`unclosed double quote at column ${start + 1}`);
        const d = cmd[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\" && i + 1 < n && '"\\$`\n'.includes(cmd[i + 1]!)) {
          if (cmd[i + 1] !== "\n") word += cmd[i + 1]; // backslash-newline is a line continuation
          i += 2;
          continue;
        }
        if (d === "`") throw operatorError("` (command substitution)");
        if (d === "$" && cmd[i + 1] === "(") throw operatorError("$( (command substitution)");
        word += d;
        i++;
      }
    } else if (c === "\\") {
      if (i + 1 >= n) throw new Error("command ends with a backslash that escapes nothing");
      if (cmd[i + 1] !== "\n") {
        word += cmd[i + 1];
        inWord = true;
      }
      i += 2;
    } else if (c === "`") {
      throw operatorError("` (command substitution)");
    } else if (c === "$" && cmd[i + 1] === "(") {
      throw operatorError("$( (command substitution)");
    } else if (OPERATOR_CHARS.has(c)) {
      let op = c;
      while (i + op.length < n && OPERATOR_CHARS.has(cmd[i + op.length]!) && op.length < 2) op += cmd[i + op.length];
      throw operatorError(`"${op}"`);
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  end();
  if (words.length === 0) throw new Error("command is empty");
  return words;
}

/**
 * Turns a {@link CommandSpec} into argv: strings go through {@link splitCommand}; lists are
 * copied as they are (no splitting, no quoting rules).
 * @throws Error when the command is empty or cannot be split.
 */
export function toArgv(spec: CommandSpec): string[] {
  if (typeof spec === "string") return splitCommand(spec);
  if (spec.length === 0) throw new Error("command is empty");
  if (spec[0] === "") throw new Error("command name is empty");
  return [...spec];
}
