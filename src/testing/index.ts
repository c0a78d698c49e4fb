/**
 * `emissaryd/testing` — tools for people who write backends: the conformance kit, and the
 * in-memory backend for tests of code that embeds emissary.
 * @packageDocumentation
 */
export { checkBackendConformance, assertBackendConformance, type ConformanceOptions, type ConformanceResult } from "./conformance.js";
export { createMemoryBackend, type MemoryBackend, type MemoryBackendOptions } from "../api/memory-backend.js";
