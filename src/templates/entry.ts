/**
 * What the pipeline knows of one template file: its parsed template, its bindings to store keys,
 * and its state. Made by bind.ts, driven by the runner, read by status.
 * @module
 */
import type { Backend, SecretRef } from "../api/backend.js";
import { SecretNotFoundError } from "../api/errors.js";
import { extractValue, type RefSpec, type ResolvedValue } from "../api/refs.js";
import type { SecretStore } from "../sources/store.js";
import type { Template } from "./parse.js";
import type { LongTimeout } from "../api/timer.js";

/** A declared secret of a template, bound to the store key it is fetched under. */
export interface Binding {
  readonly name: string;
  readonly spec: RefSpec;
  /** Store/scheduler identity (refKey of the canonical ref). */
  readonly key: string;
  /** The reference as written, for logs and status. */
  readonly label: string;
}

/** Lifecycle state of a template. */
export type TemplateStateName = "invalid" | "pending" | "rendered" | "error";

/** Result of the last command a template's write triggered. */
export interface LastCommand {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly at: number;
  readonly error?: string;
}

/** Everything the runner knows of one template file. */
export interface TemplateEntry {
  readonly file: string;
  readonly source: string;
  readonly template?: Template;
  readonly bindings: readonly Binding[];
  state: TemplateStateName;
  /** Reference labels not yet resolved. */
  pending: string[];
  /** Sanitized last error message. */
  lastError?: string;
  lastRenderAt?: number;
  lastWriteAt?: number;
  lastCommand?: LastCommand;
  /** Keyed hashes of the values the destination last matched (see changes.ts); never values. */
  fingerprints?: ReadonlyMap<string, string>;
  /** Secret names that changed at the last write. */
  lastChanged?: readonly string[];
  hasRendered: boolean;
  dirty: boolean;
  /** A write failed in `once` mode or the template is invalid: it will not succeed without a change. */
  failed: boolean;
  retryTimer?: LongTimeout;
  owner?: { uid?: number; gid?: number };
  /** Why the template is invalid. */
  error?: Error;
  /** Backend per binding key. */
  backends?: ReadonlyMap<string, Backend>;
  /** Canonical reference per binding key. */
  refs?: ReadonlyMap<string, SecretRef>;
}

/**
 * The values a template's bindings resolve to from the store: field extraction, trimming and the
 * "not yet set" rule applied, defaults used where a value is missing. `missing` lists the
 * references (as written) that hold the template back; `invalid` holds an error for each value
 * that is there but unusable (`decode: base64` of text that is not base64), whose message names
 * the reference and never the value.
 */
export function resolveValues(bindings: readonly Binding[], store: SecretStore): { values: Map<string, ResolvedValue>; missing: string[]; invalid: Error[] } {
  const values = new Map<string, ResolvedValue>();
  const missing: string[] = [];
  const invalid: Error[] = [];
  for (const b of bindings) {
    const stored = store.get(b.key);
    let v: ResolvedValue | undefined;
    if (stored) {
      try {
        v = extractValue(b.spec, stored.secret);
      } catch (err) {
        v = undefined;
        if (!(err instanceof SecretNotFoundError)) {
          invalid.push(err instanceof Error ? err : new Error(`${b.label}: the value cannot be used`));
          continue;
        }
      }
    }
    if (!v && b.spec.default !== undefined) v = { kind: "text", text: b.spec.default };
    if (v) values.set(b.name, v);
    else missing.push(b.label);
  }
  return { values, missing, invalid };
}

