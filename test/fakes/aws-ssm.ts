/**
 * A small AWS Systems Manager Parameter Store on node:http (the awsJson1.1 protocol: POST /,
 * `X-Amz-Target: AmazonSSM.<Operation>`, errors as `{"__type", "message"}`) for the cases moto
 * cannot produce: access denied for one parameter of a batch, KMS failures, throttling, server
 * errors, slow and hanging answers. It records every request (operation, names or path, region
 * and access key id from the SigV4 Authorization header) so tests can count API calls.
 *
 * Implements GetParameter, GetParameters and GetParametersByPath (Recursive, MaxResults,
 * NextToken), with versions, labels and `name:selector` names, as the SSM API reference documents.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What a faulty operation does instead of answering. */
export type SsmFault =
  | { readonly kind: "error"; readonly type: string; readonly status?: number; readonly message?: string }
  | { readonly kind: "hang" }
  | { readonly kind: "delay"; readonly ms: number }
  | { readonly kind: "reset" };

/** Operations the fake knows. */
export type SsmOperation = "GetParameter" | "GetParameters" | "GetParametersByPath";

/** One recorded request. */
export interface SsmCall {
  readonly op: string;
  /** `Name` or `Names` as sent (with selectors); empty for GetParametersByPath. */
  readonly names: readonly string[];
  readonly path?: string;
  readonly withDecryption: boolean;
  readonly recursive?: boolean;
  readonly region?: string;
  readonly accessKeyId?: string;
}

type ParamType = "String" | "StringList" | "SecureString";

interface StoredParameter {
  readonly name: string;
  readonly type: ParamType;
  /** Version number → value and when it was written. */
  readonly versions: Map<number, { value: string; modified: number }>;
  /** Label → version. */
  readonly labels: Map<string, number>;
  latest: number;
}

interface FaultRule {
  readonly op: SsmOperation | "*";
  readonly fault: SsmFault;
  /** Only requests naming this parameter (any selector); for GetParameters, any of its names. */
  readonly name?: string;
  remaining: number;
}

const ACCOUNT = "123456789012";

/** The fake server. */
export class FakeSsm {
  readonly #server: Server;
  readonly #params = new Map<string, StoredParameter>();
  #rules: FaultRule[] = [];
  #clock = 1_700_000_000_000;
  /** Every request received, in order. */
  readonly calls: SsmCall[] = [];
  /** Region used in ARNs. */
  readonly region: string;

  private constructor(server: Server, region: string) {
    this.#server = server;
    this.region = region;
  }

  /** Starts the fake on 127.0.0.1, a free port. */
  static async start(opts: { region?: string } = {}): Promise<FakeSsm> {
    let self!: FakeSsm;
    const server = createServer((req, res) => void self.#handle(req, res));
    self = new FakeSsm(server, opts.region ?? "us-east-1");
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return self;
  }

  /** `http://127.0.0.1:PORT` */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** PutParameter with Overwrite: creates the parameter or adds a version. Returns the version number. */
  put(name: string, value: string, type: ParamType = "String"): number {
    let p = this.#params.get(name);
    if (!p) {
      p = { name, type, versions: new Map(), labels: new Map(), latest: 0 };
      this.#params.set(name, p);
    }
    p.latest++;
    p.versions.set(p.latest, { value, modified: (this.#clock += 1000) });
    return p.latest;
  }

  /** LabelParameterVersion: moves `label` to `version`. */
  label(name: string, version: number, label: string): void {
    this.#get(name).labels.set(label, version);
  }

  /** DeleteParameter. */
  delete(name: string): void {
    this.#params.delete(name);
  }

  /** The ARN of a parameter. */
  arn(name: string): string {
    return `arn:aws:ssm:${this.region}:${ACCOUNT}:parameter${name.startsWith("/") ? "" : "/"}${name}`;
  }

  /** Makes `op` misbehave, `times` times (default: until cleared), optionally only for requests naming one parameter. */
  fault(op: SsmOperation | "*", fault: SsmFault, opts: { times?: number; name?: string } = {}): void {
    this.#rules.push({ op, fault, remaining: opts.times ?? Infinity, ...(opts.name ? { name: opts.name } : {}) });
  }

  /** Removes all faults. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Number of recorded requests of `op` (all when omitted). */
  count(op?: SsmOperation): number {
    return op ? this.calls.filter((c) => c.op === op).length : this.calls.length;
  }

  /** Forgets recorded requests. */
  resetCalls(): void {
    this.calls.length = 0;
  }

  /** Stops the server, cutting hanging requests. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #get(name: string): StoredParameter {
    const p = this.#params.get(name);
    if (!p) throw new Error(`fake: no parameter ${name}`);
    return p;
  }

  /** Splits `name:selector` and resolves an ARN to the stored name. */
  #parse(requested: string): { name: string; selector?: string } {
    let rest = requested;
    let name: string;
    if (rest.startsWith("arn:")) {
      const m = /^arn:aws:ssm:[^:]+:\d{12}:parameter(\/[^:]+)(?::(.+))?$/.exec(rest);
      if (!m) return { name: requested };
      const tail = m[1]!;
      // The ARN of "/a/b" and of "a/b"… only "/a/b" can exist; of "x" and "/x" prefer the one stored.
      name = this.#params.has(tail) ? tail : tail.slice(1);
      return { name, ...(m[2] ? { selector: m[2] } : {}) };
    }
    const colon = rest.indexOf(":");
    if (colon === -1) return { name: rest };
    name = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
    return { name, selector: rest };
  }

  #takeFault(op: SsmOperation, names: readonly string[]): SsmFault | undefined {
    const bases = names.map((n) => this.#parse(n).name);
    const rule = this.#rules.find((r) => (r.op === op || r.op === "*") && r.remaining > 0 && (r.name === undefined || bases.includes(r.name)));
    if (!rule) return undefined;
    rule.remaining--;
    return rule.fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers["x-amz-target"] ?? "");
    const op = target.replace(/^AmazonSSM\./, "") as SsmOperation;
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    } catch {
      return this.#error(res, "SerializationException", 400, "bad JSON");
    }
    if (req.method !== "POST" || !String(req.headers["content-type"] ?? "").startsWith("application/x-amz-json-1.1")) {
      return this.#error(res, "UnknownOperationException", 400, "expected POST with application/x-amz-json-1.1");
    }
    const auth = String(req.headers.authorization ?? "");
    const cred = /Credential=([^/]+)\/\d{8}\/([^/]+)\/ssm\//.exec(auth);
    const names = op === "GetParameters" ? ((body.Names as string[] | undefined) ?? []) : op === "GetParameter" ? [String(body.Name ?? "")] : [];
    this.calls.push({
      op,
      names,
      ...(op === "GetParametersByPath" ? { path: String(body.Path ?? ""), recursive: body.Recursive === true } : {}),
      withDecryption: body.WithDecryption === true,
      ...(cred ? { accessKeyId: cred[1]!, region: cred[2]! } : {}),
    });

    const fault = this.#takeFault(op, op === "GetParametersByPath" ? [String(body.Path ?? "")] : names);
    if (fault) {
      if (fault.kind === "hang") return; // never answer; close() cuts it
      if (fault.kind === "reset") {
        req.socket.destroy();
        return;
      }
      if (fault.kind === "delay") await new Promise((r) => setTimeout(r, fault.ms));
      if (fault.kind === "error") return this.#error(res, fault.type, fault.status ?? 400, fault.message ?? fault.type);
    }

    switch (op) {
      case "GetParameter": {
        const r = this.#read(names[0]!, body.WithDecryption === true);
        if ("err" in r) return this.#error(res, r.err[0], 400, r.err[1]);
        return this.#json(res, { Parameter: r.ok });
      }
      case "GetParameters": {
        if (names.length < 1 || names.length > 10) {
          return this.#error(res, "ValidationException", 400, "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10");
        }
        const parameters: unknown[] = [];
        const invalid: string[] = [];
        for (const n of names) {
          const r = this.#read(n, body.WithDecryption === true);
          if ("ok" in r) parameters.push(r.ok);
          else invalid.push(n);
        }
        return this.#json(res, { Parameters: parameters, InvalidParameters: invalid });
      }
      case "GetParametersByPath":
        return this.#byPath(res, body);
      default:
        return this.#error(res, "UnknownOperationException", 400, `unknown operation ${target}`);
    }
  }

  #shape(p: StoredParameter, version: number, selector: string | undefined, decrypt: boolean): Record<string, unknown> {
    const v = p.versions.get(version)!;
    const value = p.type === "SecureString" && !decrypt ? `AQICAH-encrypted-${Buffer.from(v.value).length}` : v.value;
    return {
      Name: p.name,
      Type: p.type,
      Value: value,
      Version: version,
      ...(selector ? { Selector: `:${selector}` } : {}),
      LastModifiedDate: v.modified / 1000,
      ARN: this.arn(p.name),
      DataType: "text",
    };
  }

  #read(requested: string, decrypt: boolean): { ok: Record<string, unknown> } | { err: [string, string] } {
    const { name, selector } = this.#parse(requested);
    const p = this.#params.get(name);
    if (!p) return { err: ["ParameterNotFound", `Parameter ${requested} not found.`] };
    let version = p.latest;
    if (selector !== undefined) {
      if (/^\d+$/.test(selector)) {
        version = Number(selector);
        if (!p.versions.has(version)) return { err: ["ParameterVersionNotFound", `Systems Manager could not find version ${selector} of ${name}. Verify the version and try again.`] };
      } else {
        const l = p.labels.get(selector);
        if (l === undefined) return { err: ["ParameterNotFound", `Parameter ${requested} not found.`] };
        version = l;
      }
    }
    return { ok: this.#shape(p, version, selector, decrypt) };
  }

  #byPath(res: ServerResponse, body: Record<string, unknown>): void {
    const path = String(body.Path ?? "");
    if (!path.startsWith("/")) return this.#error(res, "ValidationException", 400, "The parameter doesn't meet the parameter name requirements");
    const max = typeof body.MaxResults === "number" ? body.MaxResults : 10;
    if (max < 1 || max > 10) return this.#error(res, "ValidationException", 400, "MaxResults must be from 1 to 10");
    const prefix = path.endsWith("/") ? path : path + "/";
    const recursive = body.Recursive === true;
    const all = [...this.#params.values()]
      .filter((p) => p.name.startsWith(prefix) && (recursive || !p.name.slice(prefix.length).includes("/")))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    const start = typeof body.NextToken === "string" ? Number(body.NextToken) : 0;
    if (!Number.isInteger(start) || start < 0) return this.#error(res, "InvalidNextToken", 400, "The specified token isn't valid.");
    const page = all.slice(start, start + max).map((p) => this.#shape(p, p.latest, undefined, body.WithDecryption === true));
    const next = start + max < all.length ? String(start + max) : undefined;
    this.#json(res, { Parameters: page, ...(next ? { NextToken: next } : {}) });
  }

  #json(res: ServerResponse, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(200, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomUUID(), "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  #error(res: ServerResponse, type: string, status: number, message: string): void {
    const text = JSON.stringify({ __type: type, message });
    res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": randomUUID(), "x-amzn-errortype": type, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }
}
