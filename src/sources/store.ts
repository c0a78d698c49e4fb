import type { Secret } from "../api/backend.js";
import { sameValue } from "../api/bytes.js";

/** What the store knows of one reference. */
export interface StoredSecret {
  /** Last fetched value; kept when the secret later disappears. */
  readonly secret: Secret;
  /** When it was last fetched successfully (epoch ms). */
  readonly fetchedAt: number;
}

/**
 * The last value per reference key. It survives reloads (SIGHUP, template edits), so a reload
 * never refetches what is already known.
 */
export class SecretStore {
  readonly #values = new Map<string, StoredSecret>();

  /** The last value of `key`, if it ever resolved. */
  get(key: string): StoredSecret | undefined {
    return this.#values.get(key);
  }

  /** Stores a fetched value; returns true when it differs from the previous one. */
  set(key: string, secret: Secret, now = Date.now()): boolean {
    const prev = this.#values.get(key);
    this.#values.set(key, { secret, fetchedAt: now });
    if (!prev) return true;
    // Bytes are compared as bytes: a Buffer is never equal to another one by reference.
    if (!sameValue(prev.secret.value, secret.value)) return true;
    return (prev.secret.binary === true) !== (secret.binary === true);
  }

  /** Forgets keys no template uses anymore. */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.#values.keys()) if (!keys.has(k)) this.#values.delete(k);
  }

  /** Every stored value (for masking command output; never for logging). */
  secrets(): IterableIterator<Secret> {
    return (function* (values: Map<string, StoredSecret>) {
      for (const v of values.values()) yield v.secret;
    })(this.#values);
  }

  /** Number of stored values. */
  get size(): number {
    return this.#values.size;
  }
}
