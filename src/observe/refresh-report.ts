/**
 * Operator refreshes (`emissary refresh`, `POST /v1/refresh`, SIGUSR1): which references, the
 * forced fetches with their per-reference rate limit, and the sanitized report — what was
 * fetched, what changed, what failed. Never a value.
 * @module
 */
import type { Logger } from "pino";
import type { ErrorClass } from "../api/errors.js";
import { TransientError } from "../api/errors.js";
import type { LimitedOutcome, RefreshLimiter } from "../sources/refresh-limiter.js";
import type { Scheduler } from "../sources/scheduler.js";
import type { TemplateEntry } from "../templates/entry.js";
import { selectReferences, type RefreshSelection, type RefreshTarget } from "../templates/refresh-targets.js";
import { fetchErrorMessage } from "./status-model.js";

/** What {@link Emissary.refresh} is asked: names (see {@link RefreshSelection}) and whether to re-issue. */
export interface RefreshRequest extends RefreshSelection {
  /** Also re-issue certificates and re-read leased secrets. @defaultValue false */
  readonly reissue?: boolean;
}

/** What one reference's refresh came to. */
export interface RefreshResult {
  /** Reference key, as in /status (`vault:secret/nomad`). */
  readonly ref: string;
  readonly backend: string;
  /** Template files that use it. */
  readonly templates: readonly string[];
  /** `fetched` (the value is unchanged), `changed` (a new value: its templates render), or `error`. */
  readonly result: "fetched" | "changed" | "error";
  /** For `error`: `not_found` (not set), `transient` or `fatal`. */
  readonly errorClass?: ErrorClass;
  /** For `error`: the sanitized message (never a value). */
  readonly error?: string;
  /** Answered from this reference's refresh of the last second: nothing was fetched now. */
  readonly rateLimited?: boolean;
  readonly durationMs: number;
}

/** The answer of a refresh. */
export interface RefreshReport {
  /** No reference failed. */
  readonly ok: boolean;
  readonly reissue: boolean;
  readonly results: readonly RefreshResult[];
}

function toResult(t: RefreshTarget, r: LimitedOutcome | undefined): RefreshResult {
  const base = { ref: t.key, backend: t.backend, templates: t.templates };
  if (!r) return { ...base, result: "error", errorClass: "transient", error: "the reference is not scheduled (emissary is loading templates); try again", durationMs: 0 };
  const o = r.outcome;
  const limited = r.rateLimited ? { rateLimited: true } : {};
  const durationMs = Math.round(o.durationMs);
  if (o.outcome === "ok") return { ...base, result: o.changed ? "changed" : "fetched", ...limited, durationMs };
  return { ...base, result: "error", errorClass: o.outcome, error: fetchErrorMessage(o.error) ?? o.outcome, ...limited, durationMs };
}

/** What {@link runRefresh} works with. */
export interface RefreshContext {
  readonly entries: readonly TemplateEntry[];
  /** The template directory (a name relative to it names a template). */
  readonly dir: string;
  readonly scheduler: Scheduler;
  readonly limiter: RefreshLimiter;
  readonly logger: Logger;
  /** `running`, or why a refresh cannot be served now. */
  readonly phase: string;
  /** Who asked, for the log (`http`, `SIGUSR1`, `library`). */
  readonly source?: string;
}

/**
 * Fetches the selected references now (each at most once a second), ignoring timers and
 * backend caches, and reports per reference. Changed values render as any change does.
 * @throws {@link UnknownNameError} for a name no template uses; {@link TransientError} when emissary is not running
 */
export async function runRefresh(ctx: RefreshContext, req: RefreshRequest): Promise<RefreshReport> {
  if (ctx.phase !== "running") throw new TransientError(`emissary is ${ctx.phase}: try again once it runs`);
  const targets = selectReferences(ctx.entries, req, ctx.dir);
  const reissue = req.reissue === true;
  ctx.logger.info({ source: ctx.source ?? "library", references: targets.length, reissue }, "refresh requested");
  const results = await Promise.all(targets.map(async (t) => toResult(t, await ctx.limiter.run(t.key, () => ctx.scheduler.refresh(t.key, { reissue })))));
  const count = (r: RefreshResult["result"]): number => results.filter((x) => x.result === r).length;
  const failed = results.filter((r) => r.result === "error");
  const summary = { fetched: count("fetched"), changed: count("changed"), errors: failed.length, rateLimited: results.filter((r) => r.rateLimited).length };
  if (failed.length > 0) ctx.logger.warn({ ...summary, failed: failed.map((r) => r.ref) }, "refresh done; some references failed");
  else ctx.logger.info(summary, "refresh done");
  return { ok: failed.length === 0, reissue, results };
}
