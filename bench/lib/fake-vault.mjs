// @ts-check
/**
 * A counting Vault API on node:http for B4: one KV v2 mount at `secret/`, the mount preflight
 * (`sys/internal/ui/mounts/<path>`, which both the Vault CLI and consul-template ask), token
 * lookup/renew. Each request is recorded with its time, category, path and the client token, so
 * several tools can share one server and still be counted apart.
 * @module
 */
import { createServer } from "node:http";

/**
 * @typedef {object} VaultCall
 * @property {number} t - Date.now() when the request arrived
 * @property {string} method
 * @property {string} path - path after /v1/
 * @property {"read" | "mounts" | "token" | "other"} kind
 * @property {string} token - X-Vault-Token ("" when none)
 * @property {number} status
 */

/** Starts the fake on 127.0.0.1:0. */
export class FakeVault {
  /** @type {VaultCall[]} */
  calls = [];
  /** @type {Map<string, { data: Record<string, string>, version: number }>} */
  #kv = new Map();
  /** @type {import("node:http").Server} */
  #server;

  /** @param {import("node:http").Server} server */
  constructor(server) {
    this.#server = server;
  }

  /** @returns {Promise<FakeVault>} */
  static async start() {
    /** @type {FakeVault} */
    let self;
    const server = createServer((req, res) => self.#handle(req, res));
    self = new FakeVault(server);
    await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
    return self;
  }

  /** `http://127.0.0.1:PORT` */
  get address() {
    const a = /** @type {import("node:net").AddressInfo} */ (this.#server.address());
    return `http://127.0.0.1:${a.port}`;
  }

  /**
   * Writes a new version of a KV v2 secret at `secret/<name>`.
   * @param {string} name
   * @param {Record<string, string>} data
   */
  put(name, data) {
    const prev = this.#kv.get(name);
    this.#kv.set(name, { data, version: (prev?.version ?? 0) + 1 });
  }

  /** Stops the server. */
  async close() {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(() => resolve(undefined)));
  }

  /**
   * @param {import("node:http").IncomingMessage} req
   * @param {import("node:http").ServerResponse} res
   */
  #handle(req, res) {
    req.resume();
    const url = new URL(req.url ?? "/", "http://x");
    const path = decodeURIComponent(url.pathname.replace(/^\/v1\//, ""));
    const token = String(req.headers["x-vault-token"] ?? "");
    /** @type {VaultCall["kind"]} */
    let kind = "other";
    let status = 200;
    /** @type {unknown} */
    let body;
    if (path.startsWith("sys/internal/ui/mounts/")) {
      kind = "mounts";
      body = { data: { path: "secret/", type: "kv", options: { version: "2" }, description: "" } };
    } else if (path.startsWith("secret/data/")) {
      kind = "read";
      const s = this.#kv.get(path.slice("secret/data/".length));
      if (!s) {
        status = 404;
        body = { errors: [] };
      } else {
        body = {
          request_id: "bench",
          lease_id: "",
          renewable: false,
          lease_duration: 0,
          data: { data: s.data, metadata: { version: s.version, created_time: "2024-01-01T00:00:00Z", deletion_time: "", destroyed: false } },
          wrap_info: null,
          warnings: null,
          auth: null,
        };
      }
    } else if (path.startsWith("auth/token/")) {
      kind = "token";
      body = { data: { ttl: 0, renewable: false, policies: ["root"], accessor: "bench" }, auth: null };
    } else {
      status = 404;
      body = { errors: [] };
    }
    this.calls.push({ t: Date.now(), method: req.method ?? "GET", path, kind, token, status });
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }
}
