/**
 * Operator control over the status server: who may `POST /v1/refresh`, and what such a request
 * may say.
 *
 * - A peer on loopback (127.0.0.0/8, ::1) is accepted: it is on this machine, as `emissary
 *   refresh` is.
 * - Any other peer (the server listens on a non-loopback address) must carry
 *   `Authorization: Bearer <token>` matching the first line of `status.control_token_file`. The
 *   file is re-read when it changes (stat: inode, size, mtime, ctime), so rotating it takes
 *   effect at the next request; a missing or empty file refuses every such request. Tokens are
 *   compared in constant time (SHA-256 digests, `timingSafeEqual`).
 * - Requests a web browser could make are refused whatever the peer: any `Origin`,
 *   `Sec-Fetch-Site` or `Sec-Fetch-Dest` header (browsers send them; Node's fetch sends only
 *   `Sec-Fetch-Mode`), and any body that is not `application/json` (a cross-site page cannot
 *   send JSON without a CORS preflight, which is never answered).
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { stat } from "node:fs/promises";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { readFailure, readRegularFile } from "../api/safe-read.js";
import type { RefreshReport, RefreshRequest } from "./refresh-report.js";

/** What the status server calls for a control request (an Emissary is one). */
export interface ControlTarget {
  refresh(req: RefreshRequest & { source?: string }): Promise<RefreshReport>;
}

/** The outcome of {@link ControlAuth.authorize}. */
export type ControlDecision = { readonly ok: true; readonly via: "loopback" | "token" } | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

/** Largest token file read. */
const TOKEN_MAX_BYTES = 4096;
/** Largest control request body. */
export const CONTROL_BODY_MAX_BYTES = 64 * 1024;

/** True for an IPv4 loopback address, `::1`, or IPv4 loopback mapped into IPv6. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.toLowerCase().replace(/^::ffff:/, "");
  return a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Options for {@link ControlAuth}. */
export interface ControlAuthOptions {
  /** Absolute path of `status.control_token_file`; unset: only loopback peers are accepted. */
  readonly tokenFile?: string;
  readonly logger: Logger;
}

/** Decides whether a control request may proceed. */
export class ControlAuth {
  readonly #opts: ControlAuthOptions;
  #cached?: { stamp: string; token?: Buffer };
  #warnedMode = false;

  constructor(opts: ControlAuthOptions) {
    this.#opts = opts;
  }

  /** The digest of the token in the file, re-read when the file changed; undefined when there is none. */
  async #token(): Promise<Buffer | undefined> {
    const path = this.#opts.tokenFile;
    if (!path) return undefined;
    let st;
    try {
      st = await stat(path);
    } catch {
      this.#cached = undefined;
      return undefined;
    }
    const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    if (this.#cached?.stamp === stamp) return this.#cached.token;
    let token: Buffer | undefined;
    try {
      const text = (await readRegularFile(path, { maxBytes: TOKEN_MAX_BYTES })).toString("utf8");
      const first = text.split(/\r?\n/, 1)[0]!.trim();
      token = first === "" ? undefined : digest(first);
      if (!token) this.#opts.logger.warn({ file: path }, "control token file is empty: control requests from other hosts are refused");
    } catch (err) {
      this.#opts.logger.warn({ file: path, reason: readFailure(err) }, "cannot read the control token file: control requests from other hosts are refused");
    }
    if ((st.mode & 0o044) !== 0 && !this.#warnedMode) {
      this.#warnedMode = true;
      this.#opts.logger.warn({ file: path, mode: (st.mode & 0o777).toString(8).padStart(4, "0") }, "control token file is readable by group or others: chmod 0600 it");
    }
    this.#cached = { stamp, ...(token ? { token } : {}) };
    return token;
  }

  /** Decides for a request from `peer` (the socket's remote address) with these headers. */
  async authorize(peer: string | undefined, headers: IncomingHttpHeaders): Promise<ControlDecision> {
    if (headers.origin !== undefined || headers["sec-fetch-site"] !== undefined || headers["sec-fetch-dest"] !== undefined) {
      return { ok: false, status: 403, reason: "control requests from web pages are refused" };
    }
    if (isLoopbackAddress(peer)) return { ok: true, via: "loopback" };
    if (!this.#opts.tokenFile) {
      return { ok: false, status: 403, reason: "control requests are accepted from loopback only (set status.control_token_file to allow others with a token)" };
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.authorization ?? "");
    const expected = await this.#token();
    if (!expected) return { ok: false, status: 403, reason: "control refused: the control token file is missing, empty or unreadable" };
    if (!m) return { ok: false, status: 401, reason: "control requests from other hosts need Authorization: Bearer <token>" };
    if (!timingSafeEqual(digest(m[1]!), expected)) return { ok: false, status: 401, reason: "the bearer token does not match" };
    return { ok: true, via: "token" };
  }
}

/** A control request that cannot be understood (HTTP 400 or 415). */
export class ControlRequestError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
    this.name = "ControlRequestError";
  }
}

const LIST_KEYS = ["names", "refs", "templates"] as const;

/**
 * Parses the body of `POST /v1/refresh`: `{"names": [...], "refs": [...], "templates": [...],
 * "reissue": true}`, every key optional; an empty body means "everything".
 * @throws {@link ControlRequestError}
 */
export function parseRefreshBody(contentType: string | undefined, body: Buffer): RefreshRequest {
  if (!/^application\/json\s*(;|$)/i.test(contentType ?? "")) throw new ControlRequestError(415, "send the request as Content-Type: application/json");
  if (body.length === 0) return {};
  let data: unknown;
  try {
    data = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ControlRequestError(400, "the body is not JSON");
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw new ControlRequestError(400, "the body must be a JSON object");
  const out: { -readonly [K in keyof RefreshRequest]: RefreshRequest[K] } = {};
  for (const [k, v] of Object.entries(data)) {
    if ((LIST_KEYS as readonly string[]).includes(k)) {
      if (!Array.isArray(v) || v.length > 1000 || !v.every((x) => typeof x === "string" && x.length > 0 && x.length <= 4096)) {
        throw new ControlRequestError(400, `${k} must be a list of at most 1000 non-empty strings`);
      }
      out[k as (typeof LIST_KEYS)[number]] = v as string[];
    } else if (k === "reissue") {
      if (typeof v !== "boolean") throw new ControlRequestError(400, "reissue must be true or false");
      out.reissue = v;
    } else throw new ControlRequestError(400, `unknown key ${JSON.stringify(k.slice(0, 40))} (names, refs, templates, reissue)`);
  }
  return out;
}

/** The status server's answer to a control request. */
export interface ControlReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const announced = Number(req.headers["content-length"] ?? "0");
  if (announced > CONTROL_BODY_MAX_BYTES) throw new ControlRequestError(413, `the body is larger than ${CONTROL_BODY_MAX_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of req) {
    total += (c as Buffer).length;
    if (total > CONTROL_BODY_MAX_BYTES) throw new ControlRequestError(413, `the body is larger than ${CONTROL_BODY_MAX_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Serves `POST /v1/refresh`: authorizes the peer, parses the body, calls `target.refresh`.
 * 200 with the {@link RefreshReport} (also when a fetch failed: see `ok`), 404 naming the unknown
 * names, 401/403 refused, 400/413/415 a bad request, 503 while emissary is not running.
 */
export async function handleRefresh(req: IncomingMessage, auth: ControlAuth, target: ControlTarget | undefined, logger: Logger): Promise<ControlReply> {
  const peer = req.socket.remoteAddress;
  const decision = await auth.authorize(peer, req.headers);
  if (!decision.ok) {
    logger.warn({ peer, status: decision.status, reason: decision.reason }, "control request refused");
    return { status: decision.status, body: { error: decision.reason }, ...(decision.status === 401 ? { headers: { "www-authenticate": 'Bearer realm="emissary"' } } : {}) };
  }
  if (!target) return { status: 404, body: { error: "this status server has no emissary to control" } };
  let request: RefreshRequest;
  try {
    request = parseRefreshBody(req.headers["content-type"], await readBody(req));
  } catch (err) {
    if (err instanceof ControlRequestError) return { status: err.status, body: { error: err.message } };
    throw err;
  }
  try {
    return { status: 200, body: await target.refresh({ ...request, source: decision.via === "token" ? `http (token, ${peer ?? "?"})` : "http" }) };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown; names?: unknown };
    if (e?.code === "UNKNOWN_NAME") return { status: 404, body: { error: String(e.message), unknown: e.names } };
    if (e?.code === "TRANSIENT") return { status: 503, body: { error: String(e.message) } };
    throw err;
  }
}
