/**
 * emissaryd/backend — everything a backend author needs, and nothing of the daemon: the Backend
 * contract, the errors that tell the fetch loop what to do, references, durations, the safe
 * error serializer and helpers, and the memory backend. The built-in backends import only this
 * module; `emissaryd` re-exports all of it.
 * @packageDocumentation
 */
export type { Backend, BackendFactory, BackendFactoryContext, CertificateInfo, CheckContext, CheckResult, CheckStatus, FetchContext, ParamValue, ResolveContext, Secret, SecretRef, StateAccess, WatchContext } from "./backend.js";
export { canonicalParams, refKey } from "./backend.js";
export {
  EmissaryError,
  SecretNotFoundError,
  TransientError,
  FatalError,
  TemplateError,
  ConfigError,
  WriteError,
  WouldIssueError,
  classifyError,
  type ErrorClass,
  type SourceLocation,
} from "./errors.js";
export { parseDuration, toMs, formatDuration, DurationError } from "./duration.js";
export {
  parseRef,
  extractValue,
  effectiveEncoding,
  parsePointer,
  INTENTIONALLY_EMPTY,
  RefSyntaxError,
  VALUE_ENCODINGS,
  VALUE_DECODINGS,
  ESCAPE_MODES,
  type RefSpec,
  type FieldSelector,
  type ResolvedValue,
  type ValueEncoding,
  type ValueDecoding,
  type EscapeMode,
} from "./refs.js";
export { textOrBytes, utf8Text, valueBytes, sameValue, isSecretValue, isUnsetValue, decodeBase64, type SecretValue } from "./bytes.js";
export { safeError, silentLogger, LOG_LEVELS, LOG_FORMATS, type LogLevel, type LogFormat, type SafeError, type Logger } from "./log.js";
export { contentVersion, rejectUnknownKeys, rejectUnknownOptions } from "./backend-helpers.js";
export { createMemoryBackend, type MemoryBackend, type MemoryBackendOptions } from "./memory-backend.js";
export { setLongTimeout, clearLongTimeout, sleep, MAX_TIMER_MS, type LongTimeout, type LongTimeoutOptions } from "./timer.js";
export { readRegularFile, readRegularFileSync, readFailure, READ_MAX_BYTES, type SafeReadOptions } from "./safe-read.js";
