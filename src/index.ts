/**
 * emissaryd — public API. Built-in backends import only from this module, and so can yours.
 * @packageDocumentation
 */
export type { Backend, BackendFactory, BackendFactoryContext, FetchContext, ResolveContext, Secret, SecretRef } from "./api/backend.js";
export { refKey } from "./api/backend.js";
export {
  EmissaryError,
  SecretNotFoundError,
  TransientError,
  FatalError,
  TemplateError,
  ConfigError,
  WriteError,
  classifyError,
  type ErrorClass,
  type SourceLocation,
} from "./api/errors.js";
export { parseDuration, toMs, formatDuration, DurationError } from "./api/duration.js";
export { parseRef, extractValue, parsePointer, INTENTIONALLY_EMPTY, RefSyntaxError, type RefSpec, type FieldSelector, type ResolvedValue } from "./api/refs.js";
export { createLogger, silentLogger, safeError, LOG_LEVELS, LOG_FORMATS, type LogLevel, type LogFormat, type LoggerOptions, type SafeError, type Logger } from "./observe/log.js";
export { contentVersion, rejectUnknownKeys, rejectUnknownOptions } from "./api/backend-helpers.js";
export { createMemoryBackend, type MemoryBackend, type MemoryBackendOptions } from "./api/memory-backend.js";
export { createEmissary, type Emissary, type EmissaryOptions, type SettleResult } from "./emissary.js";
export type { EmissaryEvents, EmissaryEventName, Listener, FetchEvent } from "./observe/events.js";
export type { CommandEvent } from "./output/commands.js";
export type { EmissaryStatus, TemplateStatus, ReferenceStatus, EmissaryPhase, FetchOutcomeName, FetchRecord } from "./observe/status-model.js";
export type { TemplateStateName, LastCommand } from "./runner.js";
export { resolveConfig, type ResolvedConfig, type FlagValues, type BackendSettings } from "./config/resolve.js";
export { startStatusServer, health, readiness, DEFAULT_STUCK_AFTER_MS, type StatusServer, type StatusServerOptions, type HealthBody, type ReadyBody, type ReadyPendingEntry } from "./observe/status-server.js";
export { createMetrics, commandOutcome, type EmissaryMetrics, type MetricsOptions } from "./observe/metrics.js";
