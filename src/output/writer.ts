/**
 * Atomic file writer. Knows nothing of templates: it is given bytes, a mode and an owner, and
 * makes the destination hold exactly those — or leaves it untouched and throws a {@link WriteError}.
 *
 * Order of a write (SPEC "Behaviour"): open the destination's directory, creating missing parents
 * (0755) without following a symlink planted in the path (src/output/dirs.ts) → compare with what
 * is on disk → temp file in that very directory (O_EXCL|O_NOFOLLOW, 0600) → write → fsync →
 * fchown → fchmod → rename over the destination inside that directory → fsync the directory.
 * A symlink at the destination is replaced, never followed; a FIFO, socket or device there is
 * refused. When rename cannot work (EBUSY/EXDEV: a bind-mounted file) the destination is
 * rewritten in place.
 */
import { constants, promises as fsp, type Stats } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "../api/log.js";
import { WriteError } from "../api/errors.js";
import { SPECIAL_MODE_BITS, formatMode } from "../config/mode.js";
import { openDestDir, type OpenedDir } from "./dirs.js";
import { inFlight, tempNameFor } from "./temp-files.js";

export { cleanStaleTempFiles } from "./temp-files.js";
export { resolveOwner, type OwnerDatabase } from "./owner.js";

/** What {@link writeAtomic} is asked to do. */
export interface WriteRequest {
  /** Absolute destination path. */
  path: string;
  /** The exact bytes the destination must hold (a Buffer is a Uint8Array; strings are written as UTF-8). */
  content: string | Uint8Array;
  /** Permission bits, e.g. `0o600`. Setuid, setgid and sticky bits are refused. */
  mode: number;
  /**
   * Owner to chown to. When absent the owner is not compared, and a file being replaced keeps
   * its owner (best effort: only root can give a file away); a new file gets emissary's user.
   */
  uid?: number;
  /** Group to chown to. When absent, as for {@link WriteRequest.uid}. */
  gid?: number;
  /** Receives the warnings (in-place rewrite, world-writable mode, unsafe directories): paths and errno only, never content. */
  logger?: Logger;
  /**
   * Replaces file-system operations, for tests that must simulate failures (EBUSY/EXDEV on
   * rename) or observe the temp file before it is renamed. Not for production use.
   * @internal
   */
  fsOps?: Partial<WriterFsOps>;
  /**
   * Walk the destination's directories with the lstat fallback even where /proc works.
   * @internal
   */
  noProc?: boolean;
}

/** Why a write happened. */
export type WriteReason = "created" | "content" | "mode" | "owner" | "symlink";

/** What {@link writeAtomic} did. */
export interface WriteResult {
  /** False when the destination already held these bytes, mode and owner: nothing was touched. */
  changed: boolean;
  /** True when the destination was rewritten in place because rename failed (EBUSY/EXDEV). */
  inPlace: boolean;
  /** The first difference found, when `changed`. */
  reason?: WriteReason;
}

/**
 * The file-system operations the writer uses that a test may want to replace.
 * @internal
 */
export interface WriterFsOps {
  /**
   * Opens (creates) the temp file: called with the temp path, open flags and mode 0o600. On the
   * in-place path (EBUSY/EXDEV) it also opens the destination itself, without O_CREAT. Paths name
   * the entry inside the opened directory (`/proc/self/fd/N/<name>` on Linux).
   */
  open(path: string, flags: number, mode: number): Promise<fsp.FileHandle>;
  /** Renames the temp file over the destination. Called with the temp path and the destination, as for `open`. */
  rename(from: string, to: string): Promise<void>;
}

const defaultFsOps: WriterFsOps = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
};

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function writeError(path: string, what: string, err: unknown): WriteError {
  const errno = errnoOf(err);
  // The message names the path and errno only: never the content, never the raw error message.
  return new WriteError(`cannot write ${path}: ${what} failed${errno ? ` (${errno})` : ""}`, path, errno, { cause: err });
}

/** The owner of the regular file being replaced, kept for the ids the request leaves out. */
interface Existing {
  uid: number;
  gid: number;
}

/** What a non-regular, non-directory file at the destination is, for the refusal. */
function specialKind(st: Stats): string | undefined {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return undefined;
}

/**
 * Compares the destination (`name` in the opened directory `d`) with the request. Returns the
 * first difference (undefined if identical) and the owner of the regular file currently there.
 * @throws {@link WriteError} when a FIFO, socket or device is there: it is never replaced.
 */
async function diff(req: WriteRequest, d: OpenedDir, name: string, content: Buffer, mode: number): Promise<{ reason?: WriteReason; existing?: Existing }> {
  let st: Stats;
  try {
    st = await fsp.lstat(d.entry(name));
  } catch {
    // ENOENT, or ENOTDIR and friends: let the write attempt produce the real error.
    return { reason: "created" };
  }
  if (st.isSymbolicLink()) return { reason: "symlink" };
  const special = specialKind(st);
  if (special) {
    // rename() would silently replace it with a regular file holding the secret; whoever put a
    // pipe or a device there expects something else to happen. Leave it alone, and say so.
    throw new WriteError(`cannot write ${req.path}: it is ${special}, not a regular file; refusing to replace it (remove it, or point dest elsewhere)`, req.path);
  }
  if (!st.isFile()) return { reason: "content" }; // a directory: the rename reports why it cannot
  const existing = { uid: st.uid, gid: st.gid };
  if (st.size !== content.length) return { reason: "content", existing };
  let onDisk: Buffer;
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(d.entry(name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const now = await fh.stat();
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) return { reason: "content", existing }; // replaced meanwhile
    onDisk = await fh.readFile();
  } catch {
    return { reason: "content", existing }; // unreadable: rewrite it
  } finally {
    await fh?.close().catch(() => undefined);
  }
  if (!onDisk.equals(content)) return { reason: "content", existing };
  if ((st.mode & 0o7777) !== mode) return { reason: "mode", existing };
  if (req.uid !== undefined && st.uid !== req.uid) return { reason: "owner", existing };
  if (req.gid !== undefined && st.gid !== req.gid) return { reason: "owner", existing };
  return { existing };
}

async function fsyncDir(d: OpenedDir, logger?: Logger): Promise<void> {
  try {
    await d.sync();
  } catch (err) {
    // The rename has happened: the new file is in place. Some file systems refuse to fsync a
    // directory (EINVAL), and a directory opened O_PATH cannot be; failing the write now would
    // wrongly claim the old file is still there.
    logger?.debug({ dir: d.path, errno: errnoOf(err) }, "could not fsync directory after rename");
  }
}

/**
 * Applies the final owner, then the final mode, to the new file — in that order: a chown clears
 * setuid/setgid bits, and the file must not carry its final (possibly group- or world-readable)
 * mode while it still has the old owner and group. Ids the request leaves out are carried over
 * from the file being replaced — "not given" means "not changed", and a rename would otherwise
 * hand the file to emissary's own user. That carry-over is best effort: a non-root emissary
 * cannot give a file away, and it did not ask to.
 */
async function applyOwnerMode(fh: fsp.FileHandle, req: WriteRequest, mode: number, existing?: Existing): Promise<void> {
  const uid = req.uid ?? existing?.uid;
  const gid = req.gid ?? existing?.gid;
  // No owner asked for and none to carry over (a new file): nothing to compare, no fstat.
  const cur = uid === undefined && gid === undefined ? undefined : await fh.stat();
  if (cur && ((uid !== undefined && uid !== cur.uid) || (gid !== undefined && gid !== cur.gid))) {
    try {
      await fh.chown(uid ?? -1, gid ?? -1);
    } catch (err) {
      if (req.uid !== undefined || req.gid !== undefined) {
        if (uid === req.uid && gid === req.gid) throw err;
        await fh.chown(req.uid ?? -1, req.gid ?? -1);
      }
    }
  }
  await fh.chmod(mode);
}

/**
 * Rewrites the destination in place, for bind-mounted files that cannot be renamed over.
 * The final owner and mode are applied before the file is emptied and the secret written: the
 * file being replaced may be world-readable, and the new content must never be. Only a regular
 * file with a single link is rewritten: through a hard link the secret would land in another file.
 */
async function writeInPlace(req: WriteRequest, d: OpenedDir, name: string, content: Buffer, mode: number, ops: WriterFsOps): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  let step = "open (in place)";
  try {
    fh = await ops.open(d.entry(name), constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
    const st = await fh.stat();
    if (!st.isFile()) throw new WriteError(`cannot write ${req.path} in place: it is ${specialKind(st) ?? "not a regular file"}; refusing to write into it`, req.path);
    if (st.nlink > 1) throw new WriteError(`cannot write ${req.path} in place: it has ${st.nlink} hard links, and the secret would land in every one of them`, req.path);
    step = "chown/chmod (in place)";
    await applyOwnerMode(fh, req, mode);
    step = "truncate (in place)";
    await fh.truncate(0);
    step = "write (in place)";
    await fh.writeFile(content);
    step = "fsync (in place)";
    await fh.sync();
    step = "close (in place)";
    const h = fh;
    fh = undefined;
    await h.close();
  } catch (err) {
    if (err instanceof WriteError) throw err;
    throw writeError(req.path, step, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Destinations already warned about for a world-writable mode (once per destination and mode). */
const warnedModes = new Set<string>();

/**
 * Makes `req.path` hold exactly `req.content` with `req.mode` (and owner, when given), atomically.
 *
 * Nothing is touched when the destination already matches (`changed: false`). On failure the temp
 * file is removed, the old destination is untouched, and a {@link WriteError} naming the path and
 * errno is thrown. When rename fails with EBUSY or EXDEV (a bind-mounted destination) the file is
 * rewritten in place, a warning is logged, and the result says `inPlace: true`.
 *
 * @throws {@link WriteError} also when the mode carries a setuid, setgid or sticky bit, when the
 *   path crosses a symlink owned by another user, and when a FIFO, socket or device is at the
 *   destination.
 */
export async function writeAtomic(req: WriteRequest): Promise<WriteResult> {
  const w = prepareWrite(req);
  let d: OpenedDir;
  try {
    d = await openDestDir(dirname(w.path), { create: true, forPath: req.path, ...(req.logger ? { logger: req.logger } : {}), ...(req.noProc ? { noProc: true } : {}) });
  } catch (err) {
    if (err instanceof WriteError) throw err;
    throw writeError(req.path, "opening or creating the parent directory", err);
  }
  try {
    return await writeInDir(w, d, true);
  } finally {
    await d.close();
  }
}

/**
 * A checked {@link WriteRequest}, ready for {@link writeInDir}.
 * @internal
 */
export interface PreparedWrite {
  readonly req: WriteRequest;
  readonly content: Buffer;
  readonly mode: number;
  readonly ops: WriterFsOps;
  /** The absolute destination. */
  readonly path: string;
  readonly name: string;
}

/**
 * Checks a request (the mode's special bits; warns once about a world-writable mode).
 * @throws {@link WriteError} for a setuid, setgid or sticky bit
 * @internal
 */
export function prepareWrite(req: WriteRequest): PreparedWrite {
  const c = req.content;
  const content = typeof c === "string" ? Buffer.from(c, "utf8") : Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  if (req.mode & SPECIAL_MODE_BITS) {
    throw new WriteError(`cannot write ${req.path}: mode ${formatMode(req.mode)} carries a setuid, setgid or sticky bit, which emissary does not set`, req.path);
  }
  const mode = req.mode & 0o777;
  if (mode & 0o002 && req.logger && !warnedModes.has(`${req.path}\0${mode}`)) {
    warnedModes.add(`${req.path}\0${mode}`);
    req.logger.warn({ dest: req.path, mode: formatMode(mode) }, `mode ${formatMode(mode)} lets every user on the machine change ${req.path}`);
  }
  const path = resolve(req.path);
  return { req, content, mode, ops: { ...defaultFsOps, ...req.fsOps }, path, name: basename(path) };
}

/**
 * The write itself, inside the already opened destination directory `d`. With `syncDir` false
 * the directory is not fsynced after the rename: the caller fsyncs it once after every rename
 * of a batch into it (src/output/batch.ts), before any of them is reported written.
 * @internal
 */
export async function writeInDir(w: PreparedWrite, d: OpenedDir, syncDir: boolean): Promise<WriteResult> {
  const { reason, existing } = await diff(w.req, d, w.name, w.content, w.mode);
  if (reason === undefined) return { changed: false, inPlace: false };
  return await replace(w.req, d, w.name, w.content, w.mode, w.ops, reason, existing, syncDir);
}

/** fsyncs a directory after renames into it; a refusal is logged at debug and not an error. @internal */
export { fsyncDir };

/** The temp file + rename part of {@link writeAtomic}, inside the opened directory `d`. */
async function replace(
  req: WriteRequest,
  d: OpenedDir,
  name: string,
  content: Buffer,
  mode: number,
  ops: WriterFsOps,
  reason: WriteReason,
  existing: Existing | undefined,
  syncDir: boolean,
): Promise<WriteResult> {
  const tmpName = tempNameFor(name);
  const tmp = d.entry(tmpName);
  inFlight.add(tmpName);
  let fh: fsp.FileHandle | undefined;
  let created = false;
  let step = "create temp file";
  try {
    fh = await ops.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    created = true;
    // open()'s mode is filtered by the umask, which can only remove bits — but be explicit:
    // the temp file holds the secret before its final mode is applied.
    step = "chmod temp file";
    await fh.chmod(0o600);
    step = "write";
    await fh.writeFile(content);
    step = "fsync";
    await fh.sync();
    step = "chown/chmod";
    await applyOwnerMode(fh, req, mode, existing);
    step = "close";
    const h = fh;
    fh = undefined;
    await h.close();
    step = "rename";
    try {
      await ops.rename(tmp, d.entry(name));
    } catch (err) {
      const errno = errnoOf(err);
      if (errno !== "EBUSY" && errno !== "EXDEV") throw err;
      req.logger?.warn(
        { dest: req.path, errno },
        `cannot rename over ${req.path} (${errno}: a bind-mounted file?); rewriting it in place, which is not atomic`,
      );
      await writeInPlace(req, d, name, content, mode, ops);
      await fsp.unlink(tmp).catch(() => undefined);
      created = false;
      return { changed: true, inPlace: true, reason };
    }
    created = false; // the temp file is now the destination
    if (syncDir) await fsyncDir(d, req.logger);
    return { changed: true, inPlace: false, reason };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    if (created) await fsp.unlink(tmp).catch(() => undefined);
    if (err instanceof WriteError) throw err;
    throw writeError(req.path, step, err);
  } finally {
    inFlight.delete(tmpName);
  }
}
