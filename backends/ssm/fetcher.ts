/**
 * How the ssm backend turns references into as few requests as it can:
 *
 * - Parameters: one request per distinct `Name` (name or ARN, with its selector) per cycle,
 *   batched: GetParameters takes 10 names a call, and it is used for first fetches and refreshes
 *   alike. A lone name is a GetParameter. The answer's version is compared with the previous one,
 *   so an unchanged parameter returns the very Secret it returned before.
 * - Paths: one GetParametersByPath walk (Recursive, 10 a page) per distinct path per cycle.
 * - One parameter can fail a whole GetParameters call (denied, its KMS key unusable). The names of
 *   such a call are then asked for one by one, and those that fail alone are never batched again
 *   while they keep failing, so they cannot fail their neighbours' reads.
 */
import type { Logger, Secret, SecretRef } from "../../src/api/index.js";
import { FatalError, SecretNotFoundError } from "../../src/api/index.js";
import { clientOrFail, mapLimit, planEach, push } from "../aws/pool.js";
import type { ParameterResult, SsmApi } from "./client.js";
import { SSM_ERRORS, failsPerParameter } from "./errors.js";
import { answers, keepPrevious, pathResult, planRef, toResult, type ParameterPlan, type PathPlan, type SsmPlan } from "./refs.js";

/** GetParameters takes at most this many names. */
export const BATCH_SIZE = 10;
/** Requests in flight at once per backend. */
export const CONCURRENCY = 8;
/** GetParametersByPath pages read for one path at most (10 parameters a page). */
export const MAX_PATH_PAGES = 100;

type Result = Secret | Error;

/** Options for {@link SsmFetcher}. */
export interface SsmFetcherOptions {
  /** Returns the (lazily built) API. */
  readonly api: () => Promise<SsmApi>;
  readonly logger: Logger;
}

/** Counts of API requests made, for debug logs and tests. */
export interface SsmFetchCounts {
  getParameter: number;
  getParameters: number;
  /** Pages: each is one request. */
  getParametersByPath: number;
}

/** Why a request name is asked for alone. */
type AloneReason = "fails-in-batch" | "arn-not-batched";

/**
 * Splits requests into GetParameters calls of at most {@link BATCH_SIZE} names, no two of one
 * parameter (group) in the same call: first fit, the parameters named most often placed first,
 * so they spread over the calls and the fewest calls are needed.
 */
export function chunkRequests<T extends { readonly group: string }>(items: readonly T[], size = BATCH_SIZE): T[][] {
  const perGroup = new Map<string, number>();
  for (const item of items) perGroup.set(item.group, (perGroup.get(item.group) ?? 0) + 1);
  const ordered = items.map((item, i) => ({ item, i })).sort((a, b) => perGroup.get(b.item.group)! - perGroup.get(a.item.group)! || a.i - b.i);
  const chunks: { items: T[]; groups: Set<string> }[] = [];
  for (const { item } of ordered) {
    let c = chunks.find((x) => x.items.length < size && !x.groups.has(item.group));
    if (!c) chunks.push((c = { items: [], groups: new Set() }));
    c.items.push(item);
    c.groups.add(item.group);
  }
  return chunks.map((c) => c.items);
}

/** Fetch state that outlives one call: which names are asked for alone. */
export class SsmFetcher {
  readonly #opts: SsmFetcherOptions;
  readonly #alone = new Map<string, AloneReason>();
  /** Requests made so far. */
  readonly counts: SsmFetchCounts = { getParameter: 0, getParameters: 0, getParametersByPath: 0 };

  constructor(opts: SsmFetcherOptions) {
    this.#opts = opts;
  }

  /** Fetches every reference; the map is keyed by refKey. Never throws for one reference's failure. */
  async fetchMany(refs: readonly SecretRef[], signal: AbortSignal, previous: ReadonlyMap<string, Secret>): Promise<Map<string, Result>> {
    const out = new Map<string, Result>();
    const plans = planEach(refs, planRef, out);
    if (plans.length === 0) return out;
    const api = await clientOrFail(() => this.#opts.api(), plans, out, (label, err) => SSM_ERRORS.from(label, err));
    if (api === undefined) return out;

    // One request per distinct Name (references may differ only in how they are written) and per path.
    const byRequest = new Map<string, ParameterPlan[]>();
    const byPath = new Map<string, PathPlan[]>();
    for (const p of plans) {
      if (p.kind === "path") push(byPath, p.path, p);
      else push(byRequest, p.request, p);
    }
    const set = (plan: SsmPlan, r: Result): void => void out.set(plan.key, keepPrevious(r, previous.get(plan.key)));

    await Promise.all([this.#fetchPaths(api, byPath, signal, set), this.#fetchParameters(api, byRequest, signal, set)]);
    this.#opts.logger.debug({ refs: plans.length, requests: { ...this.counts } }, "ssm fetch done");
    return out;
  }

  async #fetchPaths(api: SsmApi, byPath: Map<string, PathPlan[]>, signal: AbortSignal, set: (p: SsmPlan, r: Result) => void): Promise<void> {
    await mapLimit([...byPath], CONCURRENCY, async ([path, group]) => {
      try {
        const answer = await api.getParametersByPath(path, signal, { maxPages: MAX_PATH_PAGES, onRequest: () => void this.counts.getParametersByPath++ });
        for (const p of group) {
          if (answer.truncated) {
            set(p, new FatalError(`${p.label}: more than ${MAX_PATH_PAGES * 10} parameters below the path; name a deeper path or single parameters`));
          } else {
            set(p, pathResult(p, answer.parameters));
          }
        }
      } catch (err) {
        for (const p of group) set(p, SSM_ERRORS.from(p.label, err));
      }
    });
  }

  async #fetchParameters(api: SsmApi, byRequest: Map<string, ParameterPlan[]>, signal: AbortSignal, set: (p: SsmPlan, r: Result) => void): Promise<void> {
    const heads: ParameterPlan[] = [];
    const singles: ParameterPlan[] = [];
    for (const [request, group] of byRequest) (this.#alone.has(request) ? singles : heads).push(group[0]!);
    /** Requests asked for alone because a batch could not tell: their outcome may change #alone. */
    const probing = new Map<string, AloneReason>();

    const settle = (head: ParameterPlan, r: (p: ParameterPlan) => Result): void => {
      for (const p of byRequest.get(head.request)!) set(p, r(p));
    };

    await mapLimit(chunkRequests(heads), Math.max(1, Math.floor(CONCURRENCY / 4)), async (chunk) => {
      if (chunk.length < 2) {
        singles.push(...chunk);
        return;
      }
      let answer: { parameters: ParameterResult[]; invalid: string[] };
      try {
        this.counts.getParameters++;
        answer = await api.getParameters(
          chunk.map((h) => h.request),
          signal,
        );
      } catch (err) {
        const facts = SSM_ERRORS.facts(err);
        if (failsPerParameter(facts.name) && !signal.aborted) {
          // One of them spoils the call for all: ask each alone to find out which.
          this.#opts.logger.debug({ awsError: facts.name, names: chunk.length }, "GetParameters failed as a whole; asking for each parameter alone");
          for (const h of chunk) probing.set(h.request, "fails-in-batch");
          singles.push(...chunk);
          return;
        }
        for (const h of chunk) settle(h, (p) => SSM_ERRORS.from(p.label, err));
        return;
      }
      const invalid = new Set(answer.invalid);
      for (const h of chunk) {
        const found = answer.parameters.find((x) => answers(h, x));
        if (found) {
          settle(h, (p) => toResult(p, found));
        } else if (invalid.has(h.request) && !h.name.startsWith("arn:")) {
          const what = h.selector === undefined ? "ParameterNotFound" : /^\d+$/.test(h.selector) ? "ParameterVersionNotFound" : "ParameterNotFound";
          settle(h, (p) => new SecretNotFoundError(`${p.label}: ${what} (GetParameters lists it as invalid)`));
        } else {
          // An ARN some endpoints will not take in a batch, or a name missing from the answer.
          probing.set(h.request, "arn-not-batched");
          singles.push(h);
        }
      }
    });

    await mapLimit(singles, CONCURRENCY, async (h) => {
      const why = probing.get(h.request);
      try {
        this.counts.getParameter++;
        const found = await api.getParameter(h.request, signal);
        settle(h, (p) => toResult(p, found));
        if (why === "arn-not-batched") this.#markAlone(h, why);
        else if (this.#alone.get(h.request) === "fails-in-batch") this.#alone.delete(h.request); // fixed: batch it again
      } catch (err) {
        const e = SSM_ERRORS.from(h.label, err);
        settle(h, (p) => (p === h ? e : SSM_ERRORS.from(p.label, err)));
        if (why === "fails-in-batch" && e instanceof FatalError) this.#markAlone(h, why);
      }
    });
  }

  #markAlone(h: ParameterPlan, why: AloneReason): void {
    if (this.#alone.has(h.request)) return;
    this.#alone.set(h.request, why);
    this.#opts.logger.info(
      { ref: h.label, reason: why },
      why === "arn-not-batched"
        ? "GetParameters did not answer for this ARN; reading it with GetParameter from now on"
        : "this parameter fails a GetParameters call; reading it alone until it can be read",
    );
  }
}
