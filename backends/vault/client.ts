/**
 * emissary's narrow Vault HTTP client, on `node:http` / `node:https`.
 *
 * Why not node-vault: it passes on axios errors that carry the `X-Vault-Token` request header,
 * treats `VAULT_SKIP_VERIFY="false"` as "skip", has no KV v2 helper and stops renewing at the
 * first error. Twenty lines of `node:https` with an `Agent` give us CA, client certificate and
 * skip-verify, and every error here is built by us from a status code and Vault's own error
 * strings (scrubbed), never from a request object.
 *
 * The client never throws for an HTTP status: callers decide what a 403 or a 404 means. It throws
 * {@link TransientError} for network trouble and {@link FatalError} for TLS verification failures
 * or an unreadable CA/certificate file.
 */
import http from "node:http";
import https from "node:https";
import { FatalError, SecretNotFoundError, TransientError, clearLongTimeout, readFailure, readRegularFile, setLongTimeout } from "../../src/api/index.js";
import type { VaultSettings } from "./config.js";

/** A Vault response body (the parts emissary reads). */
export interface VaultBody {
  readonly data?: unknown;
  readonly auth?: { readonly client_token?: unknown; readonly lease_duration?: unknown; readonly renewable?: unknown } | null;
  readonly lease_id?: unknown;
  readonly lease_duration?: unknown;
  readonly renewable?: unknown;
  readonly errors?: unknown;
}

/** One request to the Vault API. */
export interface VaultRequest {
  readonly method: "GET" | "POST";
  /** API path without `/v1/`, already URL-encoded per segment. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** Sent as `X-Vault-Token`. */
  readonly token?: string;
  readonly signal?: AbortSignal;
}

/** What came back. */
export interface VaultResponse {
  readonly status: number;
  /** Parsed JSON, or undefined for an empty or non-JSON body. */
  readonly body: VaultBody | undefined;
  /**
   * The body as text when a success (2xx) is not JSON: the raw endpoints (`pki/ca/pem`,
   * `pki/crl/pem`, `pki/ca_chain`) answer PEM text, which is the value.
   */
  readonly text?: string;
  /** The Content-Type of a {@link VaultResponse.text} body. */
  readonly contentType?: string;
  /** From `Retry-After`, when present. */
  readonly retryAfterMs?: number;
}

/** Largest response body read. */
const MAX_BODY = 16 * 1024 * 1024;
const MAX_REDIRECTS = 3;
const TLS_ERROR = /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_|ERR_SSL_|HOSTNAME_MISMATCH|ERR_OSSL)/;

/** Options for {@link VaultClient}. */
export interface VaultClientOptions {
  readonly settings: VaultSettings;
  /** Removes known secrets (tokens, AppRole ids) from any text that goes into an error message. */
  readonly redact?: (text: string) => string;
}

/** Error strings of a Vault error body, scrubbed and shortened for a message. */
export function vaultErrors(body: VaultBody | undefined, redact: (s: string) => string = (s) => s): string {
  const errs = Array.isArray(body?.errors) ? body.errors.filter((e): e is string => typeof e === "string") : [];
  const text = errs
    .join("; ")
    .replace(/\s+/g, " ")
    // A URL with credentials (a database connection string in a plugin error) loses them.
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1[redacted]@")
    .trim();
  const clean = redact(text);
  return clean.length > 200 ? clean.slice(0, 200) + "…" : clean;
}

function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/** The HTTP transport. One per backend; owns the keep-alive agent. */
export class VaultClient {
  readonly #settings: VaultSettings;
  readonly #redact: (s: string) => string;
  readonly #base: URL;
  #agent?: Promise<http.Agent>;
  #agentValue?: http.Agent;
  #closed = false;

  constructor(opts: VaultClientOptions) {
    this.#settings = opts.settings;
    this.#redact = opts.redact ?? ((s) => s);
    this.#base = new URL(opts.settings.address + "/");
  }

  /** The address, for log lines. */
  get address(): string {
    return this.#settings.address;
  }

  /** Sends one request, following Vault's standby redirects. */
  async request(req: VaultRequest): Promise<VaultResponse> {
    if (this.#closed) throw new TransientError("vault: the backend is closed");
    const what = `vault ${req.method} ${decodeForMessage(req.path)}`;
    let url = new URL("v1/" + req.path, this.#base);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    const payload = req.body === undefined ? undefined : JSON.stringify(req.body);
    for (let hop = 0; ; hop++) {
      const res = await this.#send(url, req, payload, what);
      const location = res.headers.location;
      if ((res.status === 307 || res.status === 308) && typeof location === "string" && hop < MAX_REDIRECTS) {
        // A standby node sends the client to the active one, as the Vault Go client follows.
        const next = new URL(location, url);
        if (next.protocol !== url.protocol) throw new FatalError(`${what}: refusing a redirect to another URL scheme (${next.protocol})`);
        url = next;
        continue;
      }
      let body: VaultBody | undefined;
      let text: string | undefined;
      if (res.text.trim() !== "") {
        try {
          body = JSON.parse(res.text) as VaultBody;
        } catch {
          // Not JSON: a raw endpoint's PEM or text, which is the value (never quoted in a message).
          if (res.status >= 200 && res.status < 300) text = res.text;
        }
      }
      const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
      const contentType = typeof res.headers["content-type"] === "string" ? res.headers["content-type"] : "";
      return { status: res.status, body, ...(text !== undefined ? { text, contentType } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
  }

  /** Frees the keep-alive sockets. Further requests fail. */
  close(): void {
    this.#closed = true;
    this.#agentValue?.destroy();
    this.#agentValue = undefined;
    this.#agent = undefined;
  }

  #getAgent(url: URL): Promise<http.Agent> {
    this.#agent ??= (async () => {
      const s = this.#settings;
      if (url.protocol === "http:") return new http.Agent({ keepAlive: true });
      const read = async (file: string, what: string): Promise<Buffer> => {
        try {
          return await readRegularFile(file, { maxBytes: 1024 * 1024 });
        } catch (err) {
          throw new FatalError(`vault: cannot read the ${what} ${file} (${readFailure(err)})`);
        }
      };
      const agent = new https.Agent({
        keepAlive: true,
        rejectUnauthorized: !s.skipVerify,
        ...(s.caCert ? { ca: await read(s.caCert, "CA certificate") } : {}),
        ...(s.clientCert ? { cert: await read(s.clientCert, "client certificate") } : {}),
        ...(s.clientKey ? { key: await read(s.clientKey, "client key") } : {}),
        ...(s.tlsServerName ? { servername: s.tlsServerName } : {}),
      });
      return agent;
    })();
    const p = this.#agent;
    p.then(
      (a) => {
        this.#agentValue = a;
      },
      () => {
        if (this.#agent === p) this.#agent = undefined;
      },
    );
    return p;
  }

  /** Drops the agent so the next request re-reads the CA and certificate files. */
  #resetAgent(): void {
    this.#agentValue?.destroy();
    this.#agentValue = undefined;
    this.#agent = undefined;
  }

  async #send(url: URL, req: VaultRequest, payload: string | undefined, what: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    const agent = await this.#getAgent(url);
    const headers: Record<string, string> = {
      "user-agent": "emissaryd",
      accept: "application/json",
      // Vault Proxy / Agent listeners may require it; the Vault CLI always sends it.
      "x-vault-request": "true",
    };
    if (req.token) headers["x-vault-token"] = req.token;
    if (this.#settings.namespace) headers["x-vault-namespace"] = this.#settings.namespace;
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const mod = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | undefined, value?: { status: number; headers: http.IncomingHttpHeaders; text: string }): void => {
        if (settled) return;
        settled = true;
        clearLongTimeout(timer);
        req.signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(value!);
      };
      const r = mod.request(url, { method: req.method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) {
            res.destroy();
            finish(new TransientError(`${what}: the response is larger than ${MAX_BODY} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (err) => finish(this.#networkError(err, what)));
      });
      // Listen first: destroy() below emits "error", which must never go unhandled.
      r.on("error", (err) => finish(this.#networkError(err, what)));
      const timer = setLongTimeout(
        () => {
          r.destroy();
          finish(new TransientError(`${what}: no response within ${Math.round(this.#settings.timeoutMs / 1000)}s`));
        },
        this.#settings.timeoutMs,
        { unref: true },
      );
      const onAbort = (): void => {
        r.destroy();
        const reason: unknown = req.signal?.reason;
        finish(reason instanceof Error ? reason : new TransientError(`${what}: aborted`));
      };
      if (req.signal?.aborted) {
        onAbort();
        return;
      }
      req.signal?.addEventListener("abort", onAbort, { once: true });
      r.end(payload);
    });
  }

  /** Builds our own error from a socket/TLS error: its code and message only (they carry no headers). */
  #networkError(err: Error, what: string): Error {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    let message = this.#redact(String(err.message ?? "")).replace(/\s+/g, " ").trim();
    // OpenSSL's own lines ("80BC…:error:0A00045C:SSL routines:…:tlsv13 alert certificate required:…") say little more than the code.
    if (/^[0-9A-F]+:error:/.test(message)) message = message.split(":").slice(5, 6).join("").trim() || code;
    message = message.slice(0, 200);
    if (TLS_ERROR.test(code) || /certificate|self.signed|altname/i.test(message)) {
      this.#resetAgent();
      const hint = /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|certificate required/i.test(code + message)
        ? "the server may want a client certificate: set client_cert and client_key"
        : /ALTNAME|hostname/i.test(code + message)
          ? "the certificate does not name this host: fix the address or set tls_server_name"
          : "check ca_cert / VAULT_CACERT (or VAULT_SKIP_VERIFY for testing)";
      const e = new FatalError(`${what}: TLS: ${message}${code ? ` (${code})` : ""}; ${hint}`);
      return Object.assign(e, code ? { errno: code } : {});
    }
    const e = new TransientError(`${what}: ${message || code || "network error"}`);
    return Object.assign(e, code ? { errno: code } : {});
  }
}

/**
 * The typed error for a non-success status, by Vault's documented status codes: 404 → not set
 * (keep waiting); 403 → permission denied; 400, 401, 405 → a bad request that retrying will not
 * fix; 412, 429, 5xx (sealed, standby, unreachable upstream) and anything else → transient.
 *
 * @param res - the response
 * @param what - e.g. `vault GET secret/data/nomad`, put at the head of the message
 * @param redact - scrubs known secrets from Vault's error strings
 */
export function statusError(res: VaultResponse, what: string, redact?: (s: string) => string): Error {
  const detail = vaultErrors(res.body, redact);
  const msg = `${what}: ${res.status}${detail ? " " + detail : ""}`;
  const info = { status: res.status };
  if (res.status === 404) return Object.assign(new SecretNotFoundError(msg), info);
  if (res.status === 403) return Object.assign(new FatalError(`${what}: 403 permission denied${detail && detail !== "permission denied" ? ` (${detail})` : ""}`), info);
  // A KV mount being upgraded to v2 answers 400 for a short while.
  if (res.status === 400 && /upgrading from non-versioned to versioned/i.test(detail)) return Object.assign(new TransientError(msg), info);
  if (res.status === 400 || res.status === 401 || res.status === 405) return Object.assign(new FatalError(msg), info);
  return Object.assign(new TransientError(msg, res.retryAfterMs !== undefined ? { retryAfterMs: res.retryAfterMs } : {}), info);
}

/** An encoded API path made readable for a message (`secret/data/my%20key` → `secret/data/my key`). */
export function decodeForMessage(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Encodes a Vault path segment by segment. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

/**
 * True for a renewal answered `500 … past the max TTL, cannot renew`: Vault and OpenBao answer a
 * token's (or lease's) renewal so in its last second, while it is still valid.
 */
export function pastMaxTtl(res: VaultResponse): boolean {
  if (res.status !== 500) return false;
  const errors = (res.body as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) && errors.some((e) => typeof e === "string" && e.includes("past the max TTL"));
}
