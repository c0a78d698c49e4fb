/**
 * The one way emissary reads a file it did not write: secrets, the config, the URL file, token
 * and AppRole files, CA and client certificates. Anything that is not a regular file is refused:
 * a FIFO, socket or device would otherwise block a thread of libuv's small pool for good (opening
 * a FIFO waits for a writer) or never end (`/dev/zero`), and a few of them hang every file
 * operation of the daemon, writes included. So: open without blocking, check the type, read at
 * most `maxBytes + 1` bytes.
 * @module
 */
import { close, closeSync, constants, fstat, fstatSync, open, openSync, read, readSync, type Stats } from "node:fs";

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
  // Callback fs, not fs/promises' FileHandle: a cold start reads a thousand files, and the
  // FileHandle objects, their promises and close tracking cost more than the reads themselves.
  const fd = await call<number>((cb) => open(path, OPEN_FLAGS, cb));
  try {
    const st = await call<Stats>((cb) => fstat(fd, cb));
    if (!st.isFile()) throw notRegular(path);
    const chunks: Buffer[] = [];
    let total = 0;
    // The first read is sized to the file, plus one byte to notice that it grew: one read for a
    // small file instead of a 64 KiB buffer and a second read to find the end. A short read of a
    // regular file is its end; a file that reports size 0 (/proc) is read until read() says so.
    let want = Math.min(st.size > 0 ? st.size + 1 : 8192, max + 1);
    for (;;) {
      if (opts.signal?.aborted) throw Object.assign(new Error("aborted"), { code: "ABORT_ERR" });
      const buf = Buffer.allocUnsafe(want);
      const n = await call<number>((cb) => read(fd, buf, 0, buf.length, null, cb));
      if (n > 0) {
        chunks.push(n === buf.length ? buf : buf.subarray(0, n));
        total += n;
      }
      if (total > max) {
        if (!opts.truncate) throw tooBig(path, max);
        break;
      }
      if (n === 0 || (st.size > 0 && n < buf.length)) break;
      want = Math.min(64 * 1024, max + 1 - total);
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    await call<void>((cb) => close(fd, cb)).catch(() => undefined);
  }
}

/** A Node callback-style call as a promise. */
function call<T>(fn: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
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
