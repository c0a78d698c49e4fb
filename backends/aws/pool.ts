/** Small concurrency, grouping and planning helpers of the AWS backends' fetchers. */
import { FatalError, refKey, type FetchContext, type Secret, type SecretRef } from "../../src/api/index.js";

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}

/** Appends `v` to the list at `k`, creating it. */
export function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** What the AWS fetchers need of a planned reference. */
interface Planned {
  /** refKey of the reference. */
  readonly key: string;
  /** The reference as written, for errors. */
  readonly label: string;
}

/**
 * Plans each reference once (by key), in order. A reference that cannot be planned has its error
 * set in `out` and is left out.
 */
export function planEach<P extends Planned>(refs: readonly SecretRef[], plan: (ref: SecretRef) => P, out: Map<string, Secret | Error>): P[] {
  const plans: P[] = [];
  const seen = new Set<string>();
  for (const ref of refs) {
    let p: P;
    try {
      p = plan(ref);
    } catch (err) {
      out.set(refKey(ref), err as Error);
      continue;
    }
    if (seen.has(p.key)) continue;
    seen.add(p.key);
    plans.push(p);
  }
  return plans;
}

/**
 * The API client, or undefined when it cannot be had (no region, no credentials): then every
 * plan's result in `out` is that failure, as `toError` classifies it.
 */
export async function clientOrFail<A>(get: () => Promise<A>, plans: readonly Planned[], out: Map<string, Secret | Error>, toError: (label: string, err: unknown) => Error): Promise<A | undefined> {
  try {
    return await get();
  } catch (err) {
    for (const p of plans) out.set(p.key, toError(p.label, err));
    return undefined;
  }
}

/**
 * One reference through a fetcher's batch path (`fetch` of a backend that has `fetchMany`): the
 * reference's held value is the batch's `previous`; its error is thrown.
 */
export async function fetchOneOfMany(ref: SecretRef, fctx: FetchContext, many: (refs: readonly SecretRef[], previous: ReadonlyMap<string, Secret>) => Promise<Map<string, Secret | Error>>): Promise<Secret> {
  const key = refKey(ref);
  const previous = new Map<string, Secret>(fctx.previous ? [[key, fctx.previous]] : []);
  const r = (await many([ref], previous)).get(key);
  if (r === undefined) throw new FatalError(`${key}: no result`);
  if (r instanceof Error) throw r;
  return r;
}
