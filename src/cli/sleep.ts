/**
 * A sleep of any length that can be cut short. Node's timers overflow past 2^31-1 ms (~24.8
 * days) and then fire at once; a startup delay of weeks must be honoured, so long waits are
 * chained.
 */

/** Largest delay one Node timer takes. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending sleep: `done` is true when it ran its course, false when `wake()` ended it first. */
export interface Sleep {
  readonly done: Promise<boolean>;
  wake(): void;
}

/** Sleeps `ms` milliseconds (any length). */
export function sleep(ms: number): Sleep {
  let wake = (): void => undefined;
  const done = new Promise<boolean>((resolve) => {
    const end = Date.now() + Math.max(0, ms);
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const left = end - Date.now();
      if (left <= 0) return resolve(true);
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    wake = () => {
      clearTimeout(timer);
      resolve(false);
    };
    arm();
  });
  return { done, wake: () => wake() };
}
