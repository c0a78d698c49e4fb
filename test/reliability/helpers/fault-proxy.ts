/**
 * A fault-injecting HTTP proxy for the backend fault tests: it sits between emissary and a
 * backend (the http secret server, the fake Vault, the fake Secrets Manager) on a fixed loopback
 * port and, depending on its mode, forwards requests or misbehaves the way real networks and
 * services do:
 *
 * - `pass`      forward the request (the healthy case)
 * - `slow`      forward after `delayMs`
 * - `hang`      accept the request and never answer
 * - `status`    answer `status` (500, 503, 429 with Retry-After…) without forwarding
 * - `reset`     destroy the connection as soon as a request arrives
 * - `refused`   stop listening: connections are refused (ECONNREFUSED), as when the service is down
 * - `flap`      each request is forwarded, answered 500 or reset, at random (half of them forwarded)
 *
 * The port stays the same across modes (a `refused` proxy re-listens on it), so the backend's
 * configured address stays valid.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the proxy does with the next requests. */
export type FaultMode =
  | { readonly kind: "pass" }
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "hang" }
  | { readonly kind: "status"; readonly status: number; readonly retryAfterS?: number; readonly body?: string }
  | { readonly kind: "reset" }
  | { readonly kind: "refused" }
  | { readonly kind: "flap" };

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT` — give this to emissary instead of the upstream's address. */
  readonly url: string;
  /** Requests seen per outcome (`pass`, `hang`, `status:500`, …). */
  readonly counts: Map<string, number>;
  /** Total requests received. */
  requests(): number;
  /** Changes the mode; `refused` closes the listener, any other mode re-opens it on the same port. */
  setMode(mode: FaultMode): Promise<void>;
  /** Resolves after `n` more requests have been received (whatever the mode). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy to `upstream` (an `http://host:port` origin) on a free loopback port. */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  let mode: FaultMode = { kind: "pass" };
  let total = 0;
  const counts = new Map<string, number>();
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const hung = new Set<ServerResponse>();
  const count = (k: string): void => {
    counts.set(k, (counts.get(k) ?? 0) + 1);
  };

  let forwarding = 0;
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    forwarding++;
    let counted = true;
    const done = (): void => {
      if (counted) forwarding--;
      counted = false;
    };
    res.on("close", done);
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    up.end(body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      total++;
      for (const w of [...waiters]) w();
      const body = Buffer.concat(chunks);
      let m = mode;
      if (m.kind === "flap") {
        // At random rather than in a fixed rhythm: a fetch made of two requests (describe, then
        // read) would otherwise always meet the failure at the same step.
        const roll = Math.random();
        m = roll < 0.5 ? { kind: "pass" } : roll < 0.75 ? { kind: "status", status: 500 } : { kind: "reset" };
      }
      switch (m.kind) {
        case "pass":
        case "refused": // a request that raced the close: serve it
          count("pass");
          forward(req, res, body);
          return;
        case "slow": {
          count("slow");
          const t = setTimeout(() => forward(req, res, body), m.delayMs);
          res.on("close", () => clearTimeout(t));
          return;
        }
        case "hang":
          count("hang");
          hung.add(res);
          res.on("close", () => hung.delete(res));
          return;
        case "status":
          count(`status:${m.status}`);
          res.writeHead(m.status, {
            "content-type": "application/json",
            ...(m.retryAfterS !== undefined ? { "retry-after": String(m.retryAfterS) } : {}),
          });
          res.end(m.body ?? JSON.stringify({ errors: [`injected ${m.status}`], __type: m.status === 429 ? "ThrottlingException" : "InternalServiceError", message: `injected ${m.status}` }));
          return;
        case "reset":
          count("reset");
          req.socket.destroy();
          return;
        default:
          return;
      }
    });
  };

  const server: Server = createServer(handle);
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  let listening = true;

  const dropConnections = (): void => {
    for (const r of hung) r.destroy();
    for (const s of sockets) s.destroy();
  };

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    requests: () => total,
    async setMode(next: FaultMode): Promise<void> {
      mode = next;
      // Requests forwarded before the fault began still answer with whatever the upstream holds
      // when they reach it: let them finish, so "after setMode" really means "faulty".
      for (let i = 0; forwarding > 0 && i < 1000; i++) await new Promise((r) => setTimeout(r, 5));
      if (next.kind !== "hang") for (const r of hung) r.destroy();
      if (next.kind === "refused" && listening) {
        listening = false;
        await new Promise<void>((r) => {
          server.close(() => r());
          dropConnections();
        });
      } else if (next.kind !== "refused" && !listening) {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(port, "127.0.0.1", () => {
            server.off("error", reject);
            resolve();
          });
        });
        listening = true;
      } else if (next.kind !== "pass") {
        // Kept-alive connections would otherwise keep using the old behaviour's sockets.
        dropConnections();
      }
    },
    waitForRequests(n: number, timeoutMs = 30_000): Promise<void> {
      const goal = total + n;
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (total >= goal) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`fault proxy: timed out waiting for ${n} requests (got ${total - goal + n})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close(): Promise<void> {
      if (!listening) return;
      listening = false;
      await new Promise<void>((r) => {
        server.close(() => r());
        dropConnections();
      });
    },
  };
}
