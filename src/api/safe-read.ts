/**
 * The one way emissary reads a file it did not write: secrets, the config, the URL file, token
 * and AppRole files, CA and client certificates. Anything that is not a regular file is refused:
 * a FIFO, socket or device would otherwise block a thread of libuv's small pool for good (opening
 * a FIFO waits for a writer) or never end (`/dev/zero`), and a few of them hang every file
 * operation of the daemon, writes included. So: open without blocking, check the type, read at
 * most `maxBytes + 1` bytes.
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";

/** Default size limit of {@link readRegularFile}: 16 MiB. */
export const READ_MAX_BYTES = 16 * 1024 * 1024;

/** Options for {@link readRegularFile}. */
export interface SafeReadOptions {
  /** Bytes beyond which the file is refused. @defaultValue {@link READ_MAX_BYTES} */
  readonly maxBytes?: number;
  /** Abandons the read (`ABORT_ERR`). */
  readonly signal?: AbortSignal;
  /**
   * Return at most `maxBytes + 1` bytes instead of throwing `EFBIG`, for callers that report the
   * size themselves. @defaultValue false
   */
  readonly truncate?: boolean;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function notRegular(path: string): Error {
  return Object.assign(new Error(`${path} is not a regular file (a FIFO, socket, device or directory is refused)`), { code: "ENOTREG", path });
}

function tooBig(path: string, max: number): Error {
  return Object.assign(new Error(`${path} is larger than ${max} bytes`), { code: "EFBIG", path });
}

/**
 * Reads a regular file, refusing anything else.
 * @throws an errno-style error (`ENOENT`, `EACCES`…); `ENOTREG` for a non-regular file; `EFBIG`
 * past the limit (unless `truncate`); `ABORT_ERR` when the signal fires
 */
export async function readRegularFile(path: string, opts: SafeReadOptions = {}): Promise<Buffer> {
  const max = opts.maxBytes ?? READ_MAX_BYTES;
  const fh = await open(path, OPEN_FLAGS);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(path);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      if (opts.signal?.aborted) throw Object.assign(new Error("aborted"), { code: "ABORT_ERR" });
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > max) {
        if (!opts.truncate) throw tooBig(path, max);
        break;
      }
    }
    return Buffer.concat(chunks, total);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** {@link readRegularFile} for start-up paths that are synchronous (the config file). */
export function readRegularFileSync(path: string, opts: Omit<SafeReadOptions, "signal"> = {}): Buffer {
  const max = opts.maxBytes ?? READ_MAX_BYTES;
  const fd = openSync(path, OPEN_FLAGS);
  try {
    if (!fstatSync(fd).isFile()) throw notRegular(path);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > max) {
        if (!opts.truncate) throw tooBig(path, max);
        break;
      }
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * A short reason for a failed {@link readRegularFile}, for error messages: the errno code, or
 * what `ENOTREG` and `EFBIG` mean. Never quotes the file's content.
 */
export function readFailure(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOTREG") return "not a regular file: a FIFO, socket or device is refused";
  if (code === "EFBIG") return (err as Error).message.replace(/^.* is /, "");
  return typeof code === "string" ? code : "error";
}
