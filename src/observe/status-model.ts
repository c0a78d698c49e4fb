import type { CertificateInfo } from "../api/backend.js";
import type { EventSource } from "./events.js";
import type { ErrorClass } from "../api/errors.js";
import type { LastCommand, TemplateEntry, TemplateStateName } from "../templates/entry.js";
import type { CommandWait, CommandWaitReason } from "../output/command-timing.js";
import type { FetchTiming, NextFetchReason } from "../sources/timing.js";

/** One template in {@link EmissaryStatus}. Never holds a secret value or rendered content. */
export interface TemplateStatus {
  /** Template file path. */
  readonly file: string;
  /** Destination path (undefined for an invalid template). */
  readonly dest?: string;
  readonly state: TemplateStateName;
  /** References not yet resolved, as written (`awssm:prod/db#password`). */
  readonly pending: readonly string[];
  /** Epoch ms of the last render / write. */
  readonly lastRenderAt?: number;
  readonly lastWriteAt?: number;
  readonly lastCommand?: LastCommand;
  /** Secret names whose values changed at the last write (names, never values). */
  readonly lastChanged?: readonly string[];
  /** The template's command is waiting for its splay or its minimum interval: until when. */
  readonly commandWaiting?: { readonly until: number; readonly reason: CommandWaitReason };
  /** Sanitized last error message. */
  readonly error?: string;
}

/** Outcome of a fetch: `ok` or the class of the error. */
export type FetchOutcomeName = "ok" | ErrorClass;

/** What emissary knows of the last fetch of one reference. */
export interface FetchRecord {
  readonly outcome: FetchOutcomeName;
  /** Epoch ms the fetch finished. */
  readonly at: number;
  /** Epoch ms of the last successful fetch. */
  readonly lastOkAt?: number;
  /** Sanitized error message of a failed fetch. */
  readonly error?: string;
}

/** One unique reference (what is fetched: backend, ID and options, without `#field`). */
export interface ReferenceStatus {
  /** The reference key, e.g. `vault:secret/nomad` (fields of one secret share it). */
  readonly ref: string;
  readonly backend: string;
  /** Outcome of the last fetch; undefined before the first one finished. */
  readonly lastOutcome?: FetchOutcomeName;
  /** Epoch ms of the last fetch / last successful fetch. */
  readonly lastFetchAt?: number;
  readonly lastOkAt?: number;
  /** Sanitized message of the last failed fetch. */
  readonly error?: string;
  /** Epoch ms the next fetch is due (undefined while one is in flight). */
  readonly nextFetchAt?: number;
  /** Why it is due then: `refresh`, `retry` (not set yet), `backoff` (an error), `lease`, `renewal`, … */
  readonly nextFetchReason?: NextFetchReason;
  /** A fetch is in flight. */
  readonly fetching?: boolean;
  /** Template files that use it. */
  readonly templates: readonly string[];
  /** For an issued certificate: its validity and when it is re-issued (epoch ms; no content). */
  readonly certificate?: CertificateInfo;
}

/** Lifecycle phase of an emissary. */
export type EmissaryPhase = "created" | "starting" | "running" | "stopping" | "stopped";

/** A snapshot of emissary's state, safe to serve and log. */
export interface EmissaryStatus {
  /** True once every template has rendered at least once (and there is at least one). */
  readonly ready: boolean;
  /** `created` until start(), `starting` while templates load, `running`, then `stopping` and `stopped`. */
  readonly phase: EmissaryPhase;
  /** Epoch ms of start(). */
  readonly startedAt?: number;
  /** Epoch ms when the render/write pass now running started; undefined when idle (liveness). */
  readonly busySince?: number;
  /** The template directory does not exist (yet). */
  readonly waitingForTemplateDir: boolean;
  readonly backends: readonly string[];
  readonly templates: readonly TemplateStatus[];
  /** Every unique reference the templates use, with its last fetch outcome. */
  readonly references: readonly ReferenceStatus[];
  /** The state directory: where it is and whether it is in use (`off`, `closed` = not used yet, `open`, `refused`). */
  readonly stateDir?: { readonly dir: string; readonly phase: string };
}

/** Lifecycle facts {@link buildStatus} adds to the templates. */
export interface StatusExtras {
  readonly phase?: EmissaryPhase;
  readonly startedAt?: number;
  readonly busySince?: number;
  /** Last fetch per reference key. */
  readonly fetches?: ReadonlyMap<string, FetchRecord>;
  /** The scheduler's next fetch per reference key. */
  readonly timing?: (key: string) => FetchTiming | undefined;
  /** Commands waiting for their splay or minimum interval. */
  readonly waiting?: readonly CommandWait[];
  /** The certificate a reference key holds, if any. */
  readonly certificates?: (key: string) => CertificateInfo | undefined;
  readonly state?: { readonly dir: string; readonly phase: string };
}

/** Builds the status snapshot from the runner's entries. */
export function buildStatus(entries: readonly TemplateEntry[], backends: readonly string[], dirMissing: boolean, extras: StatusExtras = {}): EmissaryStatus {
  const waitOf = (file: string): CommandWait | undefined => extras.waiting?.find((w) => w.templates.includes(file));
  const templates = entries.map(
    (e): TemplateStatus => ({
      file: e.file,
      ...(e.template ? { dest: e.template.dest } : {}),
      state: e.state,
      pending: [...e.pending],
      ...(e.lastRenderAt !== undefined ? { lastRenderAt: e.lastRenderAt } : {}),
      ...(e.lastWriteAt !== undefined ? { lastWriteAt: e.lastWriteAt } : {}),
      ...(e.lastCommand ? { lastCommand: { ...e.lastCommand, durationMs: Math.round(e.lastCommand.durationMs) } } : {}),
      ...(e.lastChanged ? { lastChanged: [...e.lastChanged] } : {}),
      ...(waitOf(e.file) ? { commandWaiting: { until: waitOf(e.file)!.until, reason: waitOf(e.file)!.reason } } : {}),
      ...(e.lastError ? { error: e.lastError } : {}),
    }),
  );
  const refs = new Map<string, { backend: string; templates: string[] }>();
  for (const e of entries) {
    for (const b of e.bindings) {
      let r = refs.get(b.key);
      if (!r) refs.set(b.key, (r = { backend: e.refs?.get(b.key)?.backend ?? b.spec.ref.backend, templates: [] }));
      if (!r.templates.includes(e.file)) r.templates.push(e.file);
    }
  }
  const references = [...refs].map(([ref, r]): ReferenceStatus => {
    const f = extras.fetches?.get(ref);
    const t = extras.timing?.(ref);
    const cert = extras.certificates?.(ref);
    return {
      ref,
      backend: r.backend,
      ...(f ? { lastOutcome: f.outcome, lastFetchAt: f.at } : {}),
      ...(f?.lastOkAt !== undefined ? { lastOkAt: f.lastOkAt } : {}),
      ...(f?.error !== undefined ? { error: f.error } : {}),
      ...(t?.nextAt !== undefined ? { nextFetchAt: t.nextAt } : {}),
      ...(t?.reason ? { nextFetchReason: t.reason } : {}),
      ...(t?.fetching ? { fetching: true } : {}),
      templates: r.templates,
      ...(cert ? { certificate: { ...cert } } : {}),
    };
  });
  return {
    ready: templates.length > 0 && entries.every((e) => e.hasRendered),
    phase: extras.phase ?? "running",
    ...(extras.startedAt !== undefined ? { startedAt: extras.startedAt } : {}),
    ...(extras.busySince !== undefined ? { busySince: extras.busySince } : {}),
    waitingForTemplateDir: dirMissing,
    backends: [...backends],
    templates,
    references,
    ...(extras.state ? { stateDir: { ...extras.state } } : {}),
  };
}

/**
 * The message of a failed fetch, safe to serve: messages are truncated, and a `SyntaxError`'s
 * message is withheld because JSON.parse quotes the text it failed on (which may be the value).
 */
export function fetchErrorMessage(err: Error | undefined): string | undefined {
  if (!err) return undefined;
  if (err.name === "SyntaxError" || err instanceof SyntaxError) return "SyntaxError (message withheld: it may quote the value)";
  const msg = typeof err.message === "string" ? err.message : "";
  return msg.length > 300 ? msg.slice(0, 300) + "…" : msg;
}

/** What the status server and the metrics read: events and a status snapshot (an emissary). */
export interface StatusSource extends EventSource {
  /** A sanitized snapshot: no values. */
  status(): EmissaryStatus;
}

/** Records a fetch outcome for status(): the last outcome, when, the last success, a sanitized error. */
export function recordFetch(fetches: Map<string, FetchRecord>, key: string, outcome: FetchOutcomeName, err: Error | undefined, at = Date.now()): void {
  const lastOkAt = outcome === "ok" ? at : fetches.get(key)?.lastOkAt;
  const error = fetchErrorMessage(err);
  fetches.set(key, { outcome, at, ...(lastOkAt !== undefined ? { lastOkAt } : {}), ...(error !== undefined ? { error } : {}) });
}
