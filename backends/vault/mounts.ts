/**
 * Paths as `vault kv get` takes them. Like the Vault CLI, emissary asks
 * `GET /v1/sys/internal/ui/mounts/<path>` which mount a path is under and, for a `kv` mount, its
 * version (`options.version`); KV v2 reads go to `<mount>/data/<rest>`. Any other engine is read
 * at the path as written. Answers are cached per mount for {@link MOUNT_CACHE_MS}.
 */
import { FatalError } from "../../src/api/index.js";
import { encodePath } from "./client.js";

/** What the preflight said about the mount a path is under. */
export interface MountInfo {
  /** Mount path relative to the namespace, with a trailing slash (`secret/`). Empty when unknown. */
  readonly path: string;
  /** Engine type (`kv`, `database`, `pki`, …), or `unknown` for a Vault without the preflight. */
  readonly type: string;
  /** 2 for KV v2, 1 for KV v1 and for every other engine. */
  readonly kvVersion: 1 | 2;
}

/** How long a preflight answer is reused. @defaultValue 10 minutes */
export const MOUNT_CACHE_MS = 10 * 60_000;

/** Where to read, and how to interpret the answer. */
export interface ReadPlan {
  /** Encoded API path (without `/v1/`). */
  readonly apiPath: string;
  /** The same, readable, for messages. */
  readonly label: string;
  readonly query: Readonly<Record<string, string>>;
  readonly kvVersion: 1 | 2;
  readonly mount: MountInfo;
}

/**
 * Normalizes a reference ID into a Vault path: no leading or trailing slash, no empty, `.` or
 * `..` segment.
 * @throws {@link FatalError} naming the reference
 */
export function normalizePath(id: string): string {
  const p = id.trim().replace(/^\/+/, "").replace(/\/+$/, "");
  if (p === "") throw new FatalError(`vault:${id}: the path is empty`);
  if (p.split("/").some((s) => s === "" || s === "." || s === "..")) throw new FatalError(`vault:${id}: the path has an empty, "." or ".." segment`);
  if (/[\u0000-\u001f?]/.test(p)) throw new FatalError(`vault:${id}: the path has a control character or "?"`);
  return p;
}

/** Parses the long-form `version` option (KV v2), or undefined. */
export function parseVersion(id: string, v: string | number | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "number" ? v : typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new FatalError(`vault:${id}: option "version" must be a positive whole number`);
  return n;
}

/** Reads the preflight response's data into a {@link MountInfo}. */
export function mountFromPreflight(data: unknown): MountInfo {
  const d = (data ?? {}) as { path?: unknown; type?: unknown; options?: unknown };
  let path = typeof d.path === "string" ? d.path : "";
  if (path !== "" && !path.endsWith("/")) path += "/";
  const type = typeof d.type === "string" ? d.type : "unknown";
  const opts = d.options && typeof d.options === "object" ? (d.options as Record<string, unknown>) : {};
  // As the Vault CLI: only options.version "2" means v2; absent, "", "1" or anything else is v1.
  const kvVersion = String(opts.version ?? "") === "2" ? 2 : 1;
  return { path, type, kvVersion };
}

/**
 * The part of `path` after `mount`. Handles a mount path that carries a namespace prefix the
 * reference does not (the preflight reports `ns1/secret/` when the mount is in a child namespace),
 * as the Vault CLI's `addPrefixToKVPath` does.
 */
export function pathInMount(path: string, mount: string): string | undefined {
  let m = mount.replace(/\/+$/, "");
  for (;;) {
    if (path === m) return "";
    if (m !== "" && path.startsWith(m + "/")) return path.slice(m.length + 1);
    const slash = m.indexOf("/");
    if (slash === -1) return undefined;
    m = m.slice(slash + 1);
  }
}

/**
 * Turns a path and its mount into the API path to read.
 *
 * KV v2: `secret/nomad` → `secret/data/nomad` (a path that already has `data/` right after the
 * mount is taken as the API path, as consul-template does, so both spellings work), with
 * `?version=N` when the long form asks for one. Everything else: the path as written.
 * @throws {@link FatalError} for `version` on a mount that is not KV v2, or a path that names a mount
 */
export function planRead(path: string, mount: MountInfo, version: number | undefined, refText: string): ReadPlan {
  if (mount.kvVersion !== 2) {
    if (version !== undefined) throw new FatalError(`${refText}: option "version" needs a KV version 2 mount (${mount.path || "the mount"} is ${mount.type === "kv" ? "KV version 1" : mount.type})`);
    return { apiPath: encodePath(path), label: path, query: {}, kvVersion: 1, mount };
  }
  const rest = pathInMount(path, mount.path);
  if (rest === undefined || rest === "" || rest === "data") throw new FatalError(`${refText}: names the KV mount ${mount.path}, not a secret in it`);
  const base = path.slice(0, path.length - rest.length).replace(/\/+$/, "");
  const inner = rest.startsWith("data/") ? rest : "data/" + rest;
  const label = `${base}/${inner}`;
  return { apiPath: encodePath(label), label, query: version !== undefined ? { version: String(version) } : {}, kvVersion: 2, mount };
}

/**
 * Preflight answers with an expiry, keyed by the prefix of the path that was asked about — the
 * mount as references spell it (`secret/`, or `team/legacy1/` with the namespace in the path) —
 * never by a suffix of the mount path the preflight reported. Matching by suffix took
 * `team/legacy1/` (KV v2, asked as `team/legacy1/app`) for the separate root mount `legacy1/`
 * (KV v1), and `vault:legacy1/app` was read as `legacy1/data/app`.
 */
export class MountCache {
  readonly #byPrefix = new Map<string, { info: MountInfo; at: number }>();
  readonly #byPath = new Map<string, { info: MountInfo; at: number }>();
  readonly #now: () => number;
  readonly #ttlMs: number;

  constructor(now: () => number = Date.now, ttlMs = MOUNT_CACHE_MS) {
    this.#now = now;
    this.#ttlMs = ttlMs;
  }

  /** The cached mount for a path, if a fresh answer was given for a prefix of it. */
  find(path: string): MountInfo | undefined {
    const now = this.#now();
    const exact = this.#byPath.get(path);
    if (exact && now - exact.at < this.#ttlMs) return exact.info;
    let best: { prefix: string; info: MountInfo } | undefined;
    for (const [prefix, e] of this.#byPrefix) {
      if (now - e.at >= this.#ttlMs) continue;
      if (underPrefix(path, prefix) && (!best || prefix.length > best.prefix.length)) best = { prefix, info: e.info };
    }
    return best?.info;
  }

  /**
   * Remembers an answer for `path`: for every path under the same mount prefix when the
   * preflight named a mount covering it, else for this path only.
   */
  set(path: string, info: MountInfo): void {
    const entry = { info, at: this.#now() };
    const prefix = info.path ? askedPrefix(path, info.path) : undefined;
    if (prefix !== undefined) this.#byPrefix.set(prefix, entry);
    else this.#byPath.set(path, entry);
  }

  /** Forgets what is known about the mount covering `path` (after a read that suggests it moved). */
  forget(path: string): void {
    this.#byPath.delete(path);
    for (const prefix of [...this.#byPrefix.keys()]) if (underPrefix(path, prefix)) this.#byPrefix.delete(prefix);
  }
}

/** True when `path` is the mount `prefix` (with its trailing slash) or a path under it. */
function underPrefix(path: string, prefix: string): boolean {
  return path + "/" === prefix || path.startsWith(prefix);
}

/**
 * The mount as the asked path spells it: the part of `path` before what {@link pathInMount} leaves
 * (`secret/nomad` under the reported `ns1/secret/` → `secret/`), with a trailing slash.
 */
function askedPrefix(path: string, mount: string): string | undefined {
  const rest = pathInMount(path, mount);
  if (rest === undefined) return undefined;
  const base = path.slice(0, path.length - rest.length).replace(/\/+$/, "");
  return base === "" ? undefined : base + "/";
}
