/**
 * The fetch strategy of the awssm backend — the model of the AWS caching libraries:
 *
 * 1. A reference seen before (the core passes its last Secret, whose `version` is the VersionId)
 *    is refreshed with DescribeSecret, one call per unique secret id, which answers which version
 *    each staging label points at. Unchanged → the previous Secret is returned, no value is read.
 * 2. First fetches and changed versions read the value: BatchGetSecretValue, 20 ids a call, for
 *    AWSCURRENT; GetSecretValue for other stages, pinned versions, a lone secret, and whenever the
 *    batch call is denied (then never tried again).
 *
 * So a secret costs one request per refresh however many templates name it, and the value only
 * crosses the wire when it changed.
 */
import type { Logger, Secret, SecretRef } from "../../src/api/index.js";
import { FatalError, SecretNotFoundError } from "../../src/api/index.js";
import type { DescribeResult, SecretsApi, ValueResult } from "./client.js";
import { clientOrFail, mapLimit, planEach, push } from "../aws/pool.js";
import { awsErrorFacts, fromAwsError, fromBatchError } from "./errors.js";
import { batchable, planRef, sameSecret, toResult, type AwsSmRef } from "./refs.js";

/** BatchGetSecretValue takes at most this many ids. */
export const BATCH_SIZE = 20;
/** Requests in flight at once per backend. */
export const CONCURRENCY = 8;

/** Error names that mean "this endpoint will not do BatchGetSecretValue for us". */
const BATCH_UNAVAILABLE = new Set(["AccessDeniedException", "AccessDenied", "UnknownOperationException", "InvalidAction", "NotImplemented", "UnsupportedOperation"]);

type Result = Secret | Error;

/** Options for {@link AwsSmFetcher}. */
export interface FetcherOptions {
  /** Returns the (lazily built) API. */
  readonly api: () => Promise<SecretsApi>;
  readonly logger: Logger;
}

/** Counts of API requests made, for debug logs and tests. */
export interface FetchCounts {
  describe: number;
  getValue: number;
  batch: number;
}

/** Fetch state that outlives one call: which optional permissions turned out to be missing. */
export class AwsSmFetcher {
  readonly #opts: FetcherOptions;
  #batchUnavailable = false;
  readonly #describeDenied = new Set<string>();
  /** refKey → the version last read as empty / `intentionally-empty`, so polling it stays a DescribeSecret. */
  readonly #unset = new Map<string, string>();
  /** Requests made so far. */
  readonly counts: FetchCounts = { describe: 0, getValue: 0, batch: 0 };

  constructor(opts: FetcherOptions) {
    this.#opts = opts;
  }

  /**
   * Fetches every reference; the map is keyed by refKey. Never throws for one reference's failure.
   * `fresh` (an operator's refresh) reads every value, skipping the DescribeSecret shortcut.
   */
  async fetchMany(refs: readonly SecretRef[], signal: AbortSignal, previous: ReadonlyMap<string, Secret>, fresh = false): Promise<Map<string, Result>> {
    const out = new Map<string, Result>();
    const plans = planEach(refs, planRef, out);
    if (plans.length === 0) return out;
    const api = await clientOrFail(() => this.#opts.api(), plans, out, (label, err) => fromAwsError(label, err));
    if (api === undefined) return out;

    const needValue: AwsSmRef[] = [];
    const toDescribe = new Map<string, AwsSmRef[]>();
    for (const p of plans) {
      const known = previous.get(p.key)?.version ?? this.#unset.get(p.key);
      if (known !== undefined && !fresh && !this.#describeDenied.has(p.id)) push(toDescribe, p.id, p);
      else needValue.push(p);
    }

    await mapLimit([...toDescribe], CONCURRENCY, async ([id, group]) => {
      let d: DescribeResult;
      try {
        this.counts.describe++;
        d = await api.describe(id, signal);
      } catch (err) {
        const facts = awsErrorFacts(err);
        if (facts.name === "AccessDeniedException" && !signal.aborted) {
          this.#describeDenied.add(id);
          this.#opts.logger.warn(
            { ref: group[0]!.label, awsError: facts.name },
            "DescribeSecret denied: refreshing this secret with GetSecretValue instead (grant secretsmanager:DescribeSecret to refresh without reading the value)",
          );
          needValue.push(...group);
          return;
        }
        for (const p of group) out.set(p.key, fromAwsError(p.label, err));
        return;
      }
      for (const p of group) {
        const r = decide(p, d, previous.get(p.key), this.#unset.get(p.key));
        if (r === "fetch") needValue.push(p);
        else out.set(p.key, r);
      }
    });

    await this.#fetchValues(api, needValue, signal, out);
    this.#opts.logger.debug({ refs: plans.length, requests: { ...this.counts } }, "awssm fetch done");
    return out;
  }

  /** The Secret for a value read, remembering a not-set version for cheap polling. */
  #result(p: AwsSmRef, v: ValueResult): Result {
    const r = toResult(p, v);
    if (r instanceof SecretNotFoundError && v.versionId !== undefined) this.#unset.set(p.key, v.versionId);
    else this.#unset.delete(p.key);
    return r;
  }

  async #fetchValues(api: SecretsApi, plans: readonly AwsSmRef[], signal: AbortSignal, out: Map<string, Result>): Promise<void> {
    const singles: AwsSmRef[] = [];
    const byId = new Map<string, AwsSmRef[]>();
    for (const p of plans) {
      if (batchable(p) && !this.#batchUnavailable) push(byId, p.id, p);
      else singles.push(p);
    }
    const ids = [...byId.keys()];
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += BATCH_SIZE) chunks.push(ids.slice(i, i + BATCH_SIZE));

    await mapLimit(chunks, Math.max(1, Math.floor(CONCURRENCY / 4)), async (chunk) => {
      const group = chunk.flatMap((id) => byId.get(id)!);
      if (chunk.length < 2 || this.#batchUnavailable) {
        singles.push(...group);
        return;
      }
      let answer: { values: ValueResult[]; errors: { secretId?: string; errorCode?: string; message?: string }[] };
      try {
        this.counts.batch++;
        answer = await api.batchGetValues(chunk, signal);
      } catch (err) {
        const facts = awsErrorFacts(err);
        if (BATCH_UNAVAILABLE.has(facts.name) && !signal.aborted) {
          if (!this.#batchUnavailable) {
            this.#batchUnavailable = true;
            this.#opts.logger.warn(
              { awsError: facts.name },
              "BatchGetSecretValue is not available: reading secrets one by one with GetSecretValue (grant secretsmanager:BatchGetSecretValue to save requests)",
            );
          }
          singles.push(...group);
          return;
        }
        for (const p of group) out.set(p.key, fromAwsError(p.label, err));
        return;
      }
      for (const id of chunk) {
        const refsForId = byId.get(id)!;
        const value = answer.values.find((v) => sameSecret(id, v));
        const error = value ? undefined : answer.errors.find((e) => e.secretId === id || (e.secretId !== undefined && sameSecret(id, { arn: e.secretId })));
        for (const p of refsForId) {
          if (value) out.set(p.key, this.#result(p, value));
          else if (error) out.set(p.key, fromBatchError(p.label, error.errorCode, error.message));
          else singles.push(p); // not in the answer at all: ask for it alone
        }
      }
    });

    // One GetSecretValue per distinct (id, stage, version).
    const groups = new Map<string, AwsSmRef[]>();
    for (const p of singles) push(groups, `${p.id}\u0000${p.stage ?? ""}\u0000${p.versionId ?? ""}`, p);
    await mapLimit([...groups.values()], CONCURRENCY, async (group) => {
      const p0 = group[0]!;
      try {
        this.counts.getValue++;
        const v = await api.getValue(
          { secretId: p0.id, ...(p0.stage !== undefined ? { versionStage: p0.stage } : {}), ...(p0.versionId !== undefined ? { versionId: p0.versionId } : {}) },
          signal,
        );
        for (const p of group) out.set(p.key, this.#result(p, v));
      } catch (err) {
        for (const p of group) out.set(p.key, fromAwsError(p.label, err));
      }
    });
  }
}

/**
 * What DescribeSecret means for one reference: the previous Secret (nothing changed), "fetch"
 * (the stage moved to another version), or why it cannot be read. `unsetVersion` is a version
 * already read as empty / `intentionally-empty`: still behind the stage, it is still not set.
 */
export function decide(p: AwsSmRef, d: DescribeResult, prev: Secret | undefined, unsetVersion?: string): Secret | "fetch" | Error {
  if (d.deleted) {
    return new FatalError(`${p.label}: InvalidRequestException: the secret is scheduled for deletion — restore it or stop using it`);
  }
  const notSet = (): Error => new SecretNotFoundError(`${p.label}: the value is empty or "intentionally-empty"`);
  if (p.versionId !== undefined) {
    // A version's value never changes; DescribeSecret only confirmed the secret still exists.
    if (prev !== undefined && prev.version === p.versionId) return prev;
    if (unsetVersion === p.versionId) return notSet();
    return "fetch";
  }
  const stage = p.stage!;
  const current = Object.entries(d.versionIdsToStages).find(([, labels]) => labels.includes(stage))?.[0];
  if (current === undefined) return new SecretNotFoundError(`${p.label}: no version of the secret has the staging label ${stage}`);
  if (prev !== undefined && current === prev.version) return prev;
  if (current === unsetVersion) return notSet();
  return "fetch";
}
