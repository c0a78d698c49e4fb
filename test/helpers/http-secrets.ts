import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** A plain HTTP secret server like the original emissary's `insecure` backend expects: 200 = value, 404 = not yet set. */
export interface HttpSecrets {
  readonly url: string;
  /** Values by path: text, or bytes served as they are. */
  readonly values: Map<string, string | Uint8Array>;
  /** Requests per path. */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 with a free port. */
export async function startHttpSecrets(initial: Record<string, string | Uint8Array> = {}): Promise<HttpSecrets> {
  const values = new Map<string, string | Uint8Array>(Object.entries(initial));
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "/").split("?")[0]!.replace(/^\/+/, ""));
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const v = values.get(path);
    if (v === undefined) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": typeof v === "string" ? "text/plain" : "application/octet-stream" }).end(v);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    values,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
