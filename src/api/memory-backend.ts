/**
 * An in-memory backend for tests and for embedding emissary in a program that already holds its
 * secrets. It pushes changes to watchers synchronously, so tests of the core need no timers.
 * @packageDocumentation
 */
import type { Backend, FetchContext, Secret, SecretRef, WatchContext } from "./backend.js";
import { contentVersion } from "./backend-helpers.js";
import { SecretNotFoundError, TransientError } from "./errors.js";

/** A {@link Backend} whose secrets are set and removed by code. */
export interface MemoryBackend extends Backend {
  /**
   * Sets (or replaces) a secret and notifies its watchers.
   * @param id - the reference ID (`memory:ID`)
   * @param value - the secret's text, or its bytes
   * @param version - an explicit version @defaultValue a hash of `value`
   */
  set(id: string, value: string | Uint8Array, version?: string): void;
  /** Removes a secret (later fetches throw {@link SecretNotFoundError}) and notifies its watchers. */
  delete(id: string): void;
  /**
   * Makes every fetch of `id` throw `err` until called again with `undefined`. Notifies watchers,
   * so a watching core fetches again and sees the failure (or the recovery) at once.
   */
  fail(id: string, err: Error | undefined): void;
  /** How many times `fetch` was called (all IDs), including fetches that threw. */
  readonly fetchCount: number;
  /** How many `watch` subscriptions are live for `id`, or for all IDs when omitted. */
  watcherCount(id?: string): number;
  /** Whether `close()` has been called. */
  readonly closed: boolean;
}

/** Options for {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** The backend's name in references. @defaultValue "memory" */
  name?: string;
  /** Initial secrets, by ID. @defaultValue `{}` */
  values?: Record<string, string | Uint8Array>;
  /** Refresh interval the core uses as a backstop. @defaultValue undefined (the core's default) */
  defaultRefreshMs?: number;
}

/**
 * Creates an in-memory backend.
 *
 * @example
 * ```ts
 * const mem = createMemoryBackend({ values: { "db/password": "hunter2" } });
 * const emissary = await createEmissary({ templates: dir, backends: [mem] });
 * mem.set("db/password", "correct horse"); // watchers are told at once
 * ```
 */
export function createMemoryBackend(opts: MemoryBackendOptions = {}): MemoryBackend {
  const name = opts.name ?? "memory";
  const values = new Map<string, { value: string | Uint8Array; version: string }>();
  const failures = new Map<string, Error>();
  const watchers = new Map<string, Set<() => void>>();
  let fetchCount = 0;
  let closed = false;

  // Bytes are copied: the caller may reuse its buffer.
  const own = (v: string | Uint8Array): string | Uint8Array => (typeof v === "string" ? v : Uint8Array.from(v));
  for (const [id, value] of Object.entries(opts.values ?? {})) values.set(id, { value: own(value), version: contentVersion(value) });

  function notify(id: string): void {
    const set = watchers.get(id);
    if (!set) return;
    // Copy first: a subscriber may unsubscribe (or subscribe) while being called.
    let first: unknown;
    for (const fn of [...set]) {
      try {
        fn();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  const backend = {
    name,
    ...(opts.defaultRefreshMs !== undefined ? { defaultRefreshMs: opts.defaultRefreshMs } : {}),
    get fetchCount() {
      return fetchCount;
    },
    get closed() {
      return closed;
    },
    async fetch(ref: SecretRef, ctx: FetchContext): Promise<Secret> {
      fetchCount++;
      if (ctx.signal.aborted) throw new TransientError(`${name}:${ref.id}: fetch aborted`);
      const failure = failures.get(ref.id);
      if (failure) throw failure;
      const entry = values.get(ref.id);
      if (!entry) throw new SecretNotFoundError(`${name}:${ref.id}: no such secret`);
      return { value: entry.value, version: entry.version };
    },
    watch(ref: SecretRef, onChange: () => void, wctx?: WatchContext): () => void {
      let set = watchers.get(ref.id);
      if (!set) watchers.set(ref.id, (set = new Set()));
      // Wrap, so the same function subscribed twice is two subscriptions.
      const sub = (): void => onChange();
      set.add(sub);
      // A change since the value the caller holds (made while it was not subscribed) is reported.
      const held = wctx?.previous;
      let active = true;
      if (held && values.get(ref.id)?.version !== held.version) queueMicrotask(() => active && sub());
      return () => {
        active = false;
        const s = watchers.get(ref.id);
        if (!s) return;
        s.delete(sub);
        if (s.size === 0) watchers.delete(ref.id);
      };
    },
    set(id: string, value: string | Uint8Array, version?: string): void {
      values.set(id, { value: own(value), version: version ?? contentVersion(value) });
      notify(id);
    },
    delete(id: string): void {
      values.delete(id);
      notify(id);
    },
    fail(id: string, err: Error | undefined): void {
      if (err === undefined) failures.delete(id);
      else failures.set(id, err);
      notify(id);
    },
    watcherCount(id?: string): number {
      if (id !== undefined) return watchers.get(id)?.size ?? 0;
      let n = 0;
      for (const s of watchers.values()) n += s.size;
      return n;
    },
    async close(): Promise<void> {
      closed = true;
      watchers.clear();
    },
  } satisfies MemoryBackend;
  return backend;
}
