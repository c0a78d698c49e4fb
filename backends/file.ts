/**
 * The `file` backend: a secret is a file's contents. `file:/run/secrets/db` or, relative to the
 * template's directory, `file:../secrets/db`. JSON and YAML files allow `#field`.
 *
 * Files are pushed, not polled: the backend watches each file's parent directory, because
 * editors, Kubernetes (the `..data` symlink swap) and LinuxKit replace files by rename or by
 * swapping a symlink, which a watch on the file itself would not see. Every event in a watched
 * directory leads to a re-read of the files watched there; only a change of content (a keyed
 * hash) calls `onChange`; after an in-place write, only once the content has held still for `stableMs`.
 *
 * Limitation: a file that is a symlink into some other directory is re-read on events in its own
 * directory only; a change made in place at the target is seen at the next look at that directory,
 * made every minute while it holds a watched symlink ({@link FILE_LINK_POLL_MS}). Kubernetes'
 * `..data` swap happens in the watched directory. Everything else is re-read as a backstop every
 * {@link FILE_REFRESH_MS}.
 * @packageDocumentation
 */
import { watch as fsWatch, type FSWatcher } from "node:fs";
import { lstat, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, resolve as resolvePath } from "node:path";
import {
  FatalError,
  SecretNotFoundError,
  contentVersion,
  rejectUnknownKeys,
  readRegularFile,
  rejectUnknownOptions,
  safeError,
  textOrBytes,
  type Backend,
  type BackendFactoryContext,
  type CheckResult,
  type FetchContext,
  type Logger,
  type ResolveContext,
  type Secret,
  type SecretRef,
  type WatchContext,
} from "../src/api/index.js";
import { checkFile } from "./file/check.js";
import { readError, readHash } from "./file/read.js";
import { parseData } from "./file/parse-data.js";
import { Signatures } from "./file/signatures.js";

/**
 * The backstop refresh of a watched file (the watch is the fast path): five minutes, so an idle
 * daemon does not re-stat every secret file every minute.
 */
export const FILE_REFRESH_MS = 5 * 60_000;
/** How often a directory holding a watched symlink is looked at (its target may change in place elsewhere). */
export const FILE_LINK_POLL_MS = 60_000;

/** Largest file the backend reads; bigger files are a {@link FatalError} (a wrong path, surely). */
export const FILE_MAX_BYTES = 16 * 1024 * 1024;

/** Tuning for {@link createFileBackend}; the config file section takes no keys. */
export interface FileBackendOptions {
  /** How often a missing parent directory is looked for. @defaultValue 1000 */
  dirPollMs?: number;
  /** Events closer together than this are handled as one. @defaultValue 2 */
  debounceMs?: number;
  /**
   * After an in-place write ("change" event), content must hold still this long before it is
   * believed (a truncate then a write). Renames and symlink swaps are atomic and skip it.
   * @defaultValue 15
   */
  stableMs?: number;
  /** How often a directory holding a watched symlink is looked at. @defaultValue {@link FILE_LINK_POLL_MS} */
  linkPollMs?: number;
  /** Clock of the stat-signature shortcut (backends/file/signatures.ts), for tests. @defaultValue Date.now */
  clock?: () => number;
}

/** One subscriber: its callback and the content hash it last saw (`null`: missing). */
interface Subscription {
  readonly onChange: () => void;
  /** `undefined` until the first look; then the hash that subscriber is assumed to have. */
  baseline: string | null | undefined;
}

/** One watched directory, shared by every reference to a file in it. */
interface DirWatch {
  readonly dir: string;
  /** Watched absolute file path → its subscribers. */
  readonly files: Map<string, Set<Subscription>>;
  fsw?: FSWatcher;
  /** Inode of the directory `fsw` watches: a directory deleted and recreated needs a new watch. */
  ino?: number;
  poll?: NodeJS.Timeout;
  /** While a watched path is a symlink: the periodic look that catches a change at its target. */
  linkPoll?: NodeJS.Timeout;
  debounce?: NodeJS.Timeout;
  checking: boolean;
  again: boolean;
  /** A "change" (in-place write) event arrived since the last check: verify content holds still. */
  inPlace: boolean;
  /** Whether some watched path is a symlink: then any event in the directory may change it. */
  hasSymlink: boolean;
  closed: boolean;
}

/**
 * Builds the `file` backend.
 *
 * @param ctx - factory context; `ctx.config` (`backends.file`) must be empty
 * @param options - tuning, for tests and embedders
 * @throws ConfigError for any key in `backends.file`
 */
export function createFileBackend(ctx: BackendFactoryContext, options: FileBackendOptions = {}): Backend {
  rejectUnknownKeys("file", ctx.config, [], ctx.configFile);
  const dirPollMs = options.dirPollMs ?? 1000;
  const debounceMs = options.debounceMs ?? 2;
  const stableMs = options.stableMs ?? 15;
  const linkPollMs = options.linkPollMs ?? FILE_LINK_POLL_MS;
  const logger: Logger = ctx.logger;
  /**
   * The hash each path had at its last fetch: the baseline of a subscriber that arrives later.
   * One backend instance serves one emissary: another caller's fetches would move baselines too.
   */
  const fetched = new Map<string, string | null>();
  const dirs = new Map<string, DirWatch>();
  /** Files whose stat signature is unchanged since their last read are not read again. */
  const sigs = new Signatures(options.clock);
  let closed = false;

  /** {@link readHash}, or the hash read before when the file's signature has not changed. */
  async function hashFile(path: string): Promise<string | null> {
    const l = await sigs.look(path);
    if (l.hash !== undefined) return l.hash;
    const hash = await readHash(path, FILE_MAX_BYTES);
    sigs.record(path, l, hash);
    return hash;
  }

  /**
   * Records what a fetch saw. A subscriber is assumed to hold what was last fetched: if a watch's
   * own first look raced with the fetch and saw newer content, the next check notices the
   * difference and calls onChange, rather than the change being lost until the next refresh.
   */
  function sawOnFetch(path: string, hash: string | null): void {
    fetched.set(path, hash);
    const dw = dirs.get(dirname(path));
    const subs = dw?.files.get(path);
    if (!dw || !subs) return;
    let differs = false;
    for (const sub of subs) {
      if (sub.baseline !== hash) {
        sub.baseline = hash;
        differs = true;
      }
    }
    if (differs) schedule(dw);
  }

  function absolute(ref: SecretRef): string {
    return isAbsolute(ref.id) ? ref.id : resolvePath(ref.id);
  }

  function stopFsWatch(dw: DirWatch): void {
    if (dw.fsw) {
      dw.fsw.removeAllListeners("change");
      dw.fsw.close();
      delete dw.fsw;
      delete dw.ino;
    }
  }

  function startPoll(dw: DirWatch): void {
    if (dw.poll || dw.closed) return;
    dw.poll = setInterval(() => {
      stat(dw.dir).then(
        (st) => {
          if (st.isDirectory()) void check(dw);
        },
        () => undefined,
      );
    }, dirPollMs);
    dw.poll.unref();
  }

  function stopPoll(dw: DirWatch): void {
    if (dw.poll) clearInterval(dw.poll);
    delete dw.poll;
  }

  function schedule(dw: DirWatch): void {
    if (dw.debounce || dw.closed) return;
    dw.debounce = setTimeout(() => {
      delete dw.debounce;
      void check(dw);
    }, debounceMs);
    dw.debounce.unref();
  }

  function startFsWatch(dw: DirWatch, ino: number): void {
    stopFsWatch(dw);
    try {
      const fsw = fsWatch(dw.dir, { persistent: false }, (event, filename) => {
        // A write to an unrelated file in a busy directory is not worth re-reading ours for;
        // renames always are (a rename over our file, the directory itself going away).
        if (event === "change" && filename && !dw.hasSymlink && !watchesName(dw, filename.toString())) return;
        if (event === "change") dw.inPlace = true;
        schedule(dw);
      });
      fsw.on("error", () => {
        // The directory went away or the watch broke: look again, poll if it is gone.
        stopFsWatch(dw);
        schedule(dw);
      });
      dw.fsw = fsw;
      dw.ino = ino;
    } catch (err) {
      logger.debug({ dir: dw.dir, err: safeError(err) }, "file backend: cannot watch directory yet; polling for it");
      startPoll(dw);
    }
  }

  function watchesName(dw: DirWatch, name: string): boolean {
    for (const p of dw.files.keys()) if (basename(p) === name) return true;
    return false;
  }

  /** Re-establishes the directory watch if needed, then compares every watched file's hash. */
  async function check(dw: DirWatch): Promise<void> {
    if (dw.checking) {
      dw.again = true;
      return;
    }
    dw.checking = true;
    try {
      do {
        dw.again = false;
        // Only an in-place write can be caught half-done; a rename or symlink swap is atomic.
        const verify = dw.inPlace || !dw.fsw;
        dw.inPlace = false;
        const st = await stat(dw.dir).catch(() => undefined);
        if (dw.closed) return;
        if (!st || !st.isDirectory()) {
          stopFsWatch(dw);
          startPoll(dw);
        } else {
          stopPoll(dw);
          // Watch before reading, so a change made while we read is an event, not a loss.
          if (!dw.fsw || dw.ino !== st.ino) startFsWatch(dw, st.ino);
        }
        let hasSymlink = false;
        for (const [path, subs] of [...dw.files]) {
          const [first, link] = await Promise.all([hashFile(path), lstat(path).then((s) => s.isSymbolicLink(), () => false)]);
          let hash = first;
          if (dw.closed) return;
          hasSymlink ||= link;
          // An in-place write truncates before it writes: only believe content that holds still
          // for one debounce period, so a rewrite with identical bytes is not taken for a change.
          for (let i = 0; verify && i < 20 && [...subs].some((s) => s.baseline !== undefined && s.baseline !== hash); i++) {
            await new Promise((r) => setTimeout(r, stableMs));
            const again = await hashFile(path);
            if (dw.closed) return;
            if (again === hash) break;
            hash = again;
          }
          for (const sub of [...subs]) {
            if (sub.baseline === undefined) {
              sub.baseline = hash;
            } else if (sub.baseline !== hash) {
              sub.baseline = hash;
              if (subs.has(sub)) notify(sub, path);
            }
          }
        }
        dw.hasSymlink = hasSymlink;
        setLinkPoll(dw);
      } while (dw.again && !dw.closed);
    } finally {
      dw.checking = false;
    }
  }

  function notify(sub: Subscription, path: string): void {
    try {
      sub.onChange();
    } catch (err) {
      logger.warn({ path, err: safeError(err) }, "file backend: a change subscriber threw");
    }
  }

  /**
   * A symlink's target may live in a directory nobody watches (an in-place write there makes no
   * event here): while a watched path is a symlink, its directory is looked at every
   * {@link FILE_LINK_POLL_MS}; a look is a stat per file unless the signature changed.
   */
  function setLinkPoll(dw: DirWatch): void {
    if (dw.hasSymlink && !dw.linkPoll && !dw.closed) {
      dw.linkPoll = setInterval(() => schedule(dw), linkPollMs);
      dw.linkPoll.unref();
    } else if (!dw.hasSymlink && dw.linkPoll) {
      clearInterval(dw.linkPoll);
      delete dw.linkPoll;
    }
  }

  function closeDir(dw: DirWatch): void {
    dw.closed = true;
    stopFsWatch(dw);
    stopPoll(dw);
    if (dw.linkPoll) clearInterval(dw.linkPoll);
    delete dw.linkPoll;
    if (dw.debounce) clearTimeout(dw.debounce);
    delete dw.debounce;
    dirs.delete(dw.dir);
  }

  const backend = {
    name: "file",
    defaultRefreshMs: FILE_REFRESH_MS,

    resolve(ref: SecretRef, rctx: ResolveContext): SecretRef {
      if (isAbsolute(ref.id)) return ref;
      return { ...ref, id: resolvePath(rctx.baseDir, ref.id) };
    },

    validate(ref: SecretRef): void {
      if (ref.id === "" || ref.id.includes("\0")) throw new FatalError(`file:${JSON.stringify(ref.id)}: not a valid path`);
      rejectUnknownOptions(ref);
    },

    async fetch(ref: SecretRef, fctx: FetchContext): Promise<Secret> {
      const path = absolute(ref);
      // A refresh of a file whose signature has not changed since it was read returns what it
      // returned then: a stat instead of a read and an HMAC (an operator's refresh always reads).
      const look = fctx.fresh ? undefined : await sigs.look(path);
      if (look?.hash !== undefined && fctx.previous !== undefined && fctx.previous.version === look.hash) {
        sawOnFetch(path, look.hash);
        return fctx.previous;
      }
      let buf: Buffer;
      try {
        buf = await readRegularFile(path, { maxBytes: FILE_MAX_BYTES, truncate: true, signal: fctx.signal });
      } catch (err) {
        const failure = readError(path, err, fctx.signal.aborted);
        if (failure instanceof SecretNotFoundError) sawOnFetch(path, null);
        throw failure;
      }
      if (buf.length > FILE_MAX_BYTES) throw new FatalError(`file:${path}: larger than ${FILE_MAX_BYTES} bytes`);
      const version = contentVersion(buf);
      if (look) sigs.record(path, look, version);
      sawOnFetch(path, version);
      // Bytes from the file to the destination: text when it is UTF-8, the bytes themselves otherwise.
      const value = textOrBytes(buf);
      const data = typeof value === "string" ? parseData(path, value) : undefined;
      return data === undefined ? { value, version } : { value, version, data };
    },

    /** `check --connect`: the path's type and access(R_OK); the file is not read. */
    check(ref: SecretRef): Promise<CheckResult> {
      return checkFile(absolute(ref), FILE_MAX_BYTES);
    },

    watch(ref: SecretRef, onChange: () => void, wctx?: WatchContext): () => void {
      if (closed) return () => undefined;
      const path = absolute(ref);
      const dir = dirname(path);
      let dw = dirs.get(dir);
      if (!dw) {
        dw = { dir, files: new Map(), checking: false, again: false, inPlace: false, hasSymlink: false, closed: false };
        dirs.set(dir, dw);
      }
      let subs = dw.files.get(path);
      if (!subs) dw.files.set(path, (subs = new Set()));
      // What this instance last fetched, else what the caller holds (fetched by a previous
      // instance before a reload): a change since then is reported, not taken as the start.
      const held = wctx?.previous?.version;
      const sub: Subscription = { onChange, baseline: fetched.has(path) ? fetched.get(path) : held };
      subs.add(sub);
      // Debounced: a thousand references watched in one tick make one look at the directory.
      schedule(dw);
      const owner = dw;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const s = owner.files.get(path);
        s?.delete(sub);
        if (s && s.size === 0) owner.files.delete(path);
        if (owner.files.size === 0) closeDir(owner);
      };
    },

    async close(): Promise<void> {
      closed = true;
      for (const dw of [...dirs.values()]) closeDir(dw);
    },
  } satisfies Backend;
  return backend;
}

/** The module's default export: the `file` backend factory. */
export default createFileBackend;
