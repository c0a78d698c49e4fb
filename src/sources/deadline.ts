/**
 * The fetch deadline: a backend call that has not settled in time is abandoned, its signal
 * aborted, and counted as a transient failure (see FETCH_DEADLINE_MS in scheduler.ts).
 * @module
 */
import type { Secret } from "../api/backend.js";
import { isSecretValue } from "../api/bytes.js";
import { formatDuration } from "../api/duration.js";
import { TransientError } from "../api/errors.js";

/**
 * Races `answer` against `ms`; when the time passes, aborts `abort` and rejects with a
 * {@link TransientError} naming `what`. A backend written in plain JS may answer synchronously:
 * that is treated as a settled promise.
 */
export function withDeadline<T>(answer: Promise<T> | T, abort: AbortController, what: string, ms: number): Promise<T> {
  const work = Promise.resolve(answer);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new TransientError(`${what} gave no answer within ${formatDuration(ms)}; the fetch was abandoned`));
    }, ms);
    timer.unref?.();
  });
  work.catch(() => undefined); // a rejection after the deadline is not unhandled
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** True for a `{ value: string | Uint8Array }` answer (not an Error). */
export function isSecret(v: unknown): v is Secret {
  return typeof v === "object" && v !== null && !(v instanceof Error) && isSecretValue((v as Secret).value);
}
