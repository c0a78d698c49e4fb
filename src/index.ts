/**
 * emissaryd — public API. Built-in backends import only from this module, and so can yours.
 * @packageDocumentation
 */
export type { Backend, BackendFactory, BackendFactoryContext, FetchContext, ResolveContext, Secret, SecretRef } from "./backend.js";
export { refKey } from "./backend.js";
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
} from "./errors.js";
export { parseDuration, toMs, formatDuration, DurationError } from "./duration.js";
export { parseRef, extractValue, parsePointer, INTENTIONALLY_EMPTY, RefSyntaxError, type RefSpec, type FieldSelector, type ResolvedValue } from "./refs.js";
export { createLogger, silentLogger, safeError, LOG_LEVELS, LOG_FORMATS, type LogLevel, type LogFormat, type LoggerOptions, type SafeError, type Logger } from "./log.js";
export { contentVersion, rejectUnknownKeys, rejectUnknownOptions } from "./backend-helpers.js";
export { createMemoryBackend, type MemoryBackend, type MemoryBackendOptions } from "./memory-backend.js";
export { createEmissary, type Emissary, type EmissaryOptions, type SettleResult } from "./emissary.js";
export type { EmissaryEvents, EmissaryEventName, Listener, FetchEvent } from "./events.js";
export type { CommandEvent } from "./commands.js";
export type { EmissaryStatus, TemplateStatus, ReferenceStatus, EmissaryPhase, FetchOutcomeName, FetchRecord } from "./status-model.js";
export type { TemplateStateName, LastCommand } from "./runner.js";
export { resolveConfig, type ResolvedConfig, type FlagValues, type BackendSettings } from "./config.js";
export { startStatusServer, health, readiness, DEFAULT_STUCK_AFTER_MS, type StatusServer, type StatusServerOptions, type HealthBody, type ReadyBody, type ReadyPendingEntry } from "./status.js";
export { createMetrics, commandOutcome, type EmissaryMetrics, type MetricsOptions } from "./metrics.js";
