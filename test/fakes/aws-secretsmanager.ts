/**
 * A small AWS Secrets Manager on node:http (awsJson1.1 protocol) for the cases moto cannot
 * produce: throttling, access denied, server errors, slow and hanging answers, a missing batch
 * permission. It also records every request (operation, secret ids, region and access key id from
 * the SigV4 Authorization header) so tests can count API calls.
 *
 * Implements GetSecretValue, DescribeSecret and BatchGetSecretValue (SecretIdList only).
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** What a faulty operation does instead of answering. */
export type Fault =
  | { readonly kind: "error"; readonly type: string; readonly status?: number; readonly message?: string }
  | { readonly kind: "hang" }
  | { readonly kind: "delay"; readonly ms: number }
  | { readonly kind: "reset" };

/** Operations the fake knows. */
export type Operation = "GetSecretValue" | "DescribeSecret" | "BatchGetSecretValue";

/** One recorded request. */
export interface RecordedCall {
  readonly op: string;
  readonly secretIds: readonly string[];
  readonly region?: string;
  readonly accessKeyId?: string;
  readonly versionStage?: string;
  readonly versionId?: string;
}

interface Version {
  readonly string?: string;
  readonly binary?: Buffer;
}

interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  readonly versions: Map<string, Version>;
  /** stage → version id */
  readonly stages: Map<string, string>;
  deletedAt?: number;
}

interface FaultRule {
  readonly op: Operation | "*";
  readonly fault: Fault;
  /** Only for this secret id (name); a per-secret GetSecretValue fault also shows in batch answers. */
  readonly secretId?: string;
  remaining: number;
}

const ACCOUNT = "123456789012";

/** The fake server. */
export class FakeSecretsManager {
  readonly #server: Server;
  readonly #secrets = new Map<string, StoredSecret>();
  #rules: FaultRule[] = [];
  /** Every request received, in order. */
  readonly calls: RecordedCall[] = [];
  /** Region used in ARNs. */
  readonly region: string;

  private constructor(server: Server, region: string) {
    this.#server = server;
    this.region = region;
  }

  /** Starts the fake on 127.0.0.1, a free port. */
  static async start(opts: { region?: string } = {}): Promise<FakeSecretsManager> {
    let self!: FakeSecretsManager;
    const server = createServer((req, res) => void self.#handle(req, res));
    self = new FakeSecretsManager(server, opts.region ?? "us-east-1");
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return self;
  }

  /** `http://127.0.0.1:PORT` */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Creates the secret if needed and puts a new version with the given stages (default AWSCURRENT; the old AWSCURRENT becomes AWSPREVIOUS). Returns the version id. */
  put(name: string, value: string | Buffer, stages: readonly string[] = ["AWSCURRENT"]): string {
    let s = this.#secrets.get(name);
    if (!s) {
      const suffix = randomUUID().replace(/-/g, "").slice(0, 6);
      s = { name, arn: `arn:aws:secretsmanager:${this.region}:${ACCOUNT}:secret:${name}-${suffix}`, versions: new Map(), stages: new Map() };
      this.#secrets.set(name, s);
    }
    const id = randomUUID();
    s.versions.set(id, typeof value === "string" ? { string: value } : { binary: value });
    for (const stage of stages) {
      if (stage === "AWSCURRENT") {
        const old = s.stages.get("AWSCURRENT");
        if (old) s.stages.set("AWSPREVIOUS", old);
      }
      s.stages.set(stage, id);
    }
    return id;
  }

  /** Moves a staging label to a version (UpdateSecretVersionStage). Moving AWSCURRENT sets AWSPREVIOUS. */
  moveStage(name: string, stage: string, versionId: string): void {
    const s = this.#get(name);
    if (stage === "AWSCURRENT") {
      const old = s.stages.get("AWSCURRENT");
      if (old && old !== versionId) s.stages.set("AWSPREVIOUS", old);
    }
    s.stages.set(stage, versionId);
  }

  /** Removes a staging label. */
  removeStage(name: string, stage: string): void {
    this.#get(name).stages.delete(stage);
  }

  /** Schedules the secret for deletion (reads then fail with InvalidRequestException). */
  scheduleDeletion(name: string): void {
    this.#get(name).deletedAt = Math.floor(Date.now() / 1000);
  }

  /** The ARN of a secret. */
  arn(name: string): string {
    return this.#get(name).arn;
  }

  /** Makes `op` misbehave, `times` times (default: until cleared), optionally only for one secret. */
  fault(op: Operation | "*", fault: Fault, opts: { times?: number; secretId?: string } = {}): void {
    this.#rules.push({ op, fault, remaining: opts.times ?? Infinity, ...(opts.secretId ? { secretId: opts.secretId } : {}) });
  }

  /** Removes all faults. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Number of recorded requests of `op` (all when omitted). */
  count(op?: Operation): number {
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

  #get(name: string): StoredSecret {
    const s = this.#secrets.get(name);
    if (!s) throw new Error(`fake: no secret ${name}`);
    return s;
  }

  #find(id: string): StoredSecret | undefined {
    for (const s of this.#secrets.values()) {
      if (s.name === id || s.arn === id || (id.startsWith("arn:") && s.arn.startsWith(id + "-") && s.arn.length === id.length + 7)) return s;
    }
    return undefined;
  }

  #takeFault(op: Operation, secretId?: string): Fault | undefined {
    const rule = this.#rules.find((r) => (r.op === op || r.op === "*") && r.remaining > 0 && (r.secretId === undefined || r.secretId === secretId));
    if (!rule) return undefined;
    rule.remaining--;
    return rule.fault;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers["x-amz-target"] ?? "");
    const op = target.replace(/^secretsmanager\./, "") as Operation;
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
    } catch {
      return this.#error(res, "SerializationException", 400, "bad JSON");
    }
    const auth = String(req.headers.authorization ?? "");
    const cred = /Credential=([^/]+)\/\d{8}\/([^/]+)\/secretsmanager\//.exec(auth);
    const secretIds = op === "BatchGetSecretValue" ? ((body.SecretIdList as string[] | undefined) ?? []) : [String(body.SecretId ?? "")];
    this.calls.push({
      op,
      secretIds,
      ...(cred ? { accessKeyId: cred[1]!, region: cred[2]! } : {}),
      ...(typeof body.VersionStage === "string" ? { versionStage: body.VersionStage } : {}),
      ...(typeof body.VersionId === "string" ? { versionId: body.VersionId } : {}),
    });

    const fault = this.#takeFault(op, op === "BatchGetSecretValue" ? undefined : secretIds[0]);
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
      case "GetSecretValue":
        return this.#getValue(res, body);
      case "DescribeSecret":
        return this.#describe(res, String(body.SecretId ?? ""));
      case "BatchGetSecretValue":
        return this.#batch(res, secretIds);
      default:
        return this.#error(res, "UnknownOperationException", 400, `unknown operation ${target}`);
    }
  }

  #read(id: string, stage: string | undefined, versionId: string | undefined): { ok: Record<string, unknown> } | { err: [string, string] } {
    const s = this.#find(id);
    if (!s) return { err: ["ResourceNotFoundException", "Secrets Manager can't find the specified secret."] };
    if (s.deletedAt !== undefined) return { err: ["InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion."] };
    const vid = versionId ?? s.stages.get(stage ?? "AWSCURRENT");
    const v = vid ? s.versions.get(vid) : undefined;
    if (!vid || !v) return { err: ["ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label or version."] };
    const labels = [...s.stages].filter(([, id2]) => id2 === vid).map(([l]) => l);
    return {
      ok: {
        ARN: s.arn,
        Name: s.name,
        VersionId: vid,
        VersionStages: labels,
        CreatedDate: 1_700_000_000,
        ...(v.string !== undefined ? { SecretString: v.string } : {}),
        ...(v.binary !== undefined ? { SecretBinary: v.binary.toString("base64") } : {}),
      },
    };
  }

  #getValue(res: ServerResponse, body: Record<string, unknown>): void {
    const r = this.#read(
      String(body.SecretId ?? ""),
      typeof body.VersionStage === "string" ? body.VersionStage : undefined,
      typeof body.VersionId === "string" ? body.VersionId : undefined,
    );
    if ("err" in r) return this.#error(res, r.err[0], 400, r.err[1]);
    this.#json(res, r.ok);
  }

  #describe(res: ServerResponse, id: string): void {
    const s = this.#find(id);
    if (!s) return this.#error(res, "ResourceNotFoundException", 400, "Secrets Manager can't find the specified secret.");
    const map: Record<string, string[]> = {};
    for (const [stage, vid] of s.stages) (map[vid] ??= []).push(stage);
    this.#json(res, { ARN: s.arn, Name: s.name, VersionIdsToStages: map, ...(s.deletedAt !== undefined ? { DeletedDate: s.deletedAt } : {}) });
  }

  #batch(res: ServerResponse, ids: readonly string[]): void {
    if (ids.length === 0 || ids.length > 20) return this.#error(res, "InvalidParameterException", 400, "SecretIdList must have 1 to 20 entries");
    const values: Record<string, unknown>[] = [];
    const errors: Record<string, unknown>[] = [];
    for (const id of ids) {
      const f = this.#takeFault("GetSecretValue", id);
      if (f?.kind === "error") {
        errors.push({ SecretId: id, ErrorCode: f.type, Message: f.message ?? f.type });
        continue;
      }
      const r = this.#read(id, undefined, undefined);
      if ("err" in r) errors.push({ SecretId: id, ErrorCode: r.err[0], Message: r.err[1] });
      else values.push(r.ok);
    }
    this.#json(res, { SecretValues: values, Errors: errors });
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
