/**
 * `auth.method: token_file` while references are refused: a 403 may mean the Vault Agent's token
 * in the file is stale, and the agent writes a new one soon after. The core retries a permission
 * error only at its cap (5 minutes), so while at least one reference is refused the token file is
 * re-read every {@link REFUSED_RECHECK_MS} (every {@link REFUSED_RECHECK_SLOW_MS} once one token
 * has been refused for {@link REFUSED_FAST_FOR_MS}); when it holds a new token, the refused references'
 * watchers are told (the core fetches them again at once). The timer is unref'd, and stops when
 * nothing is refused or the backend closes.
 */
import { clearLongTimeout, safeError, setLongTimeout, type LongTimeout, type Logger } from "../../src/api/index.js";

/** How often the token file is re-read while a reference is refused. */
export const REFUSED_RECHECK_MS = 2_000;
/**
 * After this long refused under one token, the re-reads slow to {@link REFUSED_RECHECK_SLOW_MS}:
 * an agent replaces a stale token within seconds, so a refusal that outlasts it is the policy's.
 */
export const REFUSED_FAST_FOR_MS = 60_000;
/** The re-read interval once {@link REFUSED_FAST_FOR_MS} has passed without a new token. */
export const REFUSED_RECHECK_SLOW_MS = 30_000;

/** What {@link RefusedRecheck} needs of the token keeper. */
export interface RefusedRecheckOptions {
  /** Re-reads the token file (a new token there is used from then on). */
  readonly recheck: () => Promise<void>;
  /** The generation of the token in use. */
  readonly generation: () => number;
  readonly logger: Logger;
  /** @defaultValue {@link REFUSED_RECHECK_MS} */
  readonly intervalMs?: number;
  /** @defaultValue {@link REFUSED_FAST_FOR_MS} */
  readonly fastForMs?: number;
  /** @defaultValue {@link REFUSED_RECHECK_SLOW_MS} */
  readonly slowIntervalMs?: number;
}

/** Tracks refused references (by refKey) and re-checks the token file while there are any. */
export class RefusedRecheck {
  readonly #o: RefusedRecheckOptions;
  /** Refused keys, with the token generation they were refused under. */
  readonly #refused = new Map<string, number>();
  readonly #watchers = new Map<string, Set<() => void>>();
  #timer?: LongTimeout;
  #running = false;
  #closed = false;
  #lastError?: string;
  /** When the current spell of refusals under one token began (epoch ms). */
  #since?: number;
  #sinceGen?: number;
  #lastDelay?: number;

  constructor(o: RefusedRecheckOptions) {
    this.#o = o;
  }

  /** The pending re-check, for tests (always unref'd); undefined when nothing is refused. */
  get timer(): LongTimeout | undefined {
    return this.#timer;
  }

  /** Keys refused now (for tests and debugging). */
  get size(): number {
    return this.#refused.size;
  }

  /** Calls `onChange` when a new token may let `key` through. Returns the unsubscribe function. */
  watch(key: string, onChange: () => void): () => void {
    let set = this.#watchers.get(key);
    if (!set) this.#watchers.set(key, (set = new Set()));
    set.add(onChange);
    return () => {
      const s = this.#watchers.get(key);
      if (!s?.delete(onChange) || s.size > 0) return;
      // No one uses the reference any more: it is not waited for.
      this.#watchers.delete(key);
      this.resolved(key);
    };
  }

  /** `key` was answered 403 under the token in use now. */
  refused(key: string): void {
    if (this.#closed) return;
    this.#refused.set(key, this.#o.generation());
    this.#arm();
  }

  /** `key` went through (or was answered 404: the token works). */
  resolved(key: string): void {
    if (!this.#refused.delete(key) || this.#refused.size > 0) return;
    clearLongTimeout(this.#timer);
    this.#timer = undefined;
    this.#since = undefined;
  }

  /** Stops the re-checks and forgets every key and watcher. */
  close(): void {
    this.#closed = true;
    clearLongTimeout(this.#timer);
    this.#timer = undefined;
    this.#refused.clear();
    this.#watchers.clear();
  }

  /** The next re-read's delay: quick at first, slow once the same token has been refused a while. */
  #interval(): number {
    const now = Date.now();
    const gen = this.#o.generation();
    if (this.#since === undefined || this.#sinceGen !== gen) {
      this.#since = now;
      this.#sinceGen = gen;
    }
    const fast = now - this.#since < (this.#o.fastForMs ?? REFUSED_FAST_FOR_MS);
    return fast ? (this.#o.intervalMs ?? REFUSED_RECHECK_MS) : (this.#o.slowIntervalMs ?? REFUSED_RECHECK_SLOW_MS);
  }

  #arm(): void {
    if (this.#timer || this.#running || this.#closed || this.#refused.size === 0) return;
    this.#lastDelay = this.#interval();
    this.#timer = setLongTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, this.#lastDelay, { unref: true });
  }

  /** The delay of the pending re-read (for tests); undefined when none is pending. */
  get nextDelayMs(): number | undefined {
    return this.#timer === undefined ? undefined : this.#lastDelay;
  }

  async #tick(): Promise<void> {
    this.#running = true;
    try {
      await this.#o.recheck();
      this.#lastError = undefined;
    } catch (err) {
      // The file is missing or unreadable for now: said once, then checked again quietly.
      const e = safeError(err);
      if (e.message !== this.#lastError) this.#o.logger.debug({ err: e }, "vault: cannot re-read the token file yet");
      this.#lastError = e.message;
    } finally {
      this.#running = false;
    }
    if (this.#closed) return;
    const gen = this.#o.generation();
    const due: string[] = [];
    for (const [key, refusedGen] of this.#refused) {
      if (refusedGen === gen) continue;
      // Told once per new token: a fetch refused again under it records it anew.
      this.#refused.set(key, gen);
      due.push(key);
    }
    if (due.length > 0) this.#o.logger.info({ refs: due.length }, "vault: a new token in the token file; fetching the refused references again");
    for (const key of due) {
      for (const fn of [...(this.#watchers.get(key) ?? [])]) {
        try {
          fn();
        } catch (err) {
          this.#o.logger.warn({ err: safeError(err) }, "vault: a watcher failed");
        }
      }
    }
    this.#arm();
  }
}
