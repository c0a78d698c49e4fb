/**
 * Offsets → 1-based line/column in a template file, and {@link TemplateError}s located there.
 * Every error the template parser throws goes through {@link SourceFile.fail}, so each one names
 * the file, line, column and field.
 */
import { TemplateError } from "../api/errors.js";

/** A 1-based position in a file. */
export interface Position {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, in UTF-16 code units. */
  readonly column: number;
}

/** The original text of one template file, for locating errors. */
export class SourceFile {
  private readonly lineStarts: number[] = [0];

  /**
   * @param text - the whole file as read (front matter and body)
   * @param file - the path to name in errors
   */
  constructor(
    readonly text: string,
    readonly file: string,
  ) {
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) this.lineStarts.push(i + 1);
  }

  /** The line and column of a 0-based offset into {@link SourceFile.text} (clamped to the text). */
  position(offset: number): Position {
    const off = Math.max(0, Math.min(Math.floor(offset), this.text.length));
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= off) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: off - this.lineStarts[lo]! + 1 };
  }

  /** A {@link TemplateError} at `offset`, blaming `field` (a front-matter key path, or `body`). */
  error(reason: string, offset: number, field: string, cause?: unknown): TemplateError {
    const { line, column } = this.position(offset);
    return new TemplateError(reason, { file: this.file, line, column, field }, cause === undefined ? undefined : { cause });
  }

  /** Throws {@link SourceFile.error}. */
  fail(reason: string, offset: number, field: string, cause?: unknown): never {
    throw this.error(reason, offset, field, cause);
  }
}

/** Shortens text quoted in an error message (template text is not secret, but may be long). */
export function excerpt(text: string, max = 40): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}
