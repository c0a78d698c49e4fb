import type { Logger } from "pino";
import type { CommandEvent } from "../output/commands.js";

/** Events the runner reports. */
export interface RunnerEvents {
  render: { template: string; dest: string; changed: boolean };
  /** `changed`: the template's secret names whose values changed since the last write (all of them on the first write since start); never values. */
  write: { template: string; dest: string; inPlace: boolean; reason?: string; changed: readonly string[] };
  pending: { template: string; dest: string; missing: string[] };
  error: { template?: string; ref?: string; error: Error };
}

/** A fetch finished (for metrics). Never carries a value. */
export interface FetchEvent {
  readonly backend: string;
  /** The reference key (`backend:id`), never a value. */
  readonly ref: string;
  readonly outcome: "ok" | "not_found" | "transient" | "fatal";
  readonly changed: boolean;
  readonly durationMs: number;
}

/** Every event `Emissary.on` delivers, with its payload. */
export interface EmissaryEvents extends RunnerEvents {
  /** A reload command finished (or failed, or timed out). */
  command: CommandEvent;
  /** A backend fetch finished. */
  fetch: FetchEvent;
  /** Templates were (re)loaded. */
  reload: { templates: number; invalid: number };
  /** Every template has rendered at least once. */
  ready: { templates: number };
}

/** Event name. */
export type EmissaryEventName = keyof EmissaryEvents;
/** Listener for an event. */
export type Listener<K extends EmissaryEventName> = (payload: EmissaryEvents[K]) => void;

/** Something that delivers emissary events (an {@link Emissary} is one). */
export interface EventSource {
  /** Subscribes to an event. */
  on<K extends EmissaryEventName>(event: K, fn: Listener<K>): this;
  /** Unsubscribes. */
  off<K extends EmissaryEventName>(event: K, fn: Listener<K>): this;
}

/**
 * A small typed emitter. Unlike node's EventEmitter, an "error" event with no listener does not
 * throw, and a throwing listener is logged instead of stopping the daemon.
 */
export class TypedEmitter {
  readonly #listeners = new Map<EmissaryEventName, Set<(p: unknown) => void>>();
  constructor(private readonly logger: () => Logger) {}

  /** Adds a listener. */
  on<K extends EmissaryEventName>(event: K, fn: Listener<K>): this {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(fn as (p: unknown) => void);
    return this;
  }

  /** Removes a listener. */
  off<K extends EmissaryEventName>(event: K, fn: Listener<K>): this {
    this.#listeners.get(event)?.delete(fn as (p: unknown) => void);
    return this;
  }

  /** Adds a listener called at most once. */
  once<K extends EmissaryEventName>(event: K, fn: Listener<K>): this {
    const wrap: Listener<K> = (p) => {
      this.off(event, wrap);
      fn(p);
    };
    return this.on(event, wrap);
  }

  /** Delivers an event to its listeners. */
  emit<K extends EmissaryEventName>(event: K, payload: EmissaryEvents[K]): void {
    for (const fn of [...(this.#listeners.get(event) ?? [])]) {
      try {
        fn(payload);
      } catch (err) {
        this.logger().warn({ event, err: { type: (err as Error)?.name, message: "listener threw" } }, "an event listener threw");
      }
    }
  }
}
