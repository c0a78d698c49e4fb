// @ts-check
/**
 * A counting AWS Secrets Manager (awsJson1.1) on node:http for B4 and B5: GetSecretValue,
 * DescribeSecret, BatchGetSecretValue. Signatures are not checked; each request is recorded
 * with its time, operation and secret ids. Mirrors test/fakes/aws-secretsmanager.ts (which is
 * TypeScript and for tests), without its fault injection.
 * @module
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

/**
 * @typedef {object} AwsCall
 * @property {number} t - Date.now() when the request arrived
 * @property {string} op
 * @property {string[]} secretIds
 */

const ACCOUNT = "123456789012";

export class FakeAwsSm {
  /** @type {AwsCall[]} */
  calls = [];
  /** @type {Map<string, { arn: string, current: string, previous?: string, values: Map<string, string> }>} */
  #secrets = new Map();
  /** @type {import("node:http").Server} */
  #server;
  region = "us-east-1";

  /** @param {import("node:http").Server} server */
  constructor(server) {
    this.#server = server;
  }

  /** @returns {Promise<FakeAwsSm>} */
  static async start() {
    /** @type {FakeAwsSm} */
    let self;
    const server = createServer((req, res) => void self.#handle(req, res));
    // A fleet opens many keep-alive connections at once.
    server.maxConnections = 100_000;
    server.keepAliveTimeout = 65_000;
    self = new FakeAwsSm(server);
    await new Promise((resolve) => server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => resolve(undefined)));
    return self;
  }

  /** `http://127.0.0.1:PORT` */
  get endpoint() {
    const a = /** @type {import("node:net").AddressInfo} */ (this.#server.address());
    return `http://127.0.0.1:${a.port}`;
  }

  /**
   * Puts a new AWSCURRENT version (the old one becomes AWSPREVIOUS). Returns the version id.
   * @param {string} name
   * @param {string} value
   * @returns {string}
   */
  put(name, value) {
    let s = this.#secrets.get(name);
    if (!s) {
      s = { arn: `arn:aws:secretsmanager:${this.region}:${ACCOUNT}:secret:${name}-AbCdEf`, current: "", values: new Map() };
      this.#secrets.set(name, s);
    }
    const id = randomUUID();
    s.values.set(id, value);
    if (s.current) s.previous = s.current;
    s.current = id;
    return id;
  }

  /** Stops the server. */
  async close() {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(() => resolve(undefined)));
  }

  /** @param {string} id */
  #find(id) {
    const byName = this.#secrets.get(id);
    if (byName) return { name: id, s: byName };
    for (const [name, s] of this.#secrets) if (s.arn === id) return { name, s };
    return undefined;
  }

  /**
   * @param {import("node:http").IncomingMessage} req
   * @param {import("node:http").ServerResponse} res
   */
  async #handle(req, res) {
    const t = Date.now();
    /** @type {Buffer[]} */
    const chunks = [];
    for await (const c of req) chunks.push(/** @type {Buffer} */ (c));
    const op = String(req.headers["x-amz-target"] ?? "").replace(/^secretsmanager\./, "");
    /** @type {Record<string, unknown>} */
    let body = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    } catch {
      return this.#error(res, "SerializationException", "bad JSON");
    }
    const secretIds = op === "BatchGetSecretValue" ? /** @type {string[]} */ (body.SecretIdList ?? []) : [String(body.SecretId ?? "")];
    this.calls.push({ t, op, secretIds });
    if (op === "GetSecretValue") {
      const r = this.#read(secretIds[0]);
      return r ? this.#json(res, r) : this.#error(res, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
    }
    if (op === "DescribeSecret") {
      const f = this.#find(secretIds[0]);
      if (!f) return this.#error(res, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
      /** @type {Record<string, string[]>} */
      const map = { [f.s.current]: ["AWSCURRENT"] };
      if (f.s.previous) map[f.s.previous] = ["AWSPREVIOUS"];
      return this.#json(res, { ARN: f.s.arn, Name: f.name, VersionIdsToStages: map });
    }
    if (op === "BatchGetSecretValue") {
      const values = [];
      const errors = [];
      for (const id of secretIds) {
        const r = this.#read(id);
        if (r) values.push(r);
        else errors.push({ SecretId: id, ErrorCode: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret." });
      }
      return this.#json(res, { SecretValues: values, Errors: errors });
    }
    return this.#error(res, "UnknownOperationException", `unknown operation ${op}`);
  }

  /** @param {string} id */
  #read(id) {
    const f = this.#find(id);
    if (!f) return undefined;
    return { ARN: f.s.arn, Name: f.name, VersionId: f.s.current, VersionStages: ["AWSCURRENT"], SecretString: f.s.values.get(f.s.current), CreatedDate: 1_700_000_000 };
  }

  /**
   * @param {import("node:http").ServerResponse} res
   * @param {unknown} body
   */
  #json(res, body) {
    const text = JSON.stringify(body);
    res.writeHead(200, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomUUID(), "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  /**
   * @param {import("node:http").ServerResponse} res
   * @param {string} type
   * @param {string} message
   */
  #error(res, type, message) {
    const text = JSON.stringify({ __type: type, message });
    res.writeHead(400, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomUUID(), "x-amzn-errortype": type, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }
}
