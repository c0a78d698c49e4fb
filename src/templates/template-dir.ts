import { watch, type FSWatcher } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { readFailure, readRegularFile } from "../api/safe-read.js";
import { FS_CONCURRENCY, mapConcurrent } from "../api/concurrency.js";
import { findWritableByOthers } from "../config/permissions.js";

/** A template file larger than this is refused (a template is a page of text). */
export const TEMPLATE_MAX_BYTES = 1024 * 1024;

export { findWritableByOthers, type WritableByOthers } from "../config/permissions.js";

/**
 * Warns about {@link findWritableByOthers} findings, once per path until its permissions change,
 * so a rescan every few seconds does not repeat the same line.
 */
export class PermissionWarnings {
  #reported = new Set<string>();

  /** Checks `dir` and `files` and logs a warning for each new finding. */
  async check(dir: string, files: readonly string[], logger: Logger): Promise<void> {
    const found = await findWritableByOthers(dir, files);
    const next = new Set<string>();
    for (const f of found) {
      const key = `${f.path}\0${f.mode}\0${f.writableBy}`;
      next.add(key);
      if (this.#reported.has(key)) continue;
      logger.warn(
        { path: f.path, mode: f.mode, writableBy: f.writableBy },
        f.path === dir
          ? "others can write the template directory: whoever adds a template there chooses the commands emissary runs as its user"
          : "others can write this template: whoever edits it chooses the commands emissary runs as its user",
      );
    }
    this.#reported = next;
  }
}

/** A template file as read from disk. */
export interface TemplateFile {
  readonly file: string;
  readonly source: string;
  /** Why the file could not be read (too large, swapped for a FIFO): it is then an invalid template. */
  readonly readError?: string;
}

/**
 * Lists and reads the templates of a directory (not recursive), sorted by name so template
 * order is stable. Returns undefined when the directory does not exist.
 */
export async function readTemplateDir(dir: string, pattern: RegExp): Promise<TemplateFile[] | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
  // Read in parallel (bounded), kept in name order.
  const read = await mapConcurrent(names.filter((n) => pattern.test(n)).sort(), FS_CONCURRENCY, async (name): Promise<TemplateFile | undefined> => {
    const file = join(dir, name);
    try {
      const st = await stat(file);
      if (!st.isFile()) return undefined;
      return { file, source: (await readRegularFile(file, { maxBytes: TEMPLATE_MAX_BYTES })).toString("utf8") };
    } catch (err) {
      // Removed between readdir and read: the next scan settles it. Anything else is reported.
      const code = (err as { code?: unknown }).code;
      return code === "ENOENT" ? undefined : { file, source: "", readError: readFailure(err) };
    }
  });
  return read.filter((f): f is TemplateFile => f !== undefined);
}

/** Options for {@link TemplateDirWatcher}. */
export interface TemplateDirWatcherOptions {
  readonly dir: string;
  readonly pattern: RegExp;
  readonly logger: Logger;
  /** Called (debounced) when templates may have been added, changed or removed. */
  readonly onChange: () => void;
  /** Scan interval while the directory is missing or not watched. @defaultValue 2000 */
  readonly pollMs?: number;
  /**
   * Backstop scan interval while fs.watch is attached (the watch reports changes itself; the
   * scan is for file systems that lose events). @defaultValue 300000 (5 minutes)
   */
  readonly watchedPollMs?: number;
}

/** {@link TemplateDirWatcherOptions.watchedPollMs}'s default. */
export const WATCHED_POLL_MS = 5 * 60_000;

/**
 * Watches the template directory with fs.watch for speed, plus a cheap periodic scan of names,
 * sizes and mtimes as a backstop: fs.watch misses events on some file systems and loses its
 * directory when it is deleted and recreated.
 */
export class TemplateDirWatcher {
  #watcher?: FSWatcher;
  /** Inode of the directory {@link #watcher} watches: a directory renamed over it needs a new watch. */
  #watchedIno?: number;
  /** Inode the last scan saw. */
  #scannedIno?: number;
  #timer?: NodeJS.Timeout;
  #debounce?: NodeJS.Timeout;
  #signature = "";
  #stopped = false;
  readonly #opts: TemplateDirWatcherOptions;

  constructor(opts: TemplateDirWatcherOptions) {
    this.#opts = opts;
  }

  /** Starts watching. The interval keeps the process alive while emissary runs. */
  async start(): Promise<void> {
    this.#signature = await this.#scanSignature();
    this.#attach();
    this.#schedule();
  }

  /**
   * Next backstop scan: quick while the directory is missing or unwatched (it may appear any
   * moment), slow while fs.watch is attached and reports changes itself. Idle CPU matters on
   * every machine of a fleet.
   */
  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    const ms = this.#watcher ? (this.#opts.watchedPollMs ?? WATCHED_POLL_MS) : (this.#opts.pollMs ?? 2000);
    this.#timer = setTimeout(() => void this.#poll().finally(() => this.#schedule()), ms);
  }

  /** Stops watching. */
  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#debounce) clearTimeout(this.#debounce);
  }

  #attach(): void {
    if (this.#watcher || this.#stopped) return;
    try {
      const w = watch(this.#opts.dir, { persistent: false }, () => this.#changed());
      w.on("error", () => {
        w.close();
        if (this.#watcher === w) this.#watcher = undefined;
        this.#schedule();
      });
      this.#watcher = w;
      this.#watchedIno = this.#scannedIno;
    } catch {
      // The directory is missing: the periodic scan notices when it appears.
    }
  }

  #changed(): void {
    if (this.#stopped) return;
    if (this.#debounce) clearTimeout(this.#debounce);
    // Editors write a file in several steps; one reload for a burst of events.
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      // The same scan as the backstop: it also notices the directory itself being deleted.
      void this.#poll(true).finally(() => this.#schedule());
    }, 25);
  }

  /** Scans; reports a change when the signature differs (or always, when an event said so). */
  async #poll(force = false): Promise<void> {
    const sig = await this.#scanSignature();
    if (sig === "missing" || (this.#watcher && this.#watchedIno !== this.#scannedIno)) {
      // Gone, or another directory renamed into its place (the watch follows the old inode).
      this.#watcher?.close();
      this.#watcher = undefined;
    }
    if (sig !== "missing") {
      this.#attach();
    }
    if (force || sig !== this.#signature) {
      this.#signature = sig;
      if (!this.#stopped) this.#opts.onChange();
    }
  }

  async #scanSignature(): Promise<string> {
    let names: string[];
    try {
      this.#scannedIno = (await stat(this.#opts.dir)).ino;
      names = await readdir(this.#opts.dir);
    } catch {
      this.#scannedIno = undefined;
      return "missing";
    }
    const parts: string[] = [];
    for (const n of names.filter((x) => this.#opts.pattern.test(x)).sort()) {
      try {
        const st = await stat(join(this.#opts.dir, n));
        parts.push(`${n}:${st.size}:${st.mtimeMs}:${st.ino}`);
      } catch {
        parts.push(`${n}:gone`);
      }
    }
    return parts.join("|");
  }
}
