/**
 * A recording HTTP proxy for AWS JSON-protocol services: it forwards every request to an upstream
 * (moto) unchanged and records which operation it was (`X-Amz-Target`) and which names or path it
 * asked for, so tests can count the API calls a backend makes against the real service emulator.
 * It never records a response body or the Authorization header.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One forwarded request. */
export interface ProxiedCall {
  /** The operation without the service prefix: `GetParameters`. */
  readonly op: string;
  /** `Name` / `Names` / `SecretId` / `SecretIdList` of the request body. */
  readonly names: readonly string[];
  readonly path?: string;
}

/** A running proxy. */
export interface RecordingProxy {
  /** `http://127.0.0.1:PORT`: give this to the backend as its endpoint. */
  readonly url: string;
  readonly calls: ProxiedCall[];
  /** Number of calls of `op` (all when omitted). */
  count(op?: string): number;
  close(): Promise<void>;
}

function names(body: Record<string, unknown>): string[] {
  for (const k of ["Names", "SecretIdList"]) if (Array.isArray(body[k])) return (body[k] as unknown[]).map(String);
  for (const k of ["Name", "SecretId"]) if (typeof body[k] === "string") return [body[k] as string];
  return [];
}

/** Starts a proxy to `upstream` (`http://host:port`) on a free loopback port. */
export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const calls: ProxiedCall[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw.toString("utf8") || "{}") as Record<string, unknown>;
      } catch {
        // not JSON: recorded without names
      }
      const op = String(req.headers["x-amz-target"] ?? "").replace(/^[^.]*\./, "");
      calls.push({ op, names: names(body), ...(typeof body.Path === "string" ? { path: body.Path } : {}) });
      const up = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (ures) => {
          res.writeHead(ures.statusCode ?? 502, ures.headers);
          ures.pipe(res);
        },
      );
      up.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      up.end(raw);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    count: (op) => (op ? calls.filter((c) => c.op === op).length : calls.length),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
