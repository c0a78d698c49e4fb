/**
 * Keeps the set of bound templates in step with the template directory: reads it, binds the
 * files that are new or changed (all of them after a reload), waits for a directory that does not
 * exist yet, warns about templates others can write, and clears stale temporary files of an
 * earlier run next to each destination once.
 * @module
 */
import { dirname } from "node:path";
import type { Logger } from "pino";
import { safeError } from "../api/log.js";
import { globToRegExp } from "../config/glob.js";
import type { ResolvedConfig } from "../config/resolve.js";
import { cleanStaleTempFiles } from "../output/writer.js";
import type { BackendRegistry } from "../sources/registry.js";
import { bindTemplate } from "./bind.js";
import type { TemplateEntry } from "./entry.js";
import { PermissionWarnings, readTemplateDir } from "./template-dir.js";

/** Options for {@link TemplateSync}. */
export interface TemplateSyncOptions {
  readonly logger: Logger;
  readonly cwd: string;
  /** The configuration and backends in effect (they change on reload). */
  readonly config: () => ResolvedConfig;
  readonly registry: () => BackendRegistry;
  /** The entries bound now (reused when their file did not change). */
  readonly current: () => readonly TemplateEntry[];
  /** Takes the new set of entries. */
  readonly apply: (next: TemplateEntry[]) => void;
  /** A template failed to bind. */
  readonly onInvalid: (file: string, error: Error) => void;
  /** Without a directory watcher, poll for a missing directory every second (once, render). */
  readonly pollMissingDir: boolean;
}

/** Interval of the missing-directory poll when no watcher runs. */
const MISSING_DIR_POLL_MS = 1000;

/**
 * Serialized, coalescing template-directory syncs. Any number of `sync()` calls while one runs
 * become one more whole sync after it; a `force` asked for at any point is never lost.
 */
export class TemplateSync {
  #chain: Promise<void> = Promise.resolve();
  #again = false;
  #force = false;
  #stopped = false;
  #dirMissing = false;
  #pollTimer?: NodeJS.Timeout;
  readonly #cleanedDirs = new Set<string>();
  readonly #permissions = new PermissionWarnings();

  constructor(private readonly opts: TemplateSyncOptions) {}

  /** The template directory did not exist at the last read. */
  get dirMissing(): boolean {
    return this.#dirMissing;
  }

  /** Re-reads the directory; `force` re-binds every template (new backends or config). */
  sync(force = false): Promise<void> {
    if (force) this.#force = true;
    this.#again = true;
    this.#chain = this.#chain.then(async () => {
      if (!this.#again || this.#stopped) return;
      this.#again = false;
      // Taken before the pass: a force asked for while it runs is kept for the next one.
      const forceNow = this.#force;
      this.#force = false;
      try {
        await this.#syncOnce(forceNow);
      } catch (err) {
        this.opts.logger.error({ err: safeError(err) }, "reading templates failed");
      }
    });
    return this.#chain;
  }

  /** Stops polling; resolves when a sync in progress has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    await this.#chain.catch(() => undefined);
  }

  async #syncOnce(force: boolean): Promise<void> {
    const { logger } = this.opts;
    const config = this.opts.config();
    const files = await readTemplateDir(config.templates, globToRegExp(config.pattern));
    if (!files) {
      if (!this.#dirMissing) {
        this.#dirMissing = true;
        logger.warn({ templatesDir: config.templates }, "template directory does not exist (yet); waiting for it");
      }
      if (this.opts.pollMissingDir && !this.#pollTimer && !this.#stopped) {
        this.#pollTimer = setTimeout(() => {
          this.#pollTimer = undefined;
          void this.sync();
        }, MISSING_DIR_POLL_MS);
      }
      this.opts.apply([]);
      return;
    }
    if (this.#dirMissing) {
      this.#dirMissing = false;
      logger.info({ templatesDir: config.templates }, "template directory found");
    }
    await this.#permissions.check(config.templates, files.map((f) => f.file), logger);
    const current = new Map(this.opts.current().map((e) => [e.file, e]));
    const next: TemplateEntry[] = [];
    for (const f of files) {
      const old = current.get(f.file);
      if (old && !force && old.source === f.source) {
        next.push(old);
        continue;
      }
      const entry = await bindTemplate(f, { registry: this.opts.registry(), config, cwd: this.opts.cwd });
      if (old) {
        // Carry over what the file on disk already reflects so an unchanged render does not count as new.
        entry.lastRenderAt = old.lastRenderAt;
        entry.lastWriteAt = old.lastWriteAt;
        if (old.lastCommand) entry.lastCommand = old.lastCommand;
        if (old.fingerprints) entry.fingerprints = old.fingerprints;
        if (old.lastChanged) entry.lastChanged = old.lastChanged;
      }
      if (entry.state === "invalid") {
        logger.error({ template: f.file, err: safeError(entry.error) }, "template is invalid; skipped (the other templates carry on)");
        this.opts.onInvalid(f.file, entry.error!);
      } else if (old) {
        logger.info({ template: f.file, dest: entry.template!.dest }, "template changed; reloaded");
      }
      if (entry.template) await this.#cleanDestDir(entry.template.dest);
      next.push(entry);
    }
    for (const old of current.values()) if (!files.some((f) => f.file === old.file)) logger.info({ template: old.file }, "template removed");
    this.opts.apply(next);
  }

  async #cleanDestDir(dest: string): Promise<void> {
    const dir = dirname(dest);
    if (this.#cleanedDirs.has(dir)) return;
    this.#cleanedDirs.add(dir);
    try {
      const n = await cleanStaleTempFiles(dir, this.opts.logger);
      if (n > 0) this.opts.logger.info({ dir, removed: n }, "removed stale temporary files of an earlier run");
    } catch {
      /* the directory may not exist yet */
    }
  }
}
