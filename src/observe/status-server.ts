import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import { parseListenAddress } from "../config/resolve.js";
import { readRegularFileSync } from "../api/safe-read.js";
import type { StatusSource } from "./status-model.js";
import { ConfigError } from "../api/errors.js";
import { safeError } from "./log.js";
import { createMetrics, emissaryVersion, type EmissaryMetrics } from "./metrics.js";
import type { EmissaryStatus } from "./status-model.js";
import { ControlAuth, handleRefresh, type ControlTarget } from "./control.js";

/** A running status server. */
export interface StatusServer {
  /** The address it listens on. */
  readonly address: { host: string; port: number };
  /** The metrics it serves on /metrics (undefined when disabled). */
  readonly metrics?: EmissaryMetrics;
  /** Stops listening; open connections get a moment to finish. Idempotent. */
  close(): Promise<void>;
}

/** Options for {@link startStatusServer}. */
export interface StatusServerOptions {
  /** What is served; with `refresh` (an Emissary has it), `POST /v1/refresh` controls it. */
  readonly emissary: StatusSource & Partial<ControlTarget>;
  /**
   * `status.control_token_file`: the bearer token a control request from a non-loopback peer
   * must carry. Unset: control from loopback peers only.
   */
  readonly controlTokenFile?: string;
  /**
   * `HOST:PORT`, e.g. `127.0.0.1:9750`. Without a host (`:9750`) it listens on loopback only;
   * any other address must be asked for by name (`0.0.0.0:9750`) and is logged with a warning.
   * Port 0 picks a free port (see {@link StatusServer.address}).
   */
  readonly address: string;
  readonly logger: Logger;
  /**
   * Metrics to serve on /metrics: an existing {@link EmissaryMetrics}, or false for none (404).
   * @defaultValue new metrics for `emissary` (with process metrics), closed with the server
   */
  readonly metrics?: EmissaryMetrics | false;
  /**
   * /healthz fails when one render/write pass has been running this long (a hung file system).
   * @defaultValue 120000
   */
  readonly stuckAfterMs?: number;
  /** Clock (tests). @defaultValue Date.now */
  readonly now?: () => number;
}

/** Body of /healthz. */
export interface HealthBody {
  readonly status: "ok" | "unhealthy";
  readonly phase: EmissaryStatus["phase"];
  readonly uptimeSeconds?: number;
  readonly reason?: string;
}

/** One entry of /readyz's `pending` list. */
export interface ReadyPendingEntry {
  readonly file: string;
  readonly dest?: string;
  readonly state: string;
  /** Unresolved reference names, as written in the template. */
  readonly references: readonly string[];
  readonly error?: string;
}

/** Body of /readyz. */
export interface ReadyBody {
  readonly ready: boolean;
  readonly reason?: string;
  readonly templates: number;
  /** Templates that have not rendered yet (empty when ready). */
  readonly pending: readonly ReadyPendingEntry[];
  /** Templates that rendered once but whose last attempt failed (the last good file stays). */
  readonly failing: readonly ReadyPendingEntry[];
}

/** At most this many connections are held at once, whatever the descriptor limit. */
export const MAX_STATUS_CONNECTIONS = 64;
/** Time a client has to send a request's headers, and its whole request. */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** A kept-alive connection with no new request is closed after this. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A socket with no traffic at all is closed after this. */
const IDLE_SOCKET_TIMEOUT_MS = 15_000;

/** The soft limit of open files (Linux /proc/self/limits); undefined where it cannot be read. */
function openFilesLimit(): number | undefined {
  try {
    const text = readRegularFileSync("/proc/self/limits", { maxBytes: 64 * 1024 }).toString("utf8");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (!m) return undefined;
    return m[1] === "unlimited" ? Infinity : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * How many connections the status server holds: {@link MAX_STATUS_CONNECTIONS}, or an eighth of
 * the descriptor limit when that is smaller (at least 4), so that connections nobody closes never
 * take the descriptors the daemon needs to read secrets, write files and run commands.
 */
export function statusConnectionLimit(openFiles = openFilesLimit()): number {
  if (openFiles === undefined || !Number.isFinite(openFiles)) return MAX_STATUS_CONNECTIONS;
  return Math.min(MAX_STATUS_CONNECTIONS, Math.max(4, Math.floor(openFiles / 8)));
}

/** Body of /status: the {@link EmissaryStatus} snapshot and the emissaryd version serving it. */
export type StatusBody = { readonly version: string } & EmissaryStatus;

/** Default for {@link StatusServerOptions.stuckAfterMs}. */
export const DEFAULT_STUCK_AFTER_MS = 120_000;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/i;
const ENDPOINTS = ["/healthz", "/readyz", "/metrics", "/status"] as const;

/** Liveness from a status snapshot: alive unless stopping/stopped or a pass is stuck. */
export function health(s: EmissaryStatus, now: number, stuckAfterMs = DEFAULT_STUCK_AFTER_MS): HealthBody {
  const uptime = s.startedAt !== undefined ? { uptimeSeconds: Math.max(0, Math.round((now - s.startedAt) / 1000)) } : {};
  if (s.phase === "stopping" || s.phase === "stopped") return { status: "unhealthy", phase: s.phase, ...uptime, reason: `emissary is ${s.phase}` };
  if (s.busySince !== undefined && now - s.busySince > stuckAfterMs) {
    return { status: "unhealthy", phase: s.phase, ...uptime, reason: `a render/write pass has been running for ${Math.round((now - s.busySince) / 1000)}s` };
  }
  return { status: "ok", phase: s.phase, ...uptime };
}

/** Readiness from a status snapshot: ready once every template has rendered at least once. */
export function readiness(s: EmissaryStatus): ReadyBody {
  const entry = (t: EmissaryStatus["templates"][number]): ReadyPendingEntry => ({
    file: t.file,
    ...(t.dest !== undefined ? { dest: t.dest } : {}),
    state: t.state,
    references: [...t.pending],
    ...(t.error !== undefined ? { error: t.error } : {}),
  });
  const failing = s.templates.filter((t) => t.state === "error" && t.lastRenderAt !== undefined).map(entry);
  if (s.ready) return { ready: true, templates: s.templates.length, pending: [], failing };
  const pending = s.templates.filter((t) => t.state !== "rendered").map(entry);
  let reason: string;
  if (s.waitingForTemplateDir) reason = "the template directory does not exist (yet)";
  else if (s.phase === "created" || s.phase === "starting") reason = "emissary is starting";
  else if (s.templates.length === 0) reason = "no templates found";
  else reason = `${pending.length} of ${s.templates.length} template(s) have not rendered yet`;
  return { ready: false, reason, templates: s.templates.length, pending, failing: failing.filter((f) => !pending.some((p) => p.file === f.file)) };
}

/**
 * Starts the optional status server: `/healthz` (200 while the loop is alive), `/readyz` (200 once
 * every template has rendered, else 503 naming pending templates and their unresolved
 * references), `/metrics` (Prometheus text), `/status` (the sanitized {@link EmissaryStatus} with
 * the emissaryd `version`: {@link StatusBody}) and `POST /v1/refresh` (operator control, see
 * control.ts). Nothing it serves contains a secret value, token or rendered content.
 * @throws {@link ConfigError} when the address is malformed or cannot be listened on.
 */
export async function startStatusServer(opts: StatusServerOptions): Promise<StatusServer> {
  const parsed = parseListenAddress(opts.address);
  // ":9750" names no host: stay on loopback; everything else is listened on only when named.
  const host = /^\s*:/.test(opts.address) ? "127.0.0.1" : parsed.host;
  const port = parsed.port;
  if (!LOOPBACK.test(host)) {
    opts.logger.warn({ host }, "status server listens on a non-loopback address: whoever can reach it sees template paths and reference names (never values)");
  }
  const now = opts.now ?? Date.now;
  const ownMetrics = opts.metrics === undefined;
  const metrics = opts.metrics === undefined ? createMetrics(opts.emissary) : opts.metrics || undefined;
  const auth = new ControlAuth({ logger: opts.logger, ...(opts.controlTokenFile ? { tokenFile: opts.controlTokenFile } : {}) });
  const control: ControlTarget | undefined = typeof opts.emissary.refresh === "function" ? { refresh: (r) => opts.emissary.refresh!(r) } : undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = (req.url ?? "/").split("?")[0];
    const head = req.method === "HEAD";
    const send = (code: number, body: string, type = "application/json; charset=utf-8", extra: Record<string, string> = {}): void => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff", "content-length": String(Buffer.byteLength(body)), ...extra });
      res.end(head ? undefined : body);
    };
    const json = (code: number, body: unknown, extra: Record<string, string> = {}): void => send(code, JSON.stringify(body) + "\n", undefined, extra);
    if (url === "/v1/refresh") {
      if (req.method !== "POST") return json(405, { error: "method not allowed" }, { allow: "POST" });
      const reply = await handleRefresh(req, auth, control, opts.logger);
      return json(reply.status, reply.body, reply.headers);
    }
    if (req.method !== "GET" && !head) return json(405, { error: "method not allowed" }, { allow: "GET, HEAD" });
    switch (url) {
      case "/healthz": {
        const h = health(opts.emissary.status(), now(), opts.stuckAfterMs);
        return json(h.status === "ok" ? 200 : 503, h);
      }
      case "/readyz": {
        const r = readiness(opts.emissary.status());
        return json(r.ready ? 200 : 503, r);
      }
      case "/status": {
        const body: StatusBody = { version: emissaryVersion(), ...opts.emissary.status() };
        return json(200, body);
      }
      case "/metrics":
        if (!metrics) return json(404, { error: "metrics are disabled" });
        return send(200, await metrics.metrics(), metrics.contentType);
      case "/":
        return json(200, { endpoints: metrics ? ENDPOINTS : ENDPOINTS.filter((e) => e !== "/metrics") });
      default:
        return json(404, { error: "not found", endpoints: ENDPOINTS });
    }
  };

  // Headers and request timeouts are checked every second (Node's default is every 30s).
  const server: Server = createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.warn({ url: (req.url ?? "").split("?")[0], err: safeError(err) }, "status server: request failed");
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
        res.end(JSON.stringify({ error: "internal error" }) + "\n");
      } else res.destroy();
    });
  });
  // A scrape is tiny: a slow, stuck or idle client must not hold a socket for long, and however
  // many connect, only a bounded number of descriptors go to them (a connection past the limit is
  // accepted and closed at once).
  server.maxConnections = statusConnectionLimit();
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.timeout = IDLE_SOCKET_TIMEOUT_MS;
  server.on("timeout", (socket: import("node:net").Socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    if (ownMetrics) metrics?.close();
    const code = (err as NodeJS.ErrnoException)?.code;
    throw new ConfigError(`status server cannot listen on ${host}:${port}: ${code ?? (err as Error)?.message ?? "error"}`, { field: "--status-addr" });
  }
  server.on("error", (err) => opts.logger.warn({ err: safeError(err) }, "status server error"));
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? { host: addr.address, port: addr.port } : { host, port };
  opts.logger.info({ address: `${bound.host.includes(":") ? `[${bound.host}]` : bound.host}:${bound.port}`, endpoints: metrics ? ENDPOINTS : ENDPOINTS.filter((e) => e !== "/metrics") }, "status server listening");

  let closing: Promise<void> | undefined;
  return {
    address: bound,
    ...(metrics ? { metrics } : {}),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        if (ownMetrics) metrics?.close();
        server.close(() => resolve());
        // Scrapers keep connections alive: close the idle ones now, the rest after a grace period.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      return closing;
    },
  };
}
