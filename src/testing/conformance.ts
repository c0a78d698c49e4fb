/**
 * A framework-agnostic conformance kit for {@link Backend} implementations. Run it from vitest,
 * jest, node:test or a plain script against a backend that can reach one existing and one
 * missing secret.
 *
 * @example
 * ```ts
 * import { assertBackendConformance } from "emissaryd/testing";
 * test("consul backend conforms", async () => {
 *   await assertBackendConformance({
 *     backend: createConsulBackend(ctx),
 *     existing: { ref: { backend: "consul", id: "app/db", options: {} }, expectedValue: "s3cret" },
 *     missing: { backend: "consul", id: "app/nope", options: {} },
 *     change: () => consulPut("app/db", "new"),
 *   });
 * });
 * ```
 * @packageDocumentation
 */
import { refKey, type Backend, type FetchContext, type Secret, type SecretRef } from "../api/backend.js";
import { isSecretValue, sameValue, utf8Text, valueBytes, type SecretValue } from "../api/bytes.js";
import { classifyError } from "../api/errors.js";
import { silentLogger } from "../api/log.js";

/** What {@link checkBackendConformance} is run against. */
export interface ConformanceOptions {
  /** The backend under test. It is closed at the end when it has `close`. */
  backend: Backend;
  /**
   * A reference that exists, and optionally the value it must fetch as: text, or bytes (a
   * backend may return either; a string and its UTF-8 bytes are the same value).
   */
  existing: { ref: SecretRef; expectedValue?: string | Uint8Array };
  /** A reference that does not exist: fetching it must throw `SecretNotFoundError`. */
  missing: SecretRef;
  /** Changes the `existing` secret's value, to check `watch` and `version`. Called at most once. */
  change?: () => Promise<void>;
  /** How long any one step may take before it counts as hung. @defaultValue 5000 */
  timeoutMs?: number;
}

/** The outcome of one check. Messages never contain a secret value. */
export interface ConformanceResult {
  /** The check's name: `name`, `fetch`, `missing`, `abort`, `fetchMany`, `watch`, `version`, `close`, `errors`. */
  name: string;
  /** Whether the backend passed. A skipped check passes. */
  ok: boolean;
  /** Why it failed, or why it was skipped. */
  message?: string;
  /** True when the check did not apply (no `watch`, no `change`, …). */
  skipped?: boolean;
}

const NAME = /^[a-z][a-z0-9_-]*$/;
const TIMED_OUT = Symbol("timed out");

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown } | { ok: "timeout" };

/** Runs `fn`, giving up (without cancelling it) after `ms`. */
async function settle<T>(fn: () => Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((r) => {
    timer = setTimeout(() => r(TIMED_OUT), ms);
  });
  try {
    const p = Promise.resolve().then(fn);
    const r = await Promise.race([p.then((value) => ({ ok: true as const, value })), timeout]);
    return r === TIMED_OUT ? { ok: "timeout" } : r;
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

/** Describes a thrown value by class and code only: its message may be what we are testing. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return `a non-Error value (${err === null ? "null" : typeof err})`;
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === "string" ? ` (code ${code})` : ""}`;
}

/** A Secret: its value a string or a Uint8Array (a Buffer is one), `binary` a boolean when given. */
function isSecret(v: unknown): v is Secret {
  if (v === null || typeof v !== "object" || !isSecretValue((v as { value?: unknown }).value)) return false;
  const binary = (v as { binary?: unknown }).binary;
  return binary === undefined || typeof binary === "boolean";
}

/**
 * The forms a value could leak in: its text (UTF-8, or Latin-1 for bytes that are not UTF-8),
 * and for bytes their base64 and hex. Text shorter than 3 characters and encodings shorter than
 * 8 are left out (they would match by chance).
 */
function leakForms(value: SecretValue): string[] {
  if (typeof value === "string") return [value.trim()].filter((v) => v.length >= 3);
  const b = valueBytes(value);
  const text = utf8Text(b);
  const encoded = [b.toString("base64"), b.toString("hex")].filter((v) => v.length >= 8);
  return [...[text !== undefined ? text.trim() : b.toString("latin1")].filter((v) => v.length >= 3), ...encoded];
}

/** Every message in an error's cause chain (and its `String()`), for the leak check. */
function texts(err: unknown, depth = 0): string[] {
  if (err === null || err === undefined || depth > 5) return [];
  if (!(err instanceof Error)) return [String(err)];
  return [err.message, String(err), ...texts((err as { cause?: unknown }).cause, depth + 1)];
}

/**
 * Runs every check and returns one result per check. Never throws for a failing backend.
 * Checks: `name`, `fetch`, `missing`, `abort`, `fetchMany`, `watch`, `version`, `close`, `errors`.
 */
export async function checkBackendConformance(opts: ConformanceOptions): Promise<ConformanceResult[]> {
  const { backend, existing, missing } = opts;
  const ms = opts.timeoutMs ?? 5000;
  const results: ConformanceResult[] = [];
  const thrown: { where: string; err: unknown }[] = [];
  /** Values the backend returned for `existing`: none of them may appear in an error message. */
  const values = new Set<SecretValue>();
  if (existing.expectedValue !== undefined) values.add(existing.expectedValue);
  const pass = (name: string, message?: string): void => {
    results.push(message === undefined ? { name, ok: true } : { name, ok: true, message });
  };
  const fail = (name: string, message: string): void => {
    results.push({ name, ok: false, message });
  };
  const skip = (name: string, message: string): void => {
    results.push({ name, ok: true, skipped: true, message });
  };
  const ctx = (signal: AbortSignal = new AbortController().signal): FetchContext => ({ signal, logger: silentLogger() });
  const fetchOne = async (where: string, ref: SecretRef, signal?: AbortSignal): Promise<Outcome<Secret>> => {
    const o = await settle(() => backend.fetch(ref, ctx(signal)), ms);
    if (o.ok === false) thrown.push({ where, err: o.error });
    if (o.ok === true && isSecret(o.value)) values.add(o.value.value);
    return o;
  };
  const ex = refKey(existing.ref);
  const mi = refKey(missing);

  // name
  const badAlias = (backend.aliases ?? []).find((a) => !NAME.test(a));
  if (typeof backend.name !== "string" || !NAME.test(backend.name)) fail("name", `name ${JSON.stringify(backend.name)} must match ${NAME}`);
  else if (badAlias !== undefined) fail("name", `alias ${JSON.stringify(badAlias)} must match ${NAME}`);
  else pass("name");

  // fetch
  const first = await fetchOne("fetch", existing.ref);
  let firstVersion: string | undefined;
  if (first.ok === "timeout") fail("fetch", `fetch(${ex}) did not settle within ${ms} ms`);
  else if (first.ok === false) fail("fetch", `fetch(${ex}) threw ${describe(first.error)}; expected a Secret`);
  else if (!isSecret(first.value)) fail("fetch", `fetch(${ex}) resolved to something without a "value" that is a string or a Uint8Array`);
  else if (existing.expectedValue !== undefined && !sameValue(first.value.value, existing.expectedValue)) {
    const n = (v: SecretValue): number => valueBytes(v).length;
    fail("fetch", `fetch(${ex}) returned a value different from expectedValue (${n(first.value.value)} and ${n(existing.expectedValue)} bytes)`);
  } else if (first.value.version !== undefined && typeof first.value.version !== "string") {
    fail("fetch", `fetch(${ex}) returned a non-string version`);
  } else {
    firstVersion = first.value.version;
    pass("fetch");
  }

  // missing
  const miss = await fetchOne("missing", missing);
  if (miss.ok === "timeout") fail("missing", `fetch(${mi}) did not settle within ${ms} ms`);
  else if (miss.ok === true) fail("missing", `fetch(${mi}) resolved; a missing secret must throw SecretNotFoundError`);
  else if (classifyError(miss.error) !== "not_found") {
    fail("missing", `fetch(${mi}) threw ${describe(miss.error)}; expected SecretNotFoundError (or an error with code "NOT_FOUND")`);
  } else pass("missing");

  // abort: an already-aborted signal, and one aborted while the fetch runs.
  const pre = new AbortController();
  pre.abort();
  const before = await fetchOne("abort", existing.ref, pre.signal);
  const during = new AbortController();
  const running = fetchOne("abort", existing.ref, during.signal);
  // Let the fetch start (settle calls it on a later tick), then abort it mid-flight.
  await new Promise((r) => setImmediate(r));
  during.abort();
  const after = await running;
  if (before.ok === "timeout") fail("abort", `fetch(${ex}) with an already-aborted signal did not settle within ${ms} ms; fetch must honour ctx.signal`);
  else if (after.ok === "timeout") fail("abort", `fetch(${ex}) did not settle within ${ms} ms after its signal was aborted; fetch must honour ctx.signal`);
  else pass("abort");

  // fetchMany
  if (!backend.fetchMany) skip("fetchMany", "the backend has no fetchMany");
  else {
    const many = await settle(() => backend.fetchMany!([existing.ref, missing], { signal: new AbortController().signal, logger: silentLogger(), previous: new Map() }), ms);
    if (many.ok === "timeout") fail("fetchMany", `fetchMany did not settle within ${ms} ms`);
    else if (many.ok === false) {
      thrown.push({ where: "fetchMany", err: many.error });
      fail("fetchMany", `fetchMany threw ${describe(many.error)}; it must return a Map with one entry per reference`);
    } else if (!(many.value instanceof Map)) fail("fetchMany", "fetchMany did not return a Map");
    else {
      const m = many.value;
      const got = m.get(ex);
      const gotMissing = m.get(mi);
      if (gotMissing instanceof Error) thrown.push({ where: "fetchMany", err: gotMissing });
      if (isSecret(got)) values.add(got.value);
      const extra = [...m.keys()].filter((k) => k !== ex && k !== mi);
      if (extra.length > 0) fail("fetchMany", `fetchMany returned keys that are not refKey() of a requested reference: ${extra.slice(0, 3).map((k) => JSON.stringify(k)).join(", ")}`);
      else if (!m.has(ex) || !m.has(mi)) fail("fetchMany", `fetchMany must return one entry per reference, keyed by refKey(); missing ${[ex, mi].filter((k) => !m.has(k)).join(", ")}`);
      else if (!isSecret(got)) fail("fetchMany", `fetchMany entry ${ex} is not a Secret with a string or Uint8Array value`);
      else if (!(gotMissing instanceof Error) || classifyError(gotMissing) !== "not_found") fail("fetchMany", `fetchMany entry ${mi} is ${describe(gotMissing)}; expected a SecretNotFoundError`);
      else pass("fetchMany");
    }
  }

  // watch + version
  let unsubscribe: (() => void) | undefined;
  let firedWake: () => void = () => undefined;
  const firedOnce = new Promise<void>((r) => (firedWake = r));
  if (!backend.watch) skip("watch", "the backend has no watch");
  else {
    try {
      const u = backend.watch(existing.ref, () => firedWake());
      if (typeof u !== "function") fail("watch", "watch() must return an unsubscribe function");
      else unsubscribe = u;
    } catch (err) {
      thrown.push({ where: "watch", err });
      fail("watch", `watch() threw ${describe(err)}`);
    }
  }
  if (!opts.change) {
    if (unsubscribe) pass("watch", "change() not given: only the unsubscribe function was checked");
    skip("version", "change() not given");
  } else {
    // Let a watcher settle its baseline before the change (file watchers read it asynchronously).
    if (unsubscribe) await new Promise((r) => setTimeout(r, Math.min(200, ms / 10)));
    const changed = await settle(opts.change, ms);
    if (changed.ok !== true) {
      const why = changed.ok === "timeout" ? `did not settle within ${ms} ms` : `threw ${describe(changed.error)}`;
      if (unsubscribe) fail("watch", `the change() callback ${why}`);
      fail("version", `the change() callback ${why}`);
    } else {
      if (unsubscribe) {
        if ((await settle(() => firedOnce, ms)).ok === true) pass("watch");
        else fail("watch", `onChange was not called within ${ms} ms of change()`);
      }
      const second = await fetchOne("version", existing.ref);
      if (second.ok !== true || !isSecret(second.value)) fail("version", `fetch(${ex}) after change() failed: ${second.ok === "timeout" ? "timed out" : second.ok === false ? describe(second.error) : "not a Secret"}`);
      else if (firstVersion === undefined || second.value.version === undefined) skip("version", "the backend returns no version");
      else if (firstVersion === second.value.version) fail("version", `fetch(${ex}) returned the same version after change(); a version must change when the value does`);
      else pass("version");
    }
  }
  if (unsubscribe) {
    try {
      unsubscribe();
    } catch (err) {
      thrown.push({ where: "unsubscribe", err });
      fail("watch", `the unsubscribe function threw ${describe(err)}`);
    }
  }

  // close
  if (!backend.close) skip("close", "the backend has no close");
  else {
    const c1 = await settle(() => backend.close!(), ms);
    const c2 = c1.ok === true ? await settle(() => backend.close!(), ms) : c1;
    if (c1.ok !== true) fail("close", `close() ${c1.ok === "timeout" ? `did not settle within ${ms} ms` : `threw ${describe(c1.error)}`}`);
    else if (c2.ok !== true) fail("close", `a second close() ${c2.ok === "timeout" ? `did not settle within ${ms} ms` : `threw ${describe(c2.error)}`}; close must be idempotent`);
    else pass("close");
  }

  // errors
  const problems: string[] = [];
  const secrets = [...values].flatMap(leakForms);
  for (const { where, err } of thrown) {
    if (!(err instanceof Error)) problems.push(`${where}: threw ${describe(err)} instead of an Error`);
    else if (texts(err).some((t) => secrets.some((s) => t.includes(s)))) problems.push(`${where}: the ${describe(err)} message contains the secret's value`);
  }
  if (problems.length > 0) fail("errors", problems.join("; "));
  else pass("errors");
  return results;
}

/**
 * Runs {@link checkBackendConformance} and throws an `Error` listing every failed check.
 * @throws Error when any check fails
 */
export async function assertBackendConformance(opts: ConformanceOptions): Promise<void> {
  const results = await checkBackendConformance(opts);
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return;
  const lines = failed.map((r) => `  - ${r.name}: ${r.message ?? "failed"}`);
  throw new Error(`backend "${String(opts.backend.name)}" failed ${failed.length} conformance check${failed.length === 1 ? "" : "s"}:\n${lines.join("\n")}`);
}
