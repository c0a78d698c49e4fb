/**
 * Names of the writer's temp files, and the start-up cleanup of those a killed process left behind.
 *
 * A temp file is named `.<basename>.emissary-<pid>-<pidns>-<hex>.tmp`: the pid of the process
 * writing it and its pid namespace (the inode of /proc/self/ns/pid, 0 where unknown), so another
 * emissary working in the same directory can tell whether the writer is still alive and leave
 * its in-flight temp file alone. Names of earlier versions (`.<basename>.emissary-<pid>-<hex>.tmp`,
 * no namespace) and those of another pid namespace (a container sharing the directory) cannot be
 * checked that way: they are removed only once they are old enough that no write can still be
 * using them.
 */
import { promises as fsp, readlinkSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "../api/log.js";
import { WriteError } from "../api/errors.js";
import { openDestDir } from "./dirs.js";

/** Current names: `.<base>.emissary-<pid>-<pidns>-<12 hex>.tmp`. */
const TEMP_RE = /^\..*\.emissary-(\d+)-(\d+)-[0-9a-f]{12}\.tmp$/s;
/** Names of earlier versions, without the namespace: `.<base>.emissary-<pid>-<12 hex>.tmp`. */
const LEGACY_TEMP_RE = /^\..*\.emissary-(\d+)-[0-9a-f]{12}\.tmp$/s;

/** Temp files that cannot be checked by pid are removed once they are this old. */
export const UNCHECKABLE_TEMP_MAX_AGE_MS = 10 * 60_000;

/** Longest basename part kept in a temp name, in bytes, so the name stays under NAME_MAX (255). */
const MAX_BASE_BYTES = 200;

/** Names of temp files of writes in progress in this process: the cleanup leaves them alone. */
export const inFlight = new Set<string>();

let namespace: string | undefined;
/** This process's pid namespace id (the inode in `pid:[4026531836]`), or "0" when unknown. */
export function pidNamespace(): string {
  if (namespace === undefined) {
    try {
      namespace = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1] ?? "0";
    } catch {
      namespace = "0";
    }
  }
  return namespace;
}

/** A fresh temp file name for a destination named `base`. */
export function tempNameFor(base: string): string {
  let b = base;
  while (Buffer.byteLength(b) > MAX_BASE_BYTES) b = b.slice(0, -1);
  return `.${b}.emissary-${process.pid}-${pidNamespace()}-${randomBytes(6).toString("hex")}.tmp`;
}

/** What a temp file's name says about the process that wrote it. */
export type TempOwner = { kind: "current"; pid: number; ns: string } | { kind: "legacy"; pid: number };

/** Parses a temp file name; undefined when it is not one of the writer's. */
export function parseTempName(name: string): TempOwner | undefined {
  const m = TEMP_RE.exec(name);
  if (m) return { kind: "current", pid: Number(m[1]), ns: m[2]! };
  const l = LEGACY_TEMP_RE.exec(name);
  if (l) return { kind: "legacy", pid: Number(l[1]) };
  return undefined;
}

/** True unless the kernel says no process has this pid (ESRCH). EPERM means it exists. */
export function pidAlive(pid: number): boolean {
  // pid 0 and negative pids would signal process groups; pids above 2^22 do not exist on Linux.
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fffffff) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Why a temp file may be removed now, or undefined to leave it. `ageMs` is how long ago it was
 * last modified.
 */
export function staleReason(owner: TempOwner, name: string, ageMs: number): string | undefined {
  if (owner.kind === "current" && owner.ns === pidNamespace()) {
    if (owner.pid === process.pid) return inFlight.has(name) ? undefined : "left by a failed write of this process";
    return pidAlive(owner.pid) ? undefined : "its process is gone";
  }
  // Another pid namespace, or an earlier version's name: the pid cannot be checked.
  if (ageMs < UNCHECKABLE_TEMP_MAX_AGE_MS) return undefined;
  return owner.kind === "legacy" ? "an earlier version's, and old" : "another pid namespace's, and old";
}

/**
 * Removes temp files a previous run left behind in `dir` (after a crash or SIGKILL mid-write).
 * Only names this module creates and only regular files are removed; a temp file whose process
 * is still alive — this one's writes in progress, or another emissary's on the same directory —
 * is left alone (see the module comment for names whose pid cannot be checked). A missing
 * directory counts as clean.
 * @returns how many files were removed.
 */
export async function cleanStaleTempFiles(dir: string, logger?: Logger): Promise<number> {
  let d;
  try {
    d = await openDestDir(dir, { create: false, forPath: dir, ...(logger ? { logger } : {}), warn: false });
  } catch (err) {
    const errno = (err as { code?: string }).code;
    if (errno === "ENOENT" || errno === "ENOTDIR") return 0;
    logger?.warn({ dir, ...(err instanceof WriteError ? { reason: err.message } : { errno }) }, "cannot open directory to remove stale temp files");
    return 0;
  }
  let removed = 0;
  try {
    let names: string[];
    try {
      names = await fsp.readdir(d.self());
    } catch (err) {
      logger?.warn({ dir, errno: (err as { code?: string }).code }, "cannot list directory to remove stale temp files");
      return 0;
    }
    const now = Date.now();
    for (const name of names) {
      const owner = parseTempName(name);
      if (!owner) continue;
      const file = join(d.path, name);
      try {
        const st = await fsp.lstat(d.entry(name));
        if (!st.isFile()) continue;
        const why = staleReason(owner, name, now - st.mtimeMs);
        if (why === undefined) continue;
        await fsp.unlink(d.entry(name));
        removed++;
        logger?.info({ file, why }, "removed stale temp file");
      } catch (err) {
        const errno = (err as { code?: string }).code;
        if (errno !== "ENOENT") logger?.warn({ file, errno }, "cannot remove stale temp file");
      }
    }
  } finally {
    await d.close();
  }
  return removed;
}
