/**
 * Opens (and creates) a destination's directory without following a symlink someone planted in
 * its path, and names entries inside it so nobody can redirect them afterwards.
 *
 * Emissary usually runs as root, and a destination's ancestor may be writable by another user.
 * Going by path — `mkdir -p` then `chmod` — lets that user swap a directory for a symlink between
 * the two calls, and root then chmods whatever the link points at. So the walk goes one component
 * at a time through file descriptors: each directory is opened `O_DIRECTORY|O_NOFOLLOW` relative to
 * the one opened before it, created `0700` and only then `fchmod`ed `0755` through its own
 * descriptor, and the temp file and the rename happen inside the directory that was opened.
 *
 * Node has no `openat`/`mkdirat`. On Linux `/proc/self/fd/<fd>/<name>` gives the same semantics:
 * `/proc/self/fd/<fd>` is a "magic link" — the kernel resolves it by jumping to the open file's
 * own mount and dentry (`proc_fd_link()` → `nd_jump_link()` in fs/proc), not by reading a path —
 * so `<name>` is looked up in the very directory that was opened, wherever it has been moved to
 * since (proc_pid_fd(5), openat2(2) on magic links; gnulib emulates `openat` the same way). Where
 * /proc is not mounted, the walk falls back to checking each component with `lstat` before using
 * it by path, and says once that this is not race-free.
 *
 * A symlink in the path is followed only when it is owned by root or by emissary's own user (as
 * `/var/run → /run`); one owned by anybody else is refused.
 */
import { constants, promises as fsp, type Stats } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "../api/log.js";
import { WriteError } from "../api/errors.js";
import { selfIds, writableBy } from "../config/permissions.js";

/** `O_PATH` where Node does not export it: the generic Linux value (x86, arm, riscv, s390, ppc). */
const O_PATH = process.platform === "linux" && ["x64", "ia32", "arm", "arm64", "riscv64", "s390x", "ppc64", "loong64"].includes(process.arch) ? 0o10000000 : 0;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** As many symlinks as the kernel follows in one lookup (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;
/** How often a component is retried when it appears or vanishes while it is being created. */
const MAX_ATTEMPTS = 8;

/** A directory opened by {@link openDestDir}. */
export interface OpenedDir {
  /** Its path, with every symlink resolved: for messages. */
  readonly path: string;
  /** True when entries are named through `/proc/self/fd` (race-free); false on the lstat fallback. */
  readonly pinned: boolean;
  /** A path naming `name` inside this very directory (`/proc/self/fd/N/name`, or `path/name`). */
  entry(name: string): string;
  /** A path naming the directory itself, for readdir. */
  self(): string;
  /** fsyncs the directory (errors are thrown; the caller decides). */
  sync(): Promise<void>;
  /** Closes its descriptor. Never throws. */
  close(): Promise<void>;
}

/** Options for {@link openDestDir}. */
export interface OpenDirOptions {
  /** Create missing directories (`0755`, whatever the umask). */
  readonly create: boolean;
  /** The destination the directory is opened for: named in errors. */
  readonly forPath: string;
  /** Receives the warnings (directories others can write, the /proc fallback). */
  readonly logger?: Logger;
  /** Warn about directories others can write. @defaultValue true */
  readonly warn?: boolean;
  /**
   * Use the lstat fallback even where /proc works, to test it.
   * @internal
   */
  readonly noProc?: boolean;
}

class Dir implements OpenedDir {
  constructor(
    private readonly fh: fsp.FileHandle,
    readonly path: string,
    readonly pinned: boolean,
  ) {}
  entry(name: string): string {
    return this.pinned ? `/proc/self/fd/${this.fh.fd}/${name}` : join(this.path, name);
  }
  self(): string {
    return this.pinned ? `/proc/self/fd/${this.fh.fd}` : this.path;
  }
  sync(): Promise<void> {
    return this.fh.sync();
  }
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function withCode(message: string, code: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

let procWorks: Promise<boolean> | undefined;
/**
 * True when `/proc/self/fd/<fd>` of an open directory resolves to that very directory (same
 * device and inode). Checked once per process.
 */
function procFdWorks(): Promise<boolean> {
  procWorks ??= (async () => {
    if (process.platform !== "linux") return false;
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open("/", DIR_FLAGS);
      const [a, b] = await Promise.all([fh.stat(), fsp.stat(`/proc/self/fd/${fh.fd}`)]);
      return a.dev === b.dev && a.ino === b.ino;
    } catch {
      return false;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  })();
  return procWorks;
}

/** Warnings already given, so a destination written every minute does not repeat them. */
const warned = new Set<string>();

function warnOnce(logger: Logger | undefined, key: string, fields: Record<string, unknown>, msg: string): void {
  if (!logger || warned.has(key)) return;
  warned.add(key);
  logger.warn(fields, msg);
}

/** What the walk found at one component. */
type Found = { kind: "dir"; fh: fsp.FileHandle; st: Stats } | { kind: "link"; target: string };

/** The state of a walk: where it is, and what it still has to look up. */
interface Walk {
  readonly opts: OpenDirOptions;
  readonly self: { uid: number; gid: number } | undefined;
  readonly pinned: boolean;
  /** Directories passed, with their stat, for the writable-by-others warnings. */
  readonly seen: { path: string; st: Stats }[];
}

function refuseLink(w: Walk, linkPath: string, uid: number): never {
  throw new WriteError(
    `cannot write ${w.opts.forPath}: ${linkPath} is a symlink owned by uid ${uid}, neither root nor emissary's user; refusing to follow it (whoever owns it chooses where the secret goes)`,
    w.opts.forPath,
  );
}

/** May the walk follow this symlink? Root's and emissary's own are trusted; others' are refused. */
function checkLink(w: Walk, linkPath: string, st: Stats): void {
  if (!w.self) return; // no uids (Windows): nothing to compare
  if (st.uid !== 0 && st.uid !== w.self.uid) refuseLink(w, linkPath, st.uid);
}

/**
 * After creating a directory: it must be the one we made. When it is not ours (someone swapped
 * it in between mkdir and open), it is refused — unless nobody else could have written the
 * parent, and the owner differs only because the file system says so (NFS root squash, vfat).
 */
function checkCreated(w: Walk, path: string, st: Stats, parent: Stats): void {
  if (!w.self || st.uid === w.self.uid) return;
  if (writableBy(parent, w.self) === undefined) return;
  throw new WriteError(
    `cannot write ${w.opts.forPath}: the directory ${path} emissary just created was replaced by one owned by uid ${st.uid} before it could be opened; refusing to use it`,
    w.opts.forPath,
  );
}

/** Opens a directory entry without following a symlink; with O_PATH when it cannot be read. */
async function openDirAt(at: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(at, DIR_FLAGS);
  } catch (err) {
    // A directory emissary may search but not read (0711): O_PATH still pins it.
    if (errnoOf(err) !== "EACCES" || O_PATH === 0) throw err;
    return await fsp.open(at, O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  }
}

/** {@link openDirAt} and fstat; the descriptor is closed when the stat fails. */
async function openAndStat(at: string): Promise<{ fh: fsp.FileHandle; st: Stats }> {
  const fh = await openDirAt(at);
  try {
    return { fh, st: await fh.stat() };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Looks up `name` in the directory `parent` (open as `parentFh` when pinned), creating it when
 * missing and asked to. Returns the opened directory, or the target of a trusted symlink.
 */
async function lookup(w: Walk, parent: { fh: fsp.FileHandle; path: string; st: Stats }, name: string): Promise<Found> {
  const at = w.pinned ? `/proc/self/fd/${parent.fh.fd}/${name}` : join(parent.path, name);
  const shown = join(parent.path, name);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    let code: string | undefined;
    let first: unknown;
    if (w.pinned) {
      try {
        return { kind: "dir", ...(await openAndStat(at)) };
      } catch (err) {
        code = errnoOf(err);
        first = err;
      }
    } else {
      // Fallback: look before going in. A swap between this lstat and the open below is still
      // possible; the open refuses a symlink and the inode comparison a different directory.
      try {
        const st = await fsp.lstat(at);
        if (st.isSymbolicLink()) code = "ELOOP";
        else if (!st.isDirectory()) code = "ENOTDIR";
        else {
          const opened = await openAndStat(at);
          if (opened.st.dev === st.dev && opened.st.ino === st.ino) return { kind: "dir", ...opened };
          await opened.fh.close();
          continue; // swapped between lstat and open: look again
        }
      } catch (err) {
        code = errnoOf(err);
        first = err;
      }
    }
    if (code === "ENOENT" && w.opts.create) {
      try {
        await fsp.mkdir(at, 0o700); // 0700 until it is verified and fchmod'ed
      } catch (err) {
        if (errnoOf(err) === "EEXIST") continue; // appeared meanwhile: look again
        throw err;
      }
      let fh: fsp.FileHandle;
      try {
        fh = await openDirAt(at);
      } catch (err) {
        const c = errnoOf(err);
        if (c === "ENOENT" || c === "ENOTDIR" || c === "ELOOP") continue; // swapped or removed: look again
        throw err;
      }
      try {
        const st = await fh.stat();
        checkCreated(w, shown, st, parent.st);
        await fh.chmod(0o755); // through the descriptor: never a path someone can swap
        return { kind: "dir", fh, st: await fh.stat() };
      } catch (err) {
        await fh.close().catch(() => undefined);
        throw err;
      }
    }
    if (code === "ENOTDIR" || code === "ELOOP") {
      let st: Stats;
      try {
        st = await fsp.lstat(at);
      } catch (err) {
        if (errnoOf(err) === "ENOENT") continue;
        throw err;
      }
      if (st.isSymbolicLink()) {
        checkLink(w, shown, st);
        return { kind: "link", target: await fsp.readlink(at) };
      }
      if (st.isDirectory()) continue; // a symlink was replaced by a directory meanwhile
      throw first ?? withCode(`${shown} is not a directory`, "ENOTDIR");
    }
    throw first ?? withCode(`${shown}: lookup failed`, code ?? "EIO");
  }
  throw withCode(`${shown} kept changing while it was being opened`, "EAGAIN");
}

function components(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

/** Warns about directories on the way that others can write (once per directory and mode). */
function warnWritable(w: Walk): void {
  if (w.opts.warn === false || !w.self || !w.opts.logger) return;
  const last = w.seen.length - 1;
  w.seen.forEach(({ path, st }, i) => {
    const by = writableBy(st, w.self!);
    if (!by) return;
    const sticky = (st.mode & 0o1000) !== 0;
    const mode = "0" + (st.mode & 0o7777).toString(8).padStart(3, "0");
    if (i === last) {
      warnOnce(
        w.opts.logger,
        `dest\0${path}\0${st.mode}\0${st.uid}\0${st.gid}`,
        { dir: path, mode, writableBy: by },
        sticky && !by.startsWith("owner")
          ? "others can create files in the directory of this destination (sticky: they cannot replace emissary's): they can take the name before emissary's first write"
          : "others can write the directory of this destination: they can replace or remove the file after emissary writes it",
      );
    } else if (!sticky || by.startsWith("owner")) {
      warnOnce(
        w.opts.logger,
        `above\0${path}\0${st.mode}\0${st.uid}\0${st.gid}`,
        { dir: path, mode, writableBy: by, dest: w.opts.forPath },
        "others can write a directory above this destination: they can move the directories below it away and put their own in their place",
      );
    }
  });
}

/**
 * Opens the directory `dir` for a write to `opts.forPath`, creating missing directories `0755`
 * when `opts.create` — without ever following a symlink owned by another user, and (where
 * /proc works) without a window in which a swapped path is used. The caller must `close()` it.
 *
 * @throws {@link WriteError} when the path crosses a symlink owned by another user, or a directory
 *   emissary created was replaced; the underlying errno error (ENOENT, ENOTDIR, EACCES, ELOOP…)
 *   for anything else.
 */
export async function openDestDir(dir: string, opts: OpenDirOptions): Promise<OpenedDir> {
  const pinned = !opts.noProc && (await procFdWorks());
  if (!pinned) {
    warnOnce(
      opts.logger,
      "noproc",
      {},
      "/proc/self/fd is not available: destination directories are checked with lstat before use, which a user who can write one of them could still race",
    );
  }
  const w: Walk = { opts, self: selfIds(), pinned, seen: [] };
  let cur = { ...(await openAndStat("/")), path: "/" };
  try {
    w.seen.push({ path: "/", st: cur.st });
    const todo = components(resolve(dir));
    let links = 0;
    while (todo.length > 0) {
      const name = todo.shift()!;
      if (name === "..") {
        // The real parent of the directory we hold (the kernel stops at "/").
        const up = dirname(cur.path);
        const opened = await openAndStat(pinned ? `/proc/self/fd/${cur.fh.fd}/..` : up);
        await cur.fh.close().catch(() => undefined);
        cur = { ...opened, path: up };
        w.seen.push({ path: up, st: cur.st });
        continue;
      }
      const found = await lookup(w, cur, name);
      if (found.kind === "link") {
        if (++links > MAX_SYMLINKS) throw withCode(`too many symlinks on the way to ${dir}`, "ELOOP");
        todo.unshift(...components(found.target));
        if (found.target.startsWith("/")) {
          const opened = await openAndStat("/");
          await cur.fh.close().catch(() => undefined);
          cur = { ...opened, path: "/" };
        }
        continue;
      }
      await cur.fh.close().catch(() => undefined);
      cur = { fh: found.fh, path: join(cur.path, name), st: found.st };
      w.seen.push({ path: cur.path, st: cur.st });
    }
  } catch (err) {
    await cur.fh.close().catch(() => undefined);
    throw err;
  }
  // Only the directories on the final path matter (not those left behind by a "..").
  const onPath = new Set<string>();
  for (let p = cur.path; ; p = dirname(p)) {
    onPath.add(p);
    if (dirname(p) === p) break;
  }
  const finalSeen = new Map<string, Stats>();
  for (const s of w.seen) if (onPath.has(s.path)) finalSeen.set(s.path, s.st);
  w.seen.length = 0;
  for (const [path, st] of [...finalSeen].sort((a, b) => a[0].length - b[0].length)) w.seen.push({ path, st });
  warnWritable(w);
  return new Dir(cur.fh, cur.path, pinned);
}
