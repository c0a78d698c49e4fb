/**
 * The file backend's reads: the keyed hash of a file for the watch, and what a failed read means
 * for a fetch (not there yet, retry, or an error retrying will not fix).
 * @module
 */
import { FatalError, SecretNotFoundError, TransientError, contentVersion, readRegularFile } from "../../src/api/index.js";

/** Errno codes that mean "the file is not there (yet)". */
const NOT_FOUND_CODES = new Set(["ENOENT", "ENOTDIR"]);
/** Errno codes that retrying soon will not fix. */
const FATAL_CODES = new Set(["EACCES", "EPERM", "EISDIR", "ELOOP", "ENAMETOOLONG"]);

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Hash of the file's bytes; `null` when it does not exist; `err:CODE` when it cannot be read. */
export async function readHash(path: string, maxBytes: number): Promise<string | null> {
  try {
    return contentVersion(await readRegularFile(path, { maxBytes, truncate: true }));
  } catch (err) {
    const code = errnoOf(err) ?? "UNKNOWN";
    return NOT_FOUND_CODES.has(code) ? null : `err:${code}`;
  }
}

/**
 * The error a fetch throws for a failed read of `path`: {@link SecretNotFoundError} (not there
 * yet), {@link FatalError} (permission, not a regular file, …) or {@link TransientError}.
 * Names the path and the errno code, never content.
 */
export function readError(path: string, err: unknown, aborted: boolean): Error {
  const code = errnoOf(err);
  if (code !== undefined && NOT_FOUND_CODES.has(code)) return new SecretNotFoundError(`file:${path}: no such file`);
  if (code === "ABORT_ERR" || aborted) return new TransientError(`file:${path}: read aborted`);
  if (code === "EACCES" || code === "EPERM") return new FatalError(`file:${path}: permission denied (${code}); check the file's owner and mode`, { cause: err });
  if (code === "ENOTREG") return new FatalError(`file:${path}: not a regular file (a FIFO, socket, device or directory)`);
  if (code !== undefined && FATAL_CODES.has(code)) return new FatalError(`file:${path}: cannot be read (${code})`, { cause: err });
  return new TransientError(`file:${path}: read failed (${code ?? "unknown error"})`, { cause: err });
}
