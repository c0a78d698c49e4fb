/**
 * The scheduler's public shapes: what a fetch reports, and the options of {@link Scheduler}
 * (src/sources/scheduler.ts).
 * @module
 */
import type { Logger } from "pino";
import type { SecretRef, StateAccess } from "../api/backend.js";
import type { ErrorClass } from "../api/errors.js";
import type { Random } from "./jitter.js";
import type { SecretStore } from "./store.js";

/** Outcome of one fetch, reported to the runner and to observers. */
export interface FetchOutcome {
  readonly key: string;
  readonly ref: SecretRef;
  readonly outcome: "ok" | ErrorClass;
  /** True when the value differs from the stored one (only for "ok"). */
  readonly changed: boolean;
  readonly durationMs: number;
  /** Sanitized error (for observers); never contains a value. */
  readonly error?: Error;
}

/** Options of {@link Scheduler.refresh}. */
export interface ForceOptions {
  /** Also re-read leased secrets and re-issue certificates ({@link FetchContext.reissue}). */
  readonly reissue?: boolean;
}

/** Options for {@link Scheduler}. */
export interface SchedulerOptions {
  readonly store: SecretStore;
  readonly logger: Logger;
  /** Retry interval while a secret is not set. @defaultValue 10000 */
  readonly retryMs?: number;
  /** Called after every fetch. */
  readonly onFetch: (o: FetchOutcome) => void;
  /** Randomness for jitter (tests). */
  readonly random?: Random;
  /** See {@link FETCH_DEADLINE_MS}. @defaultValue 120000 */
  readonly fetchDeadlineMs?: number;
  /** The state directory's reference entries, handed to every fetch. */
  readonly state?: StateAccess;
  /** False (`render`): backends must not issue anything. @defaultValue true */
  readonly issue?: boolean;
  /** False (`once`, `render`): a push backend's watch starts only for a reference whose fetch did not resolve. @defaultValue true */
  readonly watchResolved?: boolean;
}
