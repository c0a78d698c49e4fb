import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import { parseListenAddress } from "./config.js";
import type { Emissary } from "./emissary.js";

/** A running status server. */
export interface StatusServer {
  /** The address it listens on. */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** Options for {@link startStatusServer}. */
export interface StatusServerOptions {
  readonly emissary: Emissary;
  /** `HOST:PORT`. */
  readonly address: string;
  readonly logger: Logger;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Serves /healthz, /readyz and /status (JSON, sanitized). */
export async function startStatusServer(opts: StatusServerOptions): Promise<StatusServer> {
  const { host, port } = parseListenAddress(opts.address);
  if (!LOOPBACK.test(host)) opts.logger.warn({ host }, "status server listens on a non-loopback address");
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { error: "method not allowed" });
    const s = opts.emissary.status();
    if (url === "/healthz") return send(200, { status: "ok" });
    if (url === "/readyz") {
      const pending = s.templates.filter((t) => t.state !== "rendered");
      return send(s.ready ? 200 : 503, { ready: s.ready, pending: pending.map((t) => ({ file: t.file, state: t.state, references: t.pending })) });
    }
    if (url === "/status") return send(200, s);
    send(404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? { host: addr.address, port: addr.port } : { host, port };
  opts.logger.info({ address: `${bound.host}:${bound.port}` }, "status server listening");
  return {
    address: bound,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
