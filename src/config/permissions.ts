/**
 * Who, besides emissary's own user and root, can change a file or directory that decides what
 * emissary does: templates and their directory, the config file, backend modules, and the
 * directories destinations are written into. Emissary usually runs as root; whoever can write one
 * of those chooses what root runs or where secrets go.
 */
import { FS_CONCURRENCY, mapConcurrent } from "../api/concurrency.js";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../api/log.js";

/** Who, besides emissary's own user and root, can write a path. */
export interface WritableByOthers {
  /** The directory or file. */
  readonly path: string;
  /** Its permission bits, as `0777` (`01777` with the sticky bit). */
  readonly mode: string;
  /** `everyone`, `group GID` or `owner UID`. */
  readonly writableBy: string;
}

/** The parts of a stat result {@link writableBy} looks at. */
export interface OwnerAndMode {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** emissary's effective uid and gid, or undefined where uids do not exist (Windows). */
export function selfIds(): { uid: number; gid: number } | undefined {
  if (typeof process.geteuid !== "function" || typeof process.getegid !== "function") return undefined;
  return { uid: process.geteuid(), gid: process.getegid() };
}

/**
 * Who other than emissary's user and root can write a file with this owner and mode: `everyone`
 * (world-writable), `group GID` (group-writable by a group that is neither root's nor
 * emissary's), `owner UID` (owned by another user), or undefined.
 */
export function writableBy(st: OwnerAndMode, self: { uid: number; gid: number }): string | undefined {
  const bits = st.mode & 0o7777;
  if (bits & 0o002) return "everyone";
  if (bits & 0o020 && st.gid !== 0 && st.gid !== self.gid) return `group ${st.gid}`;
  if (st.uid !== 0 && st.uid !== self.uid) return `owner ${st.uid}`;
  return undefined;
}

/** `st.mode` as `0644` (`01777` with a special bit). */
function shownMode(mode: number): string {
  return "0" + (mode & 0o7777).toString(8).padStart(3, "0");
}

/**
 * Finds, among `dir` and `files`, the paths that someone other than emissary's user (or root) can
 * write — see {@link writableBy} — unless their file system is mounted read-only. Paths that do
 * not exist are skipped. Returns nothing where uids do not exist (Windows).
 */
export async function findWritableByOthers(dir: string | undefined, files: readonly string[]): Promise<WritableByOthers[]> {
  const self = selfIds();
  if (!self) return [];
  // One stat per path, in parallel (bounded), findings in the order of the paths.
  const found = await mapConcurrent(dir === undefined ? files : [dir, ...files], FS_CONCURRENCY, async (path): Promise<WritableByOthers | undefined> => {
    let st;
    try {
      st = await stat(path);
    } catch {
      return undefined; // removed meanwhile: the next scan settles it
    }
    const by = writableBy(st, self);
    // A read-only mount (Kubernetes ConfigMap volumes are 0777 but mounted read-only) is safe.
    if (!by || (await isReadOnlyMount(path))) return undefined;
    return { path, mode: shownMode(st.mode), writableBy: by };
  });
  return found.filter((f): f is WritableByOthers => f !== undefined);
}

/** True when `path` is on a file system mounted read-only (nobody can write it, whatever its mode). */
export async function isReadOnlyMount(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EROFS";
  }
}

/** A file whose permissions {@link warnWritableByOthers} checks, and what it is, for the message. */
export interface TrustedFile {
  readonly path: string;
  /** E.g. `the config file`, `this backend module`. */
  readonly what: string;
  /** What whoever can write it can do, e.g. `chooses the commands emissary runs`. */
  readonly risk: string;
}

/**
 * Warns (one line per finding, naming path, mode and who can write it) when a file that decides
 * what emissary runs — the config file, a backend module — or the directory holding it can be
 * written by someone other than emissary's user or root. A warning, not a refusal: the operator
 * may have reasons emissary cannot see.
 */
export async function warnWritableByOthers(files: readonly TrustedFile[], logger: Logger): Promise<void> {
  for (const f of files) {
    const dir = dirname(f.path);
    for (const found of await findWritableByOthers(dir, [f.path])) {
      const which = found.path === dir ? `the directory of ${f.what}` : f.what;
      logger.warn(
        { path: found.path, mode: found.mode, writableBy: found.writableBy, ...(found.path === dir ? { file: f.path } : {}) },
        `others can write ${which}: whoever edits it ${f.risk}`,
      );
    }
  }
}
