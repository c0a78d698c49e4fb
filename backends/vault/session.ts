/**
 * What the reads and the writes of one vault backend share: the HTTP client, the token keeper,
 * requests sent with the token (one retry with a new token on a 403 that meant revocation), and
 * the mount preflight (cached; single-flight per first path segment), and Vault's warnings
 * (logged once per reference and text).
 */
import { FatalError, type Logger } from "../../src/api/index.js";
import type { TokenManager } from "./auth.js";
import { encodePath, statusError, type VaultClient, type VaultRequest, type VaultResponse } from "./client.js";
import type { LeaseTable } from "./leases.js";
import { MountCache, mountFromPreflight, type MountInfo } from "./mounts.js";
import { VaultWarnings } from "./warnings.js";

/** The parts of a vault backend its read and write paths use. */
export class VaultSession {
  readonly client: VaultClient;
  readonly tokens: TokenManager;
  readonly leases: LeaseTable;
  readonly logger: Logger;
  readonly now: () => number;
  readonly mounts: MountCache;
  /** Vault's `warnings` on successful answers, logged once per reference and text. */
  readonly warnings: VaultWarnings;
  /** Preflights in flight, by first path segment: paths under one mount wait for one answer. */
  readonly #preflights = new Map<string, Promise<MountInfo>>();

  constructor(o: { client: VaultClient; tokens: TokenManager; leases: LeaseTable; logger: Logger; now: () => number }) {
    this.client = o.client;
    this.tokens = o.tokens;
    this.leases = o.leases;
    this.logger = o.logger;
    this.now = o.now;
    this.mounts = new MountCache(o.now);
    this.warnings = new VaultWarnings(o.logger, o.tokens.redact);
  }

  /** Sends a request with the token; on 403, lets the token keeper decide whether one retry with a new token is worth it. */
  async authed(req: Omit<VaultRequest, "token">): Promise<{ res: VaultResponse; gen: number; token: string }> {
    const tk = this.tokens;
    let lease = await tk.getToken();
    let res = await this.client.request({ ...req, token: lease.token });
    if (res.status === 403 && (await tk.onForbidden(lease.gen))) {
      lease = await tk.getToken();
      res = await this.client.request({ ...req, token: lease.token });
    }
    // Vault checks the token before routing: a 200 or a 404 means the token is good.
    if (res.status === 200 || res.status === 204 || res.status === 404) tk.markWorked(lease.gen);
    return { res, gen: lease.gen, token: lease.token };
  }

  /** The mount `path` is under (asks the preflight once per mount, then caches it). */
  async mountOf(path: string, refText: string, signal: AbortSignal, fresh = false): Promise<MountInfo> {
    // An operator's refresh (`fresh`) asks again: the mount may have moved or been upgraded.
    const cached = fresh ? undefined : this.mounts.find(path);
    if (cached) return cached;
    // 100 paths under `secret/` asked at once would make 100 preflights; ask once per first
    // segment and let the others use its answer when that mount covers them.
    const segment = path.split("/")[0]!;
    const pending = this.#preflights.get(segment);
    if (pending) {
      await pending.catch(() => undefined);
      // That preflight answered after this fetch began, so it is fresh enough even for a refresh.
      const now = this.mounts.find(path);
      if (now) return now;
    }
    const own = this.#preflight(path, refText, signal);
    if (!pending) {
      this.#preflights.set(segment, own);
      void own.finally(() => this.#preflights.get(segment) === own && this.#preflights.delete(segment)).catch(() => undefined);
    }
    return own;
  }

  async #preflight(path: string, refText: string, signal: AbortSignal): Promise<MountInfo> {
    const apiPath = `sys/internal/ui/mounts/${encodePath(path)}`;
    const { res } = await this.authed({ method: "GET", path: apiPath, signal });
    let info: MountInfo;
    if (res.status === 200) info = mountFromPreflight(res.body?.data);
    // A Vault older than the preflight: read the path as written (the Vault CLI assumes KV v1).
    else if (res.status === 404) info = { path: "", type: "unknown", kvVersion: 1 };
    else if (res.status === 403) {
      throw Object.assign(new FatalError(`${refText}: permission denied for ${path} (no policy of the token grants access to it, or nothing is mounted there)`), { status: 403, path });
    } else throw statusError(res, `vault GET sys/internal/ui/mounts/${path}`, this.tokens.redact);
    this.mounts.set(path, info);
    return info;
  }
}
