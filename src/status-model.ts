import type { LastCommand, TemplateEntry, TemplateStateName } from "./runner.js";

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
  /** Sanitized last error message. */
  readonly error?: string;
}

/** A snapshot of emissary's state, safe to serve and log. */
export interface EmissaryStatus {
  /** True once every template has rendered at least once (and there is at least one). */
  readonly ready: boolean;
  /** The template directory does not exist (yet). */
  readonly waitingForTemplateDir: boolean;
  readonly backends: readonly string[];
  readonly templates: readonly TemplateStatus[];
}

/** Builds the status snapshot from the runner's entries. */
export function buildStatus(entries: readonly TemplateEntry[], backends: readonly string[], dirMissing: boolean): EmissaryStatus {
  const templates = entries.map(
    (e): TemplateStatus => ({
      file: e.file,
      ...(e.template ? { dest: e.template.dest } : {}),
      state: e.state,
      pending: [...e.pending],
      ...(e.lastRenderAt !== undefined ? { lastRenderAt: e.lastRenderAt } : {}),
      ...(e.lastWriteAt !== undefined ? { lastWriteAt: e.lastWriteAt } : {}),
      ...(e.lastCommand ? { lastCommand: e.lastCommand } : {}),
      ...(e.lastError ? { error: e.lastError } : {}),
    }),
  );
  return {
    ready: templates.length > 0 && entries.every((e) => e.hasRendered),
    waitingForTemplateDir: dirMissing,
    backends: [...backends],
    templates,
  };
}
