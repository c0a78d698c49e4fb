import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";

/** A template file as read from disk. */
export interface TemplateFile {
  readonly file: string;
  readonly source: string;
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
  const out: TemplateFile[] = [];
  for (const name of names.filter((n) => pattern.test(n)).sort()) {
    const file = join(dir, name);
    try {
      const st = await stat(file);
      if (!st.isFile()) continue;
      out.push({ file, source: await readFile(file, "utf8") });
    } catch {
      // Removed between readdir and read: the next scan settles it.
    }
  }
  return out;
}

/** Options for {@link TemplateDirWatcher}. */
export interface TemplateDirWatcherOptions {
  readonly dir: string;
  readonly pattern: RegExp;
  readonly logger: Logger;
  /** Called (debounced) when templates may have been added, changed or removed. */
  readonly onChange: () => void;
  /** Backstop scan interval. @defaultValue 2000 */
  readonly pollMs?: number;
}

/**
 * Watches the template directory with fs.watch for speed, plus a cheap periodic scan of names,
 * sizes and mtimes as a backstop: fs.watch misses events on some file systems and loses its
 * directory when it is deleted and recreated.
 */
export class TemplateDirWatcher {
  #watcher?: FSWatcher;
  #interval?: NodeJS.Timeout;
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
    this.#interval = setInterval(() => void this.#poll(), this.#opts.pollMs ?? 2000);
  }

  /** Stops watching. */
  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#interval) clearInterval(this.#interval);
    if (this.#debounce) clearTimeout(this.#debounce);
  }

  #attach(): void {
    if (this.#watcher || this.#stopped) return;
    try {
      const w = watch(this.#opts.dir, { persistent: false }, () => this.#changed());
      w.on("error", () => {
        w.close();
        if (this.#watcher === w) this.#watcher = undefined;
      });
      this.#watcher = w;
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
      void this.#scanSignature().then((s) => {
        this.#signature = s;
        this.#opts.onChange();
      });
    }, 25);
  }

  async #poll(): Promise<void> {
    const sig = await this.#scanSignature();
    if (sig === "missing") {
      this.#watcher?.close();
      this.#watcher = undefined;
    } else {
      this.#attach();
    }
    if (sig !== this.#signature) {
      this.#signature = sig;
      if (!this.#stopped) this.#opts.onChange();
    }
  }

  async #scanSignature(): Promise<string> {
    let names: string[];
    try {
      names = await readdir(this.#opts.dir);
    } catch {
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
