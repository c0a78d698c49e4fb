/**
 * A fake EC2 instance metadata service (IMDSv2 only) on 127.0.0.1. Point the AWS SDK at it with
 * `AWS_EC2_METADATA_SERVICE_ENDPOINT=<endpoint>`. Serves the token and the region; everything
 * else is 404. A GET without a valid token is refused with 401, as IMDSv2-only instances do.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the fake received. */
export interface ImdsCall {
  readonly method: string;
  readonly path: string;
  readonly hadValidToken: boolean;
}

/** A running fake IMDS. */
export interface FakeImds {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly calls: ImdsCall[];
  close(): Promise<void>;
}

/** Starts a fake IMDS that says the instance runs in `region`. */
export async function startFakeImds(opts: { region: string }): Promise<FakeImds> {
  const token = randomBytes(16).toString("hex");
  const calls: ImdsCall[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const valid = req.headers["x-aws-ec2-metadata-token"] === token;
    calls.push({ method: req.method ?? "", path, hadValidToken: valid });
    req.resume();
    if (req.method === "PUT" && path === "/latest/api/token") {
      if (!req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" }).end(token);
      return;
    }
    if (req.method === "GET") {
      if (!valid) {
        res.writeHead(401).end();
        return;
      }
      if (path === "/latest/meta-data/placement/region") {
        res.writeHead(200, { "content-type": "text/plain" }).end(opts.region);
        return;
      }
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
