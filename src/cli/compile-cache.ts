/**
 * Node's module compile cache (Node 22.1+; a no-op on Node 20): V8 keeps the compiled code of
 * the CLI bundle on disk, so a start does not parse and compile it again.
 *
 * emissary usually runs as root, and code read from a cache directory another user can write is
 * code that user runs as root. So the directory is `<state dir>/compile-cache` when the state
 * directory (`--state-dir`, `EMISSARY_STATE_DIR`, else /var/lib/emissary) already exists and is
 * private (it survives reboots, and systemd's PrivateTmp), else `<tmpdir>/emissary-compile-cache-<uid>`;
 * created 0700, and used only when it is a real directory (not a symlink), owned by us, with no
 * group or other permission bits, in a parent that others cannot rename it out of (not writable
 * by them, or sticky like /tmp). Anything else and the cache is skipped: it is only a speed-up.
 * The state directory itself is never created here.
 * `NODE_DISABLE_COMPILE_CACHE=1` turns it off; `NODE_COMPILE_CACHE=<dir>` (Node's own variable)
 * chooses the directory instead.
 * @module
 */
import { lstatSync, mkdirSync } from "node:fs";
import * as nodeModule from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

interface CompileCacheApi {
  enableCompileCache?: (dir?: string) => { status: number; directory?: string };
  flushCompileCache?: () => void;
}

const S_ISVTX = 0o1000;

/** True when `dir` is a directory only `uid` can change, and its parent cannot swap it. */
export function isPrivateDir(dir: string, uid: number): boolean {
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return false;
  const parent = lstatSync(dirname(dir));
  const othersCanWrite = (parent.mode & 0o022) !== 0;
  return parent.isDirectory() && (parent.uid === uid || parent.uid === 0) && (!othersCanWrite || (parent.mode & S_ISVTX) !== 0);
}

/** The state directory's default: `DEFAULT_STATE_DIR` of src/config/resolve.ts (not imported: it loads the config parser). */
export const DEFAULT_STATE_DIR = "/var/lib/emissary";

/** `dir`, created 0700 if missing, when it is private; undefined otherwise. */
function privateDir(dir: string, uid: number): string | undefined {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") return undefined;
  }
  return isPrivateDir(dir, uid) ? dir : undefined;
}

/** Where to look for the cache. */
export interface CompileCacheDirs {
  /** The state directory as the flags and environment give it; `""` = off. @defaultValue {@link DEFAULT_STATE_DIR} */
  readonly stateDir?: string;
  /** @defaultValue os.tmpdir() */
  readonly tmp?: string;
}

/**
 * Enables the compile cache in a private directory, when this Node has one and such a
 * directory can be had. Never throws.
 * @returns the directory in use, or undefined when the cache stays off
 */
export function enableCompileCache(api: CompileCacheApi = nodeModule as CompileCacheApi, dirs: CompileCacheDirs = {}): string | undefined {
  try {
    if (typeof api.enableCompileCache !== "function" || typeof process.getuid !== "function") return undefined;
    if (process.env.NODE_DISABLE_COMPILE_CACHE) return undefined;
    if (process.env.NODE_COMPILE_CACHE) return api.enableCompileCache().directory;
    const uid = process.getuid();
    const state = dirs.stateDir ?? DEFAULT_STATE_DIR;
    let dir: string | undefined;
    try {
      if (state.trim() !== "" && isPrivateDir(state, uid)) dir = privateDir(join(state, "compile-cache"), uid);
    } catch {
      /* no state directory (yet): the temporary directory then */
    }
    dir ??= privateDir(join(dirs.tmp ?? tmpdir(), `emissary-compile-cache-${uid}`), uid);
    if (dir === undefined) return undefined;
    return api.enableCompileCache(dir).directory;
  } catch {
    return undefined;
  }
}

/**
 * Writes what was compiled so far to the cache a few seconds from now (a daemon exits rarely,
 * and Node otherwise writes the cache at exit). The timer does not keep the process alive.
 */
export function flushCompileCacheSoon(api: CompileCacheApi = nodeModule as CompileCacheApi, delayMs = 5000): void {
  if (typeof api.flushCompileCache !== "function") return;
  setTimeout(() => {
    try {
      api.flushCompileCache!();
    } catch {
      /* only a speed-up */
    }
  }, delayMs).unref();
}
