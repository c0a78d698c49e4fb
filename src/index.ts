/**
 * emissaryd — public API (re-exports only). Backend authors need only `emissaryd/backend`
 * (src/api/), which the built-in backends import; this module adds the daemon: createEmissary,
 * config, status, metrics.
 * @packageDocumentation
 */
export * from "./api/index.js";
export { createLogger, type LoggerOptions } from "./observe/log.js";
export { createEmissary, type Emissary, type EmissaryOptions, type SettleResult } from "./emissary.js";
export type { EmissaryEvents, EmissaryEventName, Listener, FetchEvent } from "./observe/events.js";
export type { CommandEvent } from "./output/commands.js";
export type { EmissaryStatus, TemplateStatus, ReferenceStatus, EmissaryPhase, FetchOutcomeName, FetchRecord } from "./observe/status-model.js";
export type { RefreshRequest, RefreshReport, RefreshResult } from "./observe/refresh-report.js";
export { UnknownNameError, type RefreshSelection } from "./templates/refresh-targets.js";
export type { NextFetchReason } from "./sources/timing.js";
export type { CommandWait, CommandWaitReason } from "./output/command-timing.js";
export type { TemplateStateName, LastCommand } from "./templates/entry.js";
export { resolveConfig, type ResolvedConfig, type FlagValues, type BackendSettings } from "./config/resolve.js";
export { startStatusServer, health, readiness, DEFAULT_STUCK_AFTER_MS, type StatusBody, type StatusServer, type StatusServerOptions, type HealthBody, type ReadyBody, type ReadyPendingEntry } from "./observe/status-server.js";
export { createMetrics, commandOutcome, type EmissaryMetrics, type MetricsOptions } from "./observe/metrics.js";
