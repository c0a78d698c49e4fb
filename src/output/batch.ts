/**
 * Writes many destinations at once — what one pass of the runner has to write — with the same
 * promise as {@link writeAtomic} for each, and far fewer system calls: each destination
 * directory is opened (walked from `/` through descriptors) once for the batch instead of once per
 * file, and fsynced once after every rename into it instead of after each. Every file still gets
 * its own temp file, write, fsync, chown/chmod and rename; no result is returned (and so no write
 * is reported, and no command runs) before its directory has been fsynced.
 * @module
 */
import { dirname } from "node:path";
import { FS_CONCURRENCY, mapConcurrent } from "../api/concurrency.js";
import { WriteError } from "../api/errors.js";
import { openDestDir, type OpenedDir } from "./dirs.js";
import { fsyncDir, prepareWrite, writeAtomic, writeInDir, type PreparedWrite, type WriteRequest, type WriteResult } from "./writer.js";

/** Options for {@link writeAtomicMany}. */
export interface BatchOptions {
  /** Files written at the same time. @defaultValue {@link FS_CONCURRENCY} */
  readonly concurrency?: number;
}

/**
 * Writes every request; the result at index i is request i's {@link WriteResult}, or the error
 * {@link writeAtomic} would have thrown for it. Requests naming the same destination are written
 * one after the other, in order (the last one wins, as written one by one). Never rejects.
 */
export async function writeAtomicMany(reqs: readonly WriteRequest[], opts: BatchOptions = {}): Promise<(WriteResult | Error)[]> {
  const out = new Array<WriteResult | Error>(reqs.length);
  const groups = new Map<string, { i: number; w: PreparedWrite }[]>();
  reqs.forEach((req, i) => {
    try {
      const w = prepareWrite(req);
      const dir = dirname(w.path);
      let g = groups.get(dir);
      if (!g) groups.set(dir, (g = []));
      g.push({ i, w });
    } catch (err) {
      out[i] = err as Error;
    }
  });
  const limit = opts.concurrency ?? FS_CONCURRENCY;
  // A few directories at a time, their files `limit` at a time.
  await mapConcurrent([...groups], 4, async ([dir, items]) => {
    const first = items[0]!.w.req;
    let d: OpenedDir;
    try {
      d = await openDestDir(dir, { create: true, forPath: first.path, ...(first.logger ? { logger: first.logger } : {}), ...(first.noProc ? { noProc: true } : {}) });
    } catch {
      // Each request then fails (or succeeds) on its own, with its own path in the error.
      await mapConcurrent(items, limit, async ({ i, w }) => {
        out[i] = await writeAtomic(w.req).catch((e: unknown) => toError(e, w.req.path));
      });
      return;
    }
    try {
      // Same name, in order; different names in parallel.
      const tails = new Map<string, Promise<unknown>>();
      let renamed = false;
      await mapConcurrent(items, limit, async ({ i, w }) => {
        const run = (tails.get(w.name) ?? Promise.resolve()).then(() => writeInDir(w, d, false));
        tails.set(w.name, run.catch(() => undefined));
        const r = await run.catch((e: unknown) => toError(e, w.req.path));
        if (!(r instanceof Error) && r.changed && !r.inPlace) renamed = true;
        out[i] = r;
      });
      if (renamed) await fsyncDir(d, first.logger);
    } finally {
      await d.close();
    }
  });
  return out;
}

function toError(err: unknown, path: string): Error {
  if (err instanceof Error) return err;
  return new WriteError(`cannot write ${path}: ${String(err)}`, path);
}
