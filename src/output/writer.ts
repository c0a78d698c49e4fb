/**
 * Atomic file writer. Knows nothing of templates: it is given bytes, a mode and an owner, and
 * makes the destination hold exactly those — or leaves it untouched and throws a {@link WriteError}.
 *
 * Order of a write (SPEC "Behaviour"): compare with what is on disk → create missing parents (0755)
 * → temp file beside the destination (O_EXCL, 0600) → write → fsync → fchmod/fchown → rename over
 * the destination → fsync the directory. A symlink at the destination is replaced, never followed.
 * When rename cannot work (EBUSY/EXDEV: a bind-mounted file) the destination is rewritten in place.
 */
import { constants, promises as fsp } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { ConfigError, WriteError } from "../api/errors.js";
import type { Logger } from "../api/log.js";

/** What {@link writeAtomic} is asked to do. */
export interface WriteRequest {
  /** Absolute destination path. */
  path: string;
  /** The exact bytes the destination must hold (a Buffer is a Uint8Array; strings are written as UTF-8). */
  content: string | Uint8Array;
  /** Permission bits, e.g. `0o600`. Only `mode & 0o7777` is used. */
  mode: number;
  /**
   * Owner to chown to. When absent the owner is not compared, and a file being replaced keeps
   * its owner (best effort: only root can give a file away); a new file gets emissary's user.
   */
  uid?: number;
  /** Group to chown to. When absent, as for {@link WriteRequest.uid}. */
  gid?: number;
  /** Receives the in-place warning (path and errno only, never content). */
  logger?: Logger;
  /**
   * Replaces file-system operations, for tests that must simulate failures (EBUSY/EXDEV on
   * rename) or observe the temp file before it is renamed. Not for production use.
   * @internal
   */
  fsOps?: Partial<WriterFsOps>;
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
   * in-place path (EBUSY/EXDEV) it also opens the destination itself, without O_CREAT.
   */
  open(path: string, flags: number, mode: number): Promise<fsp.FileHandle>;
  /** Renames the temp file over the destination. Called with the temp path and the destination. */
  rename(from: string, to: string): Promise<void>;
}

const defaultFsOps: WriterFsOps = {
  open: (path, flags, mode) => fsp.open(path, flags, mode),
  rename: (from, to) => fsp.rename(from, to),
};

/** Matches the temp files this module creates: `.<basename>.emissary-<pid>-<hex>.tmp`. */
const TEMP_RE = /^\..*\.emissary-\d+-[0-9a-f]{12}\.tmp$/s;

/** Longest basename part kept in a temp name, in bytes, so the name stays under NAME_MAX (255). */
const MAX_BASE_BYTES = 200;

/** Temp files of writes in progress in this process: {@link cleanStaleTempFiles} leaves them alone. */
const inFlight = new Set<string>();

function tempPathFor(dest: string): string {
  let base = basename(dest);
  while (Buffer.byteLength(base) > MAX_BASE_BYTES) base = base.slice(0, -1);
  return join(dirname(dest), `.${base}.emissary-${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
}

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

/**
 * Compares the destination with the request. Returns the first difference (undefined if
 * identical) and the owner of the regular file currently there, if any.
 */
async function diff(req: WriteRequest, content: Buffer, mode: number): Promise<{ reason?: WriteReason; existing?: Existing }> {
  let st;
  try {
    st = await fsp.lstat(req.path);
  } catch {
    // ENOENT, or ENOTDIR and friends: let the write attempt produce the real error.
    return { reason: "created" };
  }
  if (st.isSymbolicLink()) return { reason: "symlink" };
  if (!st.isFile()) return { reason: "content" }; // a directory or device: the rename will report why it cannot
  const existing = { uid: st.uid, gid: st.gid };
  if (st.size !== content.length) return { reason: "content", existing };
  let onDisk: Buffer;
  try {
    onDisk = await fsp.readFile(req.path);
  } catch {
    return { reason: "content", existing }; // unreadable: rewrite it
  }
  if (!onDisk.equals(content)) return { reason: "content", existing };
  if ((st.mode & 0o7777) !== mode) return { reason: "mode", existing };
  if (req.uid !== undefined && st.uid !== req.uid) return { reason: "owner", existing };
  if (req.gid !== undefined && st.gid !== req.gid) return { reason: "owner", existing };
  return { existing };
}

/** Creates missing parents, each 0755 whatever the umask. */
async function ensureParent(dir: string): Promise<void> {
  const first = await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  // mkdir's mode is filtered by the umask; chmod every directory we created, top-down.
  const created: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    created.push(d);
    if (d === first || dirname(d) === d) break;
  }
  for (const d of created.reverse()) await fsp.chmod(d, 0o755);
}

async function fsyncDir(dir: string, logger?: Logger): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch (err) {
    // The rename has happened: the new file is in place. Some file systems refuse to fsync a
    // directory (EINVAL); failing the write now would wrongly claim the old file is still there.
    logger?.debug({ dir, errno: errnoOf(err) }, "could not fsync directory after rename");
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Applies the final mode and owner to the new file. Ids the request leaves out are carried over
 * from the file being replaced — "not given" means "not changed", and a rename would otherwise
 * hand the file to emissary's own user. That carry-over is best effort: a non-root emissary
 * cannot give a file away, and it did not ask to.
 */
async function applyModeOwner(fh: fsp.FileHandle, req: WriteRequest, mode: number, existing?: Existing): Promise<void> {
  await fh.chmod(mode);
  const cur = await fh.stat();
  const uid = req.uid ?? existing?.uid;
  const gid = req.gid ?? existing?.gid;
  if ((uid === undefined || uid === cur.uid) && (gid === undefined || gid === cur.gid)) return;
  try {
    await fh.chown(uid ?? -1, gid ?? -1);
  } catch (err) {
    if (req.uid === undefined && req.gid === undefined) return;
    if (uid === req.uid && gid === req.gid) throw err;
    await fh.chown(req.uid ?? -1, req.gid ?? -1);
  }
}

/**
 * Rewrites the destination in place, for bind-mounted files that cannot be renamed over.
 * The final mode and owner are applied before the file is emptied and the secret written: the
 * file being replaced may be world-readable, and the new content must never be.
 */
async function writeInPlace(req: WriteRequest, content: Buffer, mode: number, ops: WriterFsOps): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  let step = "open (in place)";
  try {
    fh = await ops.open(req.path, constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
    step = "chmod/chown (in place)";
    await applyModeOwner(fh, req, mode);
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
    throw writeError(req.path, step, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Makes `req.path` hold exactly `req.content` with `req.mode` (and owner, when given), atomically.
 *
 * Nothing is touched when the destination already matches (`changed: false`). On failure the temp
 * file is removed, the old destination is untouched, and a {@link WriteError} naming the path and
 * errno is thrown. When rename fails with EBUSY or EXDEV (a bind-mounted destination) the file is
 * rewritten in place, a warning is logged, and the result says `inPlace: true`.
 */
export async function writeAtomic(req: WriteRequest): Promise<WriteResult> {
  const c = req.content;
  const content = typeof c === "string" ? Buffer.from(c, "utf8") : Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  const mode = req.mode & 0o7777;
  const ops: WriterFsOps = { ...defaultFsOps, ...req.fsOps };

  const { reason, existing } = await diff(req, content, mode);
  if (reason === undefined) return { changed: false, inPlace: false };

  const dir = dirname(req.path);
  try {
    await ensureParent(dir);
  } catch (err) {
    throw writeError(req.path, "creating parent directory", err);
  }

  const tmp = tempPathFor(req.path);
  inFlight.add(tmp);
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
    step = "chmod/chown";
    await applyModeOwner(fh, req, mode, existing);
    step = "close";
    const h = fh;
    fh = undefined;
    await h.close();
    step = "rename";
    try {
      await ops.rename(tmp, req.path);
    } catch (err) {
      const errno = errnoOf(err);
      if (errno !== "EBUSY" && errno !== "EXDEV") throw err;
      req.logger?.warn(
        { dest: req.path, errno },
        `cannot rename over ${req.path} (${errno}: a bind-mounted file?); rewriting it in place, which is not atomic`,
      );
      await writeInPlace(req, content, mode, ops);
      await fsp.unlink(tmp).catch(() => undefined);
      return { changed: true, inPlace: true, reason };
    }
    created = false; // the temp file is now the destination
    await fsyncDir(dir, req.logger);
    return { changed: true, inPlace: false, reason };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    if (created) await fsp.unlink(tmp).catch(() => undefined);
    if (err instanceof WriteError) throw err;
    throw writeError(req.path, step, err);
  } finally {
    inFlight.delete(tmp);
  }
}

/**
 * Removes temp files a previous run left behind in `dir` (after a crash or SIGKILL mid-write).
 * Only names this module creates (`.<name>.emissary-<pid>-<hex>.tmp`) and only regular files are
 * removed; temp files of writes in progress in this process are left alone. A missing directory
 * counts as clean.
 * @returns how many files were removed.
 */
export async function cleanStaleTempFiles(dir: string, logger?: Logger): Promise<number> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === "ENOENT" || errno === "ENOTDIR") return 0;
    logger?.warn({ dir, errno }, "cannot list directory to remove stale temp files");
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!TEMP_RE.test(name)) continue;
    const p = join(dir, name);
    if (inFlight.has(p)) continue;
    try {
      const st = await fsp.lstat(p);
      if (!st.isFile()) continue;
      await fsp.unlink(p);
      removed++;
      logger?.info({ file: p }, "removed stale temp file");
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") logger?.warn({ file: p, errno: errnoOf(err) }, "cannot remove stale temp file");
    }
  }
  return removed;
}

/** Where {@link resolveOwner} looks names up. */
export interface OwnerDatabase {
  /** @defaultValue "/etc/passwd" */
  passwdFile?: string;
  /** @defaultValue "/etc/group" */
  groupFile?: string;
}

function parseId(value: string | number, what: "owner" | "group"): number | undefined {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe) {
      throw new ConfigError(`${what} ${value} is not a valid ${what === "owner" ? "uid" : "gid"}`, { field: what });
    }
    return value;
  }
  const s = value.trim();
  if (s === "") throw new ConfigError(`${what} is empty`, { field: what });
  if (/^\d+$/.test(s)) return parseId(Number(s), what);
  return undefined;
}

async function lookup(file: string, name: string, what: "owner" | "group"): Promise<number> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot look up ${what} "${name}": cannot read ${file} (${errnoOf(err) ?? "error"})`, { field: what });
  }
  // passwd: name:x:uid:gid:gecos:home:shell — group: name:x:gid:members. The id is field 3 in both.
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const fields = line.split(":");
    if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
  }
  const kind = what === "owner" ? "user" : "group";
  throw new ConfigError(`unknown ${kind} "${name}" (not found in ${file})`, { field: what });
}

/**
 * Turns a template's `owner` / `group` into numeric ids. Numbers and numeric strings are ids;
 * names are looked up in /etc/passwd and /etc/group (Node has no getpwnam). An absent value stays
 * absent: the writer then neither changes nor compares that id.
 * @throws ConfigError naming the user or group when it is unknown or invalid.
 */
export async function resolveOwner(
  owner?: string | number,
  group?: string | number,
  db: OwnerDatabase = {},
): Promise<{ uid?: number; gid?: number }> {
  const out: { uid?: number; gid?: number } = {};
  if (owner !== undefined && owner !== null) {
    const id = parseId(owner, "owner");
    out.uid = id ?? (await lookup(db.passwdFile ?? "/etc/passwd", String(owner).trim(), "owner"));
  }
  if (group !== undefined && group !== null) {
    const id = parseId(group, "group");
    out.gid = id ?? (await lookup(db.groupFile ?? "/etc/group", String(group).trim(), "group"));
  }
  return out;
}
