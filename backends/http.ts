/**
 * The `http` backend (alias `insecure`, the original Go emissary's name): a secret is the body
 * of `GET BASE/ID`. 200 is the value, 404 means "not set yet".
 *
 * The base URL comes from, in order: `backends.http.url`, `backends.http.url_file`,
 * `EMISSARY_HTTP_URL`, or the file named by `EMISSARY_INSECURE_URLFILE` (the original's variable;
 * LinuxKit's metadata service writes that file, so it is re-read on every fetch and may appear
 * after emissary starts).
 * @packageDocumentation
 */
import {
  ConfigError,
  FatalError,
  SecretNotFoundError,
  TransientError,
  contentVersion,
  formatDuration,
  readFailure,
  readRegularFile,
  rejectUnknownKeys,
  rejectUnknownOptions,
  textOrBytes,
  toMs,
  type Backend,
  type BackendFactoryContext,
  type CheckContext,
  type CheckResult,
  type FetchContext,
  type Secret,
  type SecretRef,
} from "../src/api/index.js";
import { OriginLimit } from "./http/origin-limit.js";

/** Per-request timeout when `backends.http.timeout` is not set. @defaultValue 10 000 ms */
export const HTTP_DEFAULT_TIMEOUT_MS = 10_000;
/** Re-fetch interval of a resolved secret. @defaultValue 5 minutes */
export const HTTP_REFRESH_MS = 5 * 60_000;
/** Bodies larger than this (announced, or counted while reading) are refused. */
export const HTTP_MAX_BYTES = 16 * 1024 * 1024;

const KEYS = ["url", "url_file", "timeout"] as const;

/** Where the base URL comes from, for messages. */
type Source = { kind: "url"; url: URL; from: string } | { kind: "file"; path: string; from: string };

/** A base URL with its credentials moved into a header (fetch refuses URLs carrying them). */
interface Base {
  readonly url: URL;
  readonly authorization?: string;
}

function parseBase(text: string): Base | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  url.hash = "";
  if (url.username === "" && url.password === "") return { url };
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  url.username = "";
  url.password = "";
  return { url, authorization: "Basic " + Buffer.from(`${user}:${pass}`).toString("base64") };
}

/**
 * `base` + `/` + `id`, with exactly one slash between them and each segment of `id`
 * percent-encoded (`/` kept). The base's query string, if any, is kept.
 */
export function joinUrl(base: URL, id: string): URL {
  const u = new URL(base.href);
  const path = id.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
  u.pathname = u.pathname.replace(/\/+$/, "") + "/" + path;
  return u;
}

/**
 * Reads a response body's bytes, at most `max` of them. A server that does not announce the
 * length (chunked) could otherwise stream without end, and `res.arrayBuffer()` would hold all of
 * it in memory until the timeout (gigabytes over loopback). Returns undefined, having cancelled
 * the body, when it is larger.
 */
async function readBody(res: Response, max: number): Promise<Buffer | undefined> {
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const h = header.trim();
  if (/^\d+$/.test(h)) return Number(h) * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function validateId(ref: SecretRef): void {
  const id = ref.id.replace(/^\/+/, "");
  if (id === "") throw new FatalError(`${ref.backend}:${ref.id}: empty path`);
  if (id.split("/").some((s) => s === "." || s === "..")) throw new FatalError(`${ref.backend}:${ref.id}: "." and ".." path segments are not allowed`);
  rejectUnknownOptions(ref);
}

function configSource(ctx: BackendFactoryContext): Source | undefined {
  const { url, url_file: urlFile } = ctx.config;
  const loc = ctx.configFile !== undefined ? { file: ctx.configFile } : {};
  if (url !== undefined && urlFile !== undefined) {
    throw new ConfigError("backends.http: set url or url_file, not both", { field: "backends.http.url", ...loc });
  }
  if (url !== undefined) {
    if (typeof url !== "string" || !parseBase(url)) {
      throw new ConfigError("backends.http.url: must be an http:// or https:// URL", { field: "backends.http.url", ...loc });
    }
    return { kind: "url", url: new URL(url), from: "backends.http.url" };
  }
  if (urlFile !== undefined) {
    if (typeof urlFile !== "string" || urlFile === "") throw new ConfigError("backends.http.url_file: must be a file path", { field: "backends.http.url_file", ...loc });
    return { kind: "file", path: urlFile, from: "backends.http.url_file" };
  }
  return undefined;
}

function configTimeout(ctx: BackendFactoryContext): number {
  const t = ctx.config.timeout;
  if (t === undefined) return HTTP_DEFAULT_TIMEOUT_MS;
  let ms: number | undefined;
  try {
    if (typeof t === "string" || typeof t === "number") ms = toMs(t);
  } catch {
    ms = undefined;
  }
  if (ms === undefined || ms <= 0) {
    throw new ConfigError("backends.http.timeout: must be a positive duration such as 10s", {
      field: "backends.http.timeout",
      ...(ctx.configFile !== undefined ? { file: ctx.configFile } : {}),
    });
  }
  return ms;
}

/**
 * Builds the `http` backend.
 *
 * @param ctx - factory context; `backends.http` takes `url`, `url_file` and `timeout`
 *   (@defaultValue 10s)
 * @throws ConfigError for unknown keys, both `url` and `url_file`, or a bad URL or timeout
 */
export function createHttpBackend(ctx: BackendFactoryContext): Backend {
  rejectUnknownKeys("http", ctx.config, KEYS, ctx.configFile);
  const fromConfig = configSource(ctx);
  const timeoutMs = configTimeout(ctx);
  const closing = new AbortController();

  function source(): Source {
    if (fromConfig) return fromConfig;
    const envUrl = ctx.env.EMISSARY_HTTP_URL;
    if (envUrl) {
      const base = parseBase(envUrl);
      if (!base) throw new FatalError("EMISSARY_HTTP_URL is not an http:// or https:// URL");
      return { kind: "url", url: new URL(envUrl.trim()), from: "EMISSARY_HTTP_URL" };
    }
    const envFile = ctx.env.EMISSARY_INSECURE_URLFILE;
    if (envFile) return { kind: "file", path: envFile, from: "EMISSARY_INSECURE_URLFILE" };
    throw new FatalError(
      "http backend has no base URL: set EMISSARY_HTTP_URL to it, or EMISSARY_INSECURE_URLFILE to a file containing it, or backends.http.url / url_file in the config file",
    );
  }

  async function base(ref: SecretRef): Promise<Base> {
    const src = source();
    if (src.kind === "url") return parseBase(src.url.href)!;
    let text: string;
    try {
      text = (await readRegularFile(src.path, { maxBytes: 64 * 1024 })).toString("utf8");
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // LinuxKit's metadata service may write the file after we start: keep waiting for it.
      if (code === "ENOENT" || code === "ENOTDIR") throw new SecretNotFoundError(`${ref.backend}:${ref.id}: the base URL file ${src.path} (${src.from}) does not exist yet`);
      if (code === "EACCES" || code === "EPERM") throw new FatalError(`${ref.backend}:${ref.id}: cannot read the base URL file ${src.path} (${src.from}): permission denied`);
      if (code === "ENOTREG" || code === "EFBIG") throw new FatalError(`${ref.backend}:${ref.id}: cannot read the base URL file ${src.path} (${src.from}): ${readFailure(err)}`);
      throw new TransientError(`${ref.backend}:${ref.id}: cannot read the base URL file ${src.path} (${src.from}): ${String(code ?? "unknown error")}`);
    }
    if (text.trim() === "") throw new SecretNotFoundError(`${ref.backend}:${ref.id}: the base URL file ${src.path} (${src.from}) is empty`);
    const b = parseBase(text);
    if (!b) throw new FatalError(`${ref.backend}:${ref.id}: the base URL file ${src.path} (${src.from}) does not hold an http:// or https:// URL`);
    return b;
  }

  const origins = new OriginLimit();

  /** The GET of {@link Backend.fetch}, once the origin has a free slot (the timeout starts here). */
  async function get(fctx: FetchContext, b: Base, url: URL, where: string, label: string): Promise<Secret> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([fctx.signal, timeout, closing.signal]);
    const headers: Record<string, string> = { accept: "text/plain, application/json;q=0.9, */*;q=0.8" };
    if (b.authorization) headers.authorization = b.authorization;
    const prev = fctx.fresh ? undefined : fctx.previous?.version;
    // Only ETags (always quoted) are sent back; our own content hashes mean nothing to the server.
    // An operator's refresh (`fresh`) asks for the body whatever the ETag.
    if (prev !== undefined && (prev.startsWith('"') || prev.startsWith('W/"'))) headers["if-none-match"] = prev;

    const failed = (err: unknown): Error => {
      if (timeout.aborted) return new TransientError(`${label}: ${where} timed out after ${formatDuration(timeoutMs)}`);
      if (fctx.signal.aborted || closing.signal.aborted) return new TransientError(`${label}: ${where} aborted`);
      const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
      const code = typeof cause?.code === "string" ? cause.code : (err as { name?: string } | null)?.name ?? "error";
      return new TransientError(`${label}: ${where} failed: ${code}`);
    };

    let res: Response;
    try {
      res = await fetch(url, { signal, headers, redirect: "follow" });
    } catch (err) {
      throw failed(err);
    }
    if (res.status === 200) {
      const length = Number(res.headers.get("content-length") ?? "0");
      if (length > HTTP_MAX_BYTES) {
        await res.body?.cancel().catch(() => undefined);
        throw new FatalError(`${label}: ${where} returned a body larger than ${HTTP_MAX_BYTES} bytes`);
      }
      let body: Buffer | undefined;
      try {
        body = await readBody(res, HTTP_MAX_BYTES);
      } catch (err) {
        throw failed(err);
      }
      if (body === undefined) throw new FatalError(`${label}: ${where} returned a body larger than ${HTTP_MAX_BYTES} bytes`);
      const etag = res.headers.get("etag");
      // The body's bytes, unchanged: text when it is UTF-8 (a byte order mark kept, for the
      // core's trim to drop), the bytes themselves otherwise.
      return { value: textOrBytes(body), version: etag ?? contentVersion(body) };
    }
    await res.body?.cancel().catch(() => undefined);
    const status = res.status;
    if (status === 304 && fctx.previous) return fctx.previous;
    if (status === 404) throw new SecretNotFoundError(`${label}: ${where} returned 404`);
    if (status === 401 || status === 403) throw new FatalError(`${label}: ${where} returned ${status}: access denied`);
    if (status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw new TransientError(`${label}: ${where} returned ${status}`, retryAfterMs !== undefined ? { retryAfterMs } : undefined);
    }
    throw new FatalError(`${label}: ${where} returned unexpected status ${status}`);
}

  /** The GET of {@link Backend.check}, once the origin has a free slot. */
  async function probe(cctx: CheckContext, b: Base, url: URL): Promise<CheckResult> {
    const where = `GET ${url.origin}${url.pathname}`;
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.any([cctx.signal, timeout, closing.signal]), headers: b.authorization ? { authorization: b.authorization } : {}, redirect: "follow" });
    } catch (err) {
      const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
      const why = timeout.aborted || cctx.signal.aborted ? "timed out" : typeof code === "string" ? code : ((err as Error)?.name ?? "error");
      return { status: "unreachable", reason: `${where}: ${why}` };
    }
    await res.body?.cancel().catch(() => undefined);
    const s = res.status;
    const said = `${where} answered ${s}`;
    if (s === 200) return { status: "ok", reason: `${said} (body discarded)` };
    if (s === 404) return { status: "not_set", reason: said };
    if (s === 401 || s === 403) return { status: "denied", reason: said };
    if (s === 429 || s >= 500) return { status: "unreachable", reason: said };
    return { status: "invalid", reason: said };
}

  const backend = {
    name: "http",
    aliases: ["insecure"],
    defaultRefreshMs: HTTP_REFRESH_MS,
    validate: validateId,

    async fetch(ref: SecretRef, fctx: FetchContext): Promise<Secret> {
      validateId(ref);
      const b = await base(ref);
      const url = joinUrl(b.url, ref.id);
      // Origin and path only: the query string may hold a token, and we never name the body.
      const where = `GET ${url.origin}${url.pathname}`;
      const label = `${ref.backend}:${ref.id}`;
      let queued = true;
      const run = origins.run(url.origin, AbortSignal.any([fctx.signal, closing.signal]), () => ((queued = false), get(fctx, b, url, where, label)));
      return run.catch((err: unknown) => {
        // Stopped (or the reference dropped) while it waited for a connection.
        if (queued) throw new TransientError(`${label}: ${where} aborted`);
        throw err;
      });
    },

    /** `check --connect`: the base URL, then a GET whose body is discarded unread. */
    async check(ref: SecretRef, cctx: CheckContext): Promise<CheckResult> {
      let b: Base;
      try {
        validateId(ref);
        b = await base(ref);
      } catch (err) {
        const e = err as Error;
        return { status: e instanceof SecretNotFoundError ? "not_set" : e instanceof FatalError ? "invalid" : "unreachable", reason: e.message };
      }
      const url = joinUrl(b.url, ref.id);
      const aborted: CheckResult = { status: "unreachable", reason: `GET ${url.origin}${url.pathname}: aborted` };
      return origins.run(url.origin, AbortSignal.any([cctx.signal, closing.signal]), () => probe(cctx, b, url)).catch(() => aborted);
    },

    async close(): Promise<void> {
      closing.abort();
    },
  } satisfies Backend;
  return backend;
}

/** The module's default export: the `http` backend factory. */
export default createHttpBackend;
