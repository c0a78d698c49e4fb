/**
 * The state directory (SPEC "Issued secrets", **State**): issued certificates and leased reads,
 * kept across restarts so a restart neither re-issues a valid certificate nor re-mints
 * credentials whose lease is still good. Entries are JSON files, one per reference key (or per
 * backend entry), written atomically through the destination writer with mode 0600 in a directory
 * created 0700.
 *
 * They hold private keys and credentials, so the directory is refused — and state stays off, with
 * one warning — when it is a symlink, not a directory, not owned by emissary's user, writable by
 * group or others, or inside a parent others can write without the sticky bit. It is created on
 * the first entry written: a deployment whose templates issue nothing never creates it. A corrupt or unreadable
 * entry is ignored with a warning (the secret is then issued anew); nothing here ever throws into
 * a fetch.
 * @module
 */
import { createHash } from "node:crypto";
import { constants, promises as fsp } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import type { StateAccess } from "../api/backend.js";
import { readFailure, readRegularFile } from "../api/safe-read.js";
import { cleanStaleTempFiles, writeAtomic } from "../output/writer.js";

/** Version of an entry file's envelope. */
const ENTRY_VERSION = 1;
/** Largest entry read (a certificate chain and its key are a few KiB). */
const ENTRY_MAX_BYTES = 4 * 1024 * 1024;
/** Entry files of references (garbage-collected) and of backends (deleted by their backend). */
const REF_ENTRY = /^r-[0-9a-f]{32}\.json$/;

/** Options for {@link StateDir}. */
export interface StateDirOptions {
  /** Absolute path; `""` = off. */
  readonly dir: string;
  readonly logger: Logger;
  /**
   * Read what is kept, never write, delete or create anything (`emissary render`).
   * @defaultValue false
   */
  readonly readOnly?: boolean;
  /** The user emissary runs as. @defaultValue process.getuid() */
  readonly uid?: number;
}

/** What the state directory is doing. */
export type StateDirPhase = "off" | "closed" | "open" | "refused";

/** The on-disk envelope of one entry. */
interface Envelope {
  readonly emissary_state: number;
  readonly key: string;
  readonly savedAt: number;
  readonly value: unknown;
}

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "error";
}

function entryName(scope: "r" | "b", key: string): string {
  return `${scope}-${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`;
}

/**
 * One state directory. {@link StateDir.refs} is what fetches get (entries by reference key);
 * {@link StateDir.forBackend} what backend factories get.
 */
export class StateDir {
  readonly #o: StateDirOptions;
  #opening?: Promise<boolean>;
  #phase: StateDirPhase;
  #warned = false;

  constructor(opts: StateDirOptions) {
    this.#o = opts;
    this.#phase = opts.dir === "" ? "off" : "closed";
  }

  /** `off` (configured so), `closed` (not used yet), `open`, or `refused` (unsafe or unwritable). */
  get phase(): StateDirPhase {
    return this.#phase;
  }

  /** The directory, `""` when off. */
  get dir(): string {
    return this.#o.dir;
  }

  /** Entries by reference key: garbage-collected by {@link StateDir.retain}. */
  readonly refs: StateAccess = this.#scope("r", (k) => k);

  /** Entries of one backend, by names it chooses; never garbage-collected. */
  forBackend(name: string): StateAccess {
    return this.#scope("b", (k) => `${name}\u0000${k}`);
  }

  /**
   * Deletes the reference entries whose key is not in `keys`. Does nothing when the directory is
   * off, refused, read-only, or does not exist yet (nothing was ever kept).
   * @returns how many entries were deleted
   */
  async retain(keys: ReadonlySet<string>): Promise<number> {
    if (this.#phase === "off" || this.#phase === "refused" || this.#o.readOnly) return 0;
    if (this.#phase === "closed") {
      try {
        await fsp.lstat(this.#o.dir);
      } catch {
        return 0;
      }
    }
    if (!(await this.#open(false))) return 0;
    const keep = new Set([...keys].map((k) => entryName("r", k)));
    let names: string[];
    try {
      names = await fsp.readdir(this.#o.dir);
    } catch (err) {
      this.#o.logger.warn({ stateDir: this.#o.dir, errno: errnoOf(err) }, "cannot list the state directory");
      return 0;
    }
    let deleted = 0;
    for (const name of names) {
      if (!REF_ENTRY.test(name) || keep.has(name)) continue;
      try {
        await fsp.unlink(join(this.#o.dir, name));
        deleted++;
      } catch (err) {
        if (errnoOf(err) !== "ENOENT") this.#o.logger.warn({ stateDir: this.#o.dir, entry: name, errno: errnoOf(err) }, "cannot delete a state entry");
      }
    }
    if (deleted > 0) this.#o.logger.info({ stateDir: this.#o.dir, deleted }, "deleted state entries no template uses any more");
    return deleted;
  }

  #scope(scope: "r" | "b", qualify: (key: string) => string): StateAccess {
    const self = this;
    return {
      get enabled(): boolean {
        return self.#phase === "open" || self.#phase === "closed";
      },
      get: (key) => this.#get(scope, qualify(key), key),
      set: (key, value) => this.#set(scope, qualify(key), key, value),
      delete: (key) => this.#delete(scope, qualify(key)),
    };
  }

  async #get(scope: "r" | "b", qualified: string, label: string): Promise<unknown> {
    // Reading never creates the directory: a missing one keeps nothing.
    if (!(await this.#open(false))) return undefined;
    const file = join(this.#o.dir, entryName(scope, qualified));
    let text: string;
    try {
      text = (await readRegularFile(file, { maxBytes: ENTRY_MAX_BYTES })).toString("utf8");
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") this.#o.logger.warn({ stateDir: this.#o.dir, ref: label, reason: readFailure(err) }, "cannot read a state entry; ignoring it (issued anew)");
      return undefined;
    }
    let env: Envelope;
    try {
      env = JSON.parse(text) as Envelope;
    } catch {
      // Never pass JSON.parse's message on: it quotes the text, which holds keys and credentials.
      this.#o.logger.warn({ stateDir: this.#o.dir, ref: label }, "a state entry is corrupt (not JSON); ignoring it (issued anew)");
      return undefined;
    }
    if (env === null || typeof env !== "object" || env.emissary_state !== ENTRY_VERSION || env.key !== qualified || !("value" in env)) {
      this.#o.logger.warn({ stateDir: this.#o.dir, ref: label }, "a state entry is corrupt (not an emissary entry for this reference); ignoring it (issued anew)");
      return undefined;
    }
    return env.value;
  }

  async #set(scope: "r" | "b", qualified: string, label: string, value: unknown): Promise<void> {
    if (this.#o.readOnly || !(await this.#open(true))) return;
    const env: Envelope = { emissary_state: ENTRY_VERSION, key: qualified, savedAt: Date.now(), value };
    const path = join(this.#o.dir, entryName(scope, qualified));
    try {
      await writeAtomic({ path, content: JSON.stringify(env) + "\n", mode: 0o600, logger: this.#o.logger });
    } catch (err) {
      this.#o.logger.warn({ stateDir: this.#o.dir, ref: label, errno: (err as { errno?: string }).errno ?? errnoOf(err) }, "cannot write a state entry; a restart will issue it anew");
    }
  }

  async #delete(scope: "r" | "b", qualified: string): Promise<void> {
    if (this.#o.readOnly || !(await this.#open(false))) return;
    try {
      await fsp.unlink(join(this.#o.dir, entryName(scope, qualified)));
    } catch (err) {
      if (errnoOf(err) !== "ENOENT") this.#o.logger.warn({ stateDir: this.#o.dir, errno: errnoOf(err) }, "cannot delete a state entry");
    }
  }

  /**
   * Opens (creates, with `create`, and checks) the directory once; false when state is off, or
   * when the directory does not exist and `create` is false (nothing was kept yet).
   */
  async #open(create: boolean): Promise<boolean> {
    if (this.#phase === "off") {
      if (create) this.#warnOnce({}, 'the state directory is off (state_dir ""): issued certificates and leases are not kept, and a restart issues them anew');
      return false;
    }
    if (this.#phase === "refused") return false;
    if (this.#phase === "open") return true;
    if (!create && !this.#opening) {
      const exists = await fsp.lstat(this.#o.dir).then(
        () => true,
        () => false,
      );
      if (!exists) return false;
    }
    this.#opening ??= this.#check().then((reason) => {
      if (reason === undefined) {
        this.#phase = "open";
        return true;
      }
      this.#phase = "refused";
      this.#warnOnce({ reason }, `state directory ${this.#o.dir} is not used (${reason}): issued certificates and leases are not kept, and a restart issues them anew`);
      return false;
    });
    return this.#opening;
  }

  #warnOnce(fields: Record<string, unknown>, msg: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#o.logger.warn({ stateDir: this.#o.dir, ...fields }, msg);
  }

  /** Creates the directory when missing; returns why it cannot be used, or undefined. */
  async #check(): Promise<string | undefined> {
    const dir = this.#o.dir;
    const uid = this.#o.uid ?? process.getuid?.() ?? 0;
    let st = await fsp.lstat(dir).catch((err: unknown) => err as NodeJS.ErrnoException);
    if (st instanceof Error) {
      if (errnoOf(st) !== "ENOENT") return `cannot stat it: ${errnoOf(st)}`;
      if (this.#o.readOnly) return "it does not exist";
      try {
        await fsp.mkdir(dirname(dir), { recursive: true, mode: 0o755 });
        await fsp.mkdir(dir, { mode: 0o700 });
        // mkdir's mode passes through the umask: make it exactly 0700.
        await fsp.chmod(dir, 0o700);
      } catch (err) {
        if (errnoOf(err) !== "EEXIST") return `cannot create it: ${errnoOf(err)}`;
      }
      st = await fsp.lstat(dir).catch((err: unknown) => err as NodeJS.ErrnoException);
      if (st instanceof Error) return `cannot stat it: ${errnoOf(st)}`;
    }
    if (st.isSymbolicLink()) return "it is a symlink; give the real directory";
    if (!st.isDirectory()) return "it is not a directory";
    if (st.uid !== uid) return `it is owned by uid ${st.uid}, not by emissary's user (uid ${uid})`;
    if ((st.mode & 0o022) !== 0) return `it is writable by ${st.mode & 0o002 ? "others" : "its group"} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")}); make it 0700`;
    const parent = await fsp.stat(dirname(dir)).catch(() => undefined);
    if (parent && (parent.mode & 0o002) !== 0 && (parent.mode & 0o1000) === 0) return `its parent ${dirname(dir)} is writable by others without the sticky bit`;
    if (!this.#o.readOnly) {
      try {
        await fsp.access(dir, constants.W_OK);
      } catch (err) {
        return `it is not writable: ${errnoOf(err)}`;
      }
      await cleanStaleTempFiles(dir, this.#o.logger);
    }
    this.#o.logger.debug({ stateDir: dir }, "state directory open");
    return undefined;
  }
}
