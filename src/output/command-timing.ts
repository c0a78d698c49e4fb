/**
 * Fleet-safe commands: `splay` and `min_interval` (SPEC "Operator control").
 *
 * - `splay: 30s` waits a uniformly random 0–30s before each run, drawn per run, so a fleet that
 *   receives a rotation at once does not restart a service everywhere at the same moment.
 * - `min_interval: 1m` starts a command at most once a minute: writes in between coalesce into
 *   one run at the end of the interval (a write while the command runs queues one more run at
 *   most, never several).
 *
 * A command held here is "waiting" (status shows until when); a write for the same command while
 * it waits joins that run instead of adding one. Runs never overlap: a released run goes into the
 * {@link CommandQueue}, which runs one command at a time.
 * @module
 */
import { clearLongTimeout, setLongTimeout, type LongTimeout } from "../api/timer.js";

/** Randomness source (tests). */
export type Random = () => number;

/** Why a command waits. */
export type CommandWaitReason = "splay" | "min_interval";

/** A command waiting for its splay or its minimum interval (status). */
export interface CommandWait {
  readonly command: readonly string[];
  /** Template files whose writes it runs for. */
  readonly templates: readonly string[];
  /** Epoch ms it is due to start. */
  readonly until: number;
  readonly reason: CommandWaitReason;
}

/** What the timing needs of a job. */
export interface TimedJob {
  readonly argv: readonly string[];
  readonly templates: string[];
  /** @defaultValue 0 (no splay) */
  readonly splayMs?: number;
  /** @defaultValue 0 (no minimum interval) */
  readonly minIntervalMs?: number;
}

/** Options for {@link CommandTiming}. */
export interface CommandTimingOptions<J extends TimedJob> {
  /** Called when a held job is due: queue it to run. */
  readonly release: (key: string, job: J) => void;
  /** @defaultValue Math.random */
  readonly random?: Random;
  /** @defaultValue Date.now */
  readonly now?: () => number;
}

interface Held<J> {
  job: J;
  readonly until: number;
  readonly reason: CommandWaitReason;
  readonly timer: LongTimeout;
}

/** When each command may start; holds the ones that must wait. */
export class CommandTiming<J extends TimedJob> {
  readonly #held = new Map<string, Held<J>>();
  /** Epoch ms each command (by key) last started. */
  readonly #lastStart = new Map<string, number>();
  readonly #opts: CommandTimingOptions<J>;
  readonly #random: Random;
  readonly #now: () => number;

  constructor(opts: CommandTimingOptions<J>) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? Date.now;
  }

  /** Number of commands waiting. */
  get size(): number {
    return this.#held.size;
  }

  /** The waiting job of `key`, if any (a new write for it joins that run). */
  held(key: string): J | undefined {
    return this.#held.get(key)?.job;
  }

  /** Replaces the waiting job of `key` (after merging a new write into it). */
  update(key: string, job: J): void {
    const h = this.#held.get(key);
    if (h) h.job = job;
  }

  /**
   * Holds `job` when it must wait; returns false when it may be queued now. A command runs no
   * sooner than `minIntervalMs` after its last start (a run in progress counts), then after a
   * fresh splay draw.
   */
  hold(key: string, job: J): boolean {
    const now = this.#now();
    const splay = Math.max(0, job.splayMs ?? 0);
    const minInterval = Math.max(0, job.minIntervalMs ?? 0);
    if (splay === 0 && minInterval === 0) return false;
    const last = this.#lastStart.get(key);
    const base = minInterval > 0 && last !== undefined ? Math.max(now, last + minInterval) : now;
    const until = base + (splay > 0 ? Math.round(this.#random() * splay) : 0);
    if (until <= now) return false;
    // A long timer: a splay or min_interval past Node's 24.8-day limit is honoured, not a busy loop.
    const timer = setLongTimeout(
      () => {
        const h = this.#held.get(key);
        if (!h || h.timer !== timer) return;
        this.#held.delete(key);
        this.#opts.release(key, h.job);
      },
      until - now,
      { unref: true },
    );
    this.#held.set(key, { job, until, reason: base > now ? "min_interval" : "splay", timer });
    return true;
  }

  /** Records that the command `key` started now. */
  started(key: string): void {
    this.#lastStart.set(key, this.#now());
  }

  /** The waiting commands, soonest first. */
  waiting(): CommandWait[] {
    return [...this.#held.values()]
      .map((h) => ({ command: h.job.argv, templates: [...h.job.templates], until: h.until, reason: h.reason }))
      .sort((a, b) => a.until - b.until);
  }

  /** Drops every waiting command (emissary is stopping). */
  stop(): void {
    for (const h of this.#held.values()) clearLongTimeout(h.timer);
    this.#held.clear();
  }
}
