/**
 * A Vault HTTP API on node:http (or node:https) that follows Vault's documented responses, for
 * the vault backend's tests. Checked against the Vault API docs (developer.hashicorp.com/vault/api-docs):
 *
 * - envelope: `request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth`;
 *   errors as `{"errors": [...]}` for every status ≥ 400 (api-docs "Error response").
 * - KV v1 read (`GET /v1/<mount>/<path>`): `data` is the secret, `lease_id` empty, `lease_duration`
 *   the `ttl` key or the mount default (768h); missing → 404 `{"errors":[]}`.
 * - KV v2 read (`GET /v1/<mount>/data/<path>?version=N`, api-docs/secret/kv/kv-v2 "Read Secret
 *   Version"): `data.data` + `data.metadata {created_time, custom_metadata, deletion_time,
 *   destroyed, version}`; a deleted or destroyed version answers 404 with `data.data: null` and
 *   the metadata (as the kv plugin does).
 * - mounts preflight (`GET /v1/sys/internal/ui/mounts/<path>`, Vault's pathInternalUIMountRead):
 *   the mount's info plus `path`; 403 "preflight capability check returned 403, …" when nothing is
 *   mounted there or the token has no access under the mount.
 * - tokens (api-docs/auth/token): `GET auth/token/lookup-self` → `data {accessor, creation_time,
 *   creation_ttl, display_name, entity_id, expire_time, explicit_max_ttl, id, issue_time, meta,
 *   num_uses, orphan, path, policies, renewable, ttl, type}`; `POST auth/token/renew-self
 *   {increment}` → `auth {client_token, accessor, policies, token_policies, metadata,
 *   lease_duration, renewable, …}`; an invalid, expired or revoked token → 403 "permission denied".
 * - leases (api-docs/system/leases "Renew lease"): `POST sys/leases/renew {lease_id, increment}` →
 *   `{lease_id, renewable, lease_duration}` capped at the max TTL; unknown lease → 400.
 * - `X-Vault-Namespace` prefixes the request path (api-docs "Namespaces").
 * - faults: sealed → 503 `{"errors":["Vault is sealed"]}`; rate limit → 429 with Retry-After;
 *   a standby → 307 to the active node.
 */
import { EventEmitter } from "node:events";
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import type { AddressInfo } from "node:net";
import { appRoleLogin, awsLogin, type FakeAppRole, type FakeAwsRole, type LoginGrant } from "./vault-auth.js";
import { capabilitiesSelf, kvMetadata } from "./vault-capabilities.js";
import { FakeVaultState, type Reply } from "./vault-state.js";

export type { FakeAppRole, FakeAwsRole } from "./vault-auth.js";
export type { FakeToken, FakeMount } from "./vault-state.js";

/** One request the fake received. */
export interface VaultCall {
  readonly method: string;
  /** Path after `/v1/`, decoded, without the namespace. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly namespace?: string;
  /** Display name of the token used (never the token). */
  readonly tokenName?: string;
  /** True when the request carried `X-Vault-Request: true`. */
  readonly vaultRequestHeader: boolean;
  readonly status: number;
}

/** A fault for requests whose path starts with `path`. */
export interface FaultRule {
  readonly path: string;
  readonly method?: string;
  readonly status: number;
  readonly errors?: string[];
  readonly retryAfterS?: number;
  remaining: number;
}

/** Options for {@link FakeVault.start}. */
export interface FakeVaultOptions {
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer; readonly ca?: string | Buffer; readonly requestCert?: boolean };
  /** Clock for TTLs. @defaultValue Date.now */
  readonly now?: () => number;
}

/** The fake Vault server. */
export class FakeVault extends FakeVaultState {
  readonly #server: Server;
  readonly #events = new EventEmitter();
  /** Every request, in order. */
  readonly calls: VaultCall[] = [];
  readonly appRoles: FakeAppRole[] = [];
  readonly awsRoles: FakeAwsRole[] = [];
  readonly rules: FaultRule[] = [];
  /** Answer every request 503 "Vault is sealed". */
  sealed = false;
  /** Act as a standby: redirect every request (307) to this address. */
  activeAddress?: string;
  url = "";

  private constructor(server: Server, now: () => number) {
    super(now);
    this.#server = server;
    this.#events.setMaxListeners(100);
  }

  /** Starts the fake on 127.0.0.1, a free port. */
  static async start(opts: FakeVaultOptions = {}): Promise<FakeVault> {
    let self!: FakeVault;
    const handler = (req: IncomingMessage, res: ServerResponse): void => void self.#handle(req, res);
    const server = opts.tls
      ? createHttps({ key: opts.tls.key, cert: opts.tls.cert, ...(opts.tls.ca ? { ca: opts.tls.ca } : {}), requestCert: opts.tls.requestCert ?? false, rejectUnauthorized: opts.tls.requestCert ?? false }, handler)
      : createHttp(handler);
    self = new FakeVault(server, opts.now ?? Date.now);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self.url = `${opts.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return self;
  }

  /** Stops the server and drops kept-alive connections. */
  async close(): Promise<void> {
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Adds an AppRole; returns it (its `secretId` and `secretIdUses` may be changed later). */
  addAppRole(r: Partial<FakeAppRole> & { roleId: string }): FakeAppRole {
    const role: FakeAppRole = { mount: "approle", roleName: "app", policies: [], tokenTtl: 3600, renewable: true, ...r };
    this.appRoles.push(role);
    return role;
  }

  /** Adds an AWS IAM principal. */
  addAwsRole(r: Partial<FakeAwsRole> & Pick<FakeAwsRole, "accessKeyId" | "secretAccessKey">): FakeAwsRole {
    const role: FakeAwsRole = { mount: "aws", role: "app", arn: "arn:aws:iam::123456789012:role/app", policies: [], tokenTtl: 3600, renewable: true, ...r };
    this.awsRoles.push(role);
    return role;
  }

  /** The next `times` requests whose path starts with `path` fail with `status`. */
  fail(path: string, status: number, opts: { times?: number; errors?: string[]; retryAfterS?: number; method?: string } = {}): void {
    this.rules.push({
      path,
      status,
      remaining: opts.times ?? 1,
      ...(opts.errors ? { errors: opts.errors } : {}),
      ...(opts.retryAfterS !== undefined ? { retryAfterS: opts.retryAfterS } : {}),
      ...(opts.method ? { method: opts.method } : {}),
    });
  }

  /** Calls matching a predicate. */
  count(pred: (c: VaultCall) => boolean): number {
    return this.calls.filter(pred).length;
  }

  /** Waits until `pred` holds (checked after every request). */
  waitFor(pred: () => boolean, timeoutMs = 15_000, what = "condition"): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          this.#events.off("call", check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.#events.off("call", check);
        reject(new Error(`fake vault: timed out waiting for ${what}`));
      }, timeoutMs);
      this.#events.on("call", check);
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://x");
    const method = req.method === "PUT" ? "POST" : (req.method ?? "GET");
    const nsHeader = typeof req.headers["x-vault-namespace"] === "string" ? req.headers["x-vault-namespace"].replace(/^\/+|\/+$/g, "") : "";
    const rel = decodeURIComponent(url.pathname.replace(/^\/v1\//, ""));
    const query = Object.fromEntries(url.searchParams);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const tokenId = (req.headers["x-vault-token"] as string | undefined) ?? bearer;
    let body: Record<string, unknown> = {};
    try {
      if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    let reply: Reply;
    if (this.activeAddress) {
      reply = { status: 307, headers: { location: this.activeAddress + req.url } };
    } else if (this.sealed) {
      reply = { status: 503, body: { errors: ["Vault is sealed"] } };
    } else {
      const rule = this.rules.find((r) => r.remaining > 0 && rel.startsWith(r.path) && (!r.method || r.method === method));
      if (rule) {
        rule.remaining--;
        reply = {
          status: rule.status,
          body: { errors: rule.errors ?? defaultErrors(rule.status, rel) },
          ...(rule.retryAfterS !== undefined ? { headers: { "retry-after": String(rule.retryAfterS) } } : {}),
        };
      } else {
        reply = await this.#route(method, rel, nsHeader, query, body, tokenId);
      }
    }
    const tok = tokenId ? this.tokens.get(tokenId) : undefined;
    this.calls.push({
      method,
      path: rel,
      query,
      ...(nsHeader ? { namespace: nsHeader } : {}),
      ...(tokenId ? { tokenName: tok?.name ?? "(unknown)" } : {}),
      vaultRequestHeader: req.headers["x-vault-request"] === "true",
      status: reply.status,
    });
    const text = reply.body === undefined ? "" : JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...(text ? { "content-type": "application/json" } : {}), ...(reply.headers ?? {}) });
    res.end(text);
    this.#events.emit("call");
  }

  async #route(method: string, rel: string, ns: string, query: Record<string, string>, body: Record<string, unknown>, tokenId: string | undefined): Promise<Reply> {
    const full = ns ? `${ns}/${rel}` : rel;
    // Login endpoints are unauthenticated.
    const login = /^auth\/(.+)\/login$/.exec(full);
    if (login && method === "POST") {
      const mount = login[1]!;
      const grant = this.appRoles.some((r) => r.mount === mount)
        ? appRoleLogin(this.appRoles, mount, body)
        : this.awsRoles.some((r) => r.mount === mount)
          ? await awsLogin(this.awsRoles, mount, body)
          : { status: 404, errors: [`no handler for route "${full}". route entry not found.`] };
      if ("errors" in grant) return { status: grant.status, body: { errors: grant.errors } };
      return { status: 200, body: this.envelope({ auth: this.issueToken(grant as LoginGrant) }) };
    }
    const token = this.validToken(tokenId);
    if (!token) return { status: 403, body: { errors: ["permission denied"] } };
    if (full === "auth/token/lookup-self" && method === "GET") return this.lookupSelf(token);
    if (full === "auth/token/renew-self" && method === "POST") return this.renewSelf(token, body);
    if (full === "sys/leases/renew" && method === "POST") return this.renewLease(token, body);
    if (rel === "sys/capabilities-self" && method === "POST") return capabilitiesSelf(this, token, ns, body);
    const meta = method === "GET" ? kvMetadata(this, token, full) : undefined;
    if (meta) return meta;
    const pre = /^sys\/internal\/ui\/mounts\/(.+)$/.exec(rel);
    if (pre && method === "GET") return this.preflight(token, ns, pre[1]!);
    if (method === "GET") return this.read(token, full, query);
    return { status: 405, body: { errors: ["1 error occurred:\n\t* unsupported operation\n\n"] } };
  }
}

function defaultErrors(status: number, path: string): string[] {
  switch (status) {
    case 403:
      return ["1 error occurred:\n\t* permission denied\n\n"];
    case 404:
      return [];
    case 429:
      return [`request path "${path}": rate limit quota exceeded`];
    case 503:
      return ["Vault is sealed"];
    default:
      return ["internal error"];
  }
}
