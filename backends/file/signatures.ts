/**
 * Stat signatures of the files the file backend read: device, inode, size, mtime and ctime (in
 * nanoseconds) with the content hash read under them. A refresh, or a watch event for another
 * file of the same directory, then costs one stat instead of open, read, close and an HMAC per
 * file — an idle daemon re-checks every secret file once a minute.
 *
 * Safe against the usual traps:
 * - any write, truncate, chmod, chown or rename changes ctime (which no user can set), so a
 *   changed file never matches its old signature;
 * - a signature is only trusted when the file's mtime and ctime were over
 *   {@link RACY_MS} old when it was taken ("racily clean", as git calls it): a write within the
 *   same timestamp tick as the read (coarse timestamps on some file systems) cannot hide;
 * - it is trusted for {@link MAX_TRUST_MS} at most, then the file is read again anyway;
 * - only the hash is kept, never the content.
 * @module
 */
import { stat } from "node:fs/promises";

/** How old mtime and ctime must be, when the signature is taken, for it to be trusted. */
export const RACY_MS = 2000;
/** The longest a signature spares a read. */
export const MAX_TRUST_MS = 10 * 60_000;

interface Known {
  readonly sig: string;
  readonly hash: string | null;
  /** When the content was last read. */
  readonly readAt: number;
}

/** What a stat said about a path. */
export interface Look {
  /** The signature, `undefined` when stat failed (the read then reports why). */
  readonly sig?: string;
  /** Whether `sig` may be trusted later. */
  readonly trusted: boolean;
  /** The hash read under this very signature before, when it may be reused. */
  readonly hash?: string | null;
}

/** Signatures by absolute path, for one backend instance. */
export class Signatures {
  readonly #known = new Map<string, Known>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Stats `path` (following symlinks, as the read does). */
  async look(path: string): Promise<Look> {
    const t = this.now();
    let st;
    try {
      st = await stat(path, { bigint: true });
    } catch {
      return { trusted: false };
    }
    if (!st.isFile()) return { trusted: false };
    const sig = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const newest = Number((st.ctimeNs > st.mtimeNs ? st.ctimeNs : st.mtimeNs) / 1_000_000n);
    const trusted = newest < t - RACY_MS;
    const k = this.#known.get(path);
    if (trusted && k && k.sig === sig && t - k.readAt < MAX_TRUST_MS) return { sig, trusted, hash: k.hash };
    return { sig, trusted };
  }

  /** Records the hash read after `look` returned `l` (forgets the path when `l` cannot be trusted). */
  record(path: string, l: Look, hash: string | null): void {
    if (l.sig !== undefined && l.trusted && hash !== null && !hash.startsWith("err:")) this.#known.set(path, { sig: l.sig, hash, readAt: this.now() });
    else this.#known.delete(path);
  }
}
