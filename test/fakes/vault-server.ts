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
 *   Renewing in the last second past the max TTL → 500 "past the max TTL, cannot renew"
 *   (vault-state.ts).
 * - leases: `sys/leases/renew`, `lookup`, `revoke` and database credentials (vault-leases.ts).
 * - PKI engines mounted with {@link FakeVault.mountPki} (vault-pki.ts).
 * - auth: AppRole (with `auth/<mount>/role/<name>/secret-id`), AWS IAM (vault-auth.ts), JWT and
 *   TLS certificates (vault-auth-jwt-cert.ts); ACL policies (vault-policy.ts).
 * - response wrapping (`X-Vault-Wrap-TTL`, `sys/wrapping/*`) and `sys/capabilities-self`
 *   (vault-sys.ts).
 * - `X-Vault-Namespace` prefixes the request path (api-docs "Namespaces").
 * - faults: sealed → 503 `{"errors":["Vault is sealed"]}`; rate limit → 429 with Retry-After;
 *   a standby → 307 to the active node.
 */
import { EventEmitter } from "node:events";
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket, DetailedPeerCertificate } from "node:tls";
import { appRoleLogin, awsLogin, generateSecretId, type FakeAppRole, type FakeAwsRole, type LoginFailure, type LoginGrant } from "./vault-auth.js";
import { certLogin, jwtLogin, type FakeCertRole, type FakeJwtRole } from "./vault-auth-jwt-cert.js";
import { FakeVaultLeases } from "./vault-leases.js";
import { FakePki, type FakePkiOptions } from "./vault-pki.js";
import { kvMetadata } from "./vault-kv-metadata.js";
import { capabilitiesSelf, INVALID_WRAPPING_TOKEN, WrapStore, wrapTtl } from "./vault-sys.js";
import { defaultErrors, DENIED, errorReply, UNSUPPORTED, type Reply } from "./vault-util.js";

export type { FakeAppRole, FakeAwsRole, FakeSecretId } from "./vault-auth.js";
export type { FakeCertRole, FakeJwtRole } from "./vault-auth-jwt-cert.js";
export type { FakeToken, FakeMount } from "./vault-state.js";
export type { FakeDbRole, FakeLease, LeaseCounts } from "./vault-leases.js";
export type { FakePki, FakePkiOptions, FakePkiRoleParams, FakeIssuedCert } from "./vault-pki.js";
export type { Capability, PolicyRules } from "./vault-policy.js";

/** One request the fake received. */
export interface VaultCall {
  /** `PUT` is recorded as `POST` (Vault treats them alike); see `httpMethod`. */
  readonly method: string;
  /** The method on the wire. */
  readonly httpMethod: string;
  /** Path after `/v1/`, decoded, without the namespace. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The parsed JSON body (`{}` when there was none or it was not JSON). Kept in memory only. */
  readonly body: Readonly<Record<string, unknown>>;
  readonly namespace?: string;
  /** Display name of the token used (never the token). */
  readonly tokenName?: string;
  /** True when the request carried `X-Vault-Request: true`. */
  readonly vaultRequestHeader: boolean;
  /** True when the answer was response-wrapped (`X-Vault-Wrap-TTL`). */
  readonly wrapped: boolean;
  /** True when the TLS client presented a certificate. */
  readonly clientCert: boolean;
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

/**
 * Options for {@link FakeVault.start}.
 *
 * TLS client certificates: `requestCert: true` (with `ca`) makes the TLS layer itself demand a
 * client certificate it trusts (mutual TLS at the listener). `clientCerts: "request"` is Vault's
 * default listener instead: it asks for a certificate, lets the handshake succeed with any or
 * none, and leaves the check to `auth/cert/login` (see {@link FakeVault.addCertRole}).
 */
export interface FakeVaultOptions {
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: {
    readonly key: string | Buffer;
    readonly cert: string | Buffer;
    readonly ca?: string | Buffer;
    readonly requestCert?: boolean;
    readonly clientCerts?: "request";
  };
  /** Clock for TTLs, leases, certificates and JWT checks. @defaultValue Date.now */
  readonly now?: () => number;
}

/**
 * The fake Vault server. What a test can set up, beyond KV (`mount`, `kvPut`) and tokens
 * (`createToken`):
 *
 * - `setPolicy(name, {path: caps})` — named ACL policies; a token's or role's `policies` naming
 *   them get exactly those capabilities (others are read as legacy full-access path globs).
 * - `await mountPki(path = "pki", {caKey, intermediate, caTtl, maxLeaseTtl})` → a {@link FakePki}:
 *   `pki.role(name, {allowed_domains, allow_subdomains, allow_any_name, allow_ip_sans, ttl,
 *   max_ttl, key_type, key_bits, …})` with Vault's names and defaults; `pki.issued` lists every
 *   certificate (with the CSR for `sign`), `pki.revoke(serial)` puts one on the CRL.
 * - `dbRole(mount, role, {ttl, maxTtl, renewable})` + `leaseCounts(path)` → `{minted, renewed}`.
 * - `addAppRole`, `addAwsRole`, `addJwtRole({publicKeys, boundAudiences, …})`,
 *   `addCertRole({certificate, allowedCommonNames})`.
 * - `wrap(data, ttl)` and `wrappedSecretId(role, {ttl, numUses})` → single-use wrapping tokens.
 * - `calls` records every request with its parsed `body`; `fail(path, status)`, `sealed`,
 *   `activeAddress` inject faults.
 */
export class FakeVault extends FakeVaultLeases {
  readonly #server: Server;
  readonly #events = new EventEmitter();
  readonly #tls: boolean;
  /** Every request, in order. */
  readonly calls: VaultCall[] = [];
  readonly appRoles: FakeAppRole[] = [];
  readonly awsRoles: FakeAwsRole[] = [];
  readonly jwtRoles: FakeJwtRole[] = [];
  readonly certRoles: FakeCertRole[] = [];
  /** PKI engines by mount path (`pki/`). */
  readonly pkis = new Map<string, FakePki>();
  readonly wraps = new WrapStore();
  readonly rules: FaultRule[] = [];
  /** Answer every request 503 "Vault is sealed". */
  sealed = false;
  /** Act as a standby: redirect every request (307) to this address. */
  activeAddress?: string;
  url = "";

  private constructor(server: Server, now: () => number, tls: boolean) {
    super(now);
    this.#server = server;
    this.#tls = tls;
    this.#events.setMaxListeners(100);
  }

  /** Starts the fake on 127.0.0.1, a free port. */
  static async start(opts: FakeVaultOptions = {}): Promise<FakeVault> {
    let self!: FakeVault;
    const handler = (req: IncomingMessage, res: ServerResponse): void => void self.#handle(req, res);
    const t = opts.tls;
    const ask = t?.clientCerts === "request";
    const server = t
      ? createHttps({ key: t.key, cert: t.cert, ...(t.ca ? { ca: t.ca } : {}), requestCert: ask || (t.requestCert ?? false), rejectUnauthorized: !ask && (t.requestCert ?? false) }, handler)
      : createHttp(handler);
    self = new FakeVault(server, opts.now ?? Date.now, !!t);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self.url = `${t ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return self;
  }

  /** Stops the server and drops kept-alive connections. */
  async close(): Promise<void> {
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Adds an AppRole; returns it (its `secretId` and `secretIdUses` may be changed later). */
  addAppRole(r: Partial<FakeAppRole> & { roleId: string }): FakeAppRole {
    const role: FakeAppRole = { mount: "approle", roleName: "app", policies: [], tokenTtl: 3600, renewable: true, extraSecretIds: new Map(), ...r };
    this.appRoles.push(role);
    return role;
  }

  /** Adds an AWS IAM principal. */
  addAwsRole(r: Partial<FakeAwsRole> & Pick<FakeAwsRole, "accessKeyId" | "secretAccessKey">): FakeAwsRole {
    const role: FakeAwsRole = { mount: "aws", role: "app", arn: "arn:aws:iam::123456789012:role/app", policies: [], tokenTtl: 3600, renewable: true, ...r };
    this.awsRoles.push(role);
    return role;
  }

  /** Adds a JWT role (mount `jwt`, role `app`, user claim `sub` unless given); JWTs must be signed by one of `publicKeys`. */
  addJwtRole(r: Partial<FakeJwtRole> & Pick<FakeJwtRole, "publicKeys">): FakeJwtRole {
    const role: FakeJwtRole = { mount: "jwt", name: "app", userClaim: "sub", clockSkewLeeway: 60, policies: [], tokenTtl: 3600, renewable: true, ...r };
    this.jwtRoles.push(role);
    return role;
  }

  /** Adds a cert-auth role (mount `cert`, name `app` unless given) trusting `certificate`. */
  addCertRole(r: Partial<FakeCertRole> & Pick<FakeCertRole, "certificate">): FakeCertRole {
    const role: FakeCertRole = { mount: "cert", name: "app", policies: [], tokenTtl: 3600, renewable: true, ...r };
    this.certRoles.push(role);
    return role;
  }

  /** Mounts a PKI engine at `path` (a new CA is generated); returns it. */
  async mountPki(path = "pki", opts: FakePkiOptions & { namespace?: string } = {}): Promise<FakePki> {
    const m = this.mount(path, "pki", opts.namespace !== undefined ? { namespace: opts.namespace } : {});
    const pki = await FakePki.create(m.path, this.now, opts);
    this.pkis.set(m.path, pki);
    return pki;
  }

  /** Wraps `data` as `sys/wrapping/wrap` would; returns the single-use wrapping token. */
  wrap(data: Record<string, unknown>, ttl = 300, creationPath = "sys/wrapping/wrap"): string {
    return (this.wraps.wrap(this.envelope({ data }), ttl, creationPath, this.now()).wrap_info as { token: string }).token;
  }

  /**
   * A new secret ID for `role`, response-wrapped as `vault write -wrap-ttl=… auth/approle/role/<name>/secret-id`
   * returns it. `ttl` is the wrapping token's, `secretIdTtl`/`numUses` the secret ID's.
   */
  wrappedSecretId(role: FakeAppRole, opts: { ttl?: number; secretIdTtl?: number; numUses?: number } = {}): { wrappingToken: string; secretId: string; accessor: string } {
    const data = generateSecretId(role, { now: this.now(), ...(opts.secretIdTtl ? { ttl: opts.secretIdTtl } : {}), ...(opts.numUses ? { numUses: opts.numUses } : {}) });
    const wrappingToken = this.wrap(data, opts.ttl ?? 300, `auth/${role.mount}/role/${role.roleName}/secret-id`);
    return { wrappingToken, secretId: data.secret_id, accessor: data.secret_id_accessor };
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

  #peerChain(req: IncomingMessage): Buffer[] | undefined {
    if (!this.#tls) return undefined;
    const sock = req.socket as TLSSocket;
    const out: Buffer[] = [];
    let c: DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
    while (c && c.raw && !out.some((b) => b.equals(c!.raw))) {
      out.push(c.raw);
      c = c.issuerCertificate;
    }
    return out;
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
    const chain = this.#peerChain(req);
    let body: Record<string, unknown> = {};
    try {
      if (chunks.length) {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
      }
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
        const wrap = wrapTtl(req.headers["x-vault-wrap-ttl"]);
        reply = await this.#route(method, rel, nsHeader, query, body, tokenId, chain, wrap);
        // Response wrapping: a successful JSON answer goes into the cubbyhole.
        if (wrap !== undefined && reply.status === 200 && reply.raw === undefined && reply.body && typeof reply.body === "object") {
          reply = { status: 200, body: this.wraps.wrap(reply.body as Record<string, unknown>, wrap, rel, this.now()) };
        }
      }
    }
    const tok = tokenId ? this.tokens.get(tokenId) : undefined;
    this.calls.push({
      method,
      httpMethod: req.method ?? "GET",
      path: rel,
      query,
      body,
      ...(nsHeader ? { namespace: nsHeader } : {}),
      ...(tokenId ? { tokenName: tok?.name ?? (this.wraps.isLive(tokenId, this.now()) ? "(wrapping token)" : "(unknown)") } : {}),
      vaultRequestHeader: req.headers["x-vault-request"] === "true",
      wrapped: !!(reply.body && typeof reply.body === "object" && (reply.body as { wrap_info?: unknown }).wrap_info),
      clientCert: (chain?.length ?? 0) > 0,
      status: reply.status,
    });
    if (reply.raw) {
      res.writeHead(reply.status, { "content-type": reply.raw.contentType, ...(reply.headers ?? {}) });
      res.end(reply.raw.body);
    } else {
      const text = reply.body === undefined ? "" : JSON.stringify(reply.body);
      res.writeHead(reply.status, { ...(text ? { "content-type": "application/json" } : {}), ...(reply.headers ?? {}) });
      res.end(text);
    }
    this.#events.emit("call");
  }

  async #login(mount: string, full: string, body: Record<string, unknown>, chain: Buffer[] | undefined): Promise<Reply> {
    const now = this.now();
    const has = (roles: readonly { mount: string }[]): boolean => roles.some((r) => r.mount === mount);
    const grant: LoginGrant | LoginFailure = has(this.appRoles)
      ? appRoleLogin(this.appRoles, mount, body, now)
      : has(this.awsRoles)
        ? await awsLogin(this.awsRoles, mount, body)
        : has(this.jwtRoles)
          ? jwtLogin(this.jwtRoles, mount, body, now)
          : has(this.certRoles)
            ? certLogin(this.certRoles, mount, body, chain, now)
            : // Nothing mounted there: the path is no login path, so it needs a token (OpenBao 2.x and
              // Vault answer a tokenless login to an unmounted auth path 403 "permission denied").
              { status: 403, errors: ["permission denied"] };
    if ("errors" in grant) return errorReply(grant.status, ...grant.errors);
    return { status: 200, body: this.envelope({ auth: this.issueToken(grant) }) };
  }

  async #route(method: string, rel: string, ns: string, query: Record<string, string>, body: Record<string, unknown>, tokenId: string | undefined, chain: Buffer[] | undefined, wrap: number | undefined): Promise<Reply> {
    const full = ns ? `${ns}/${rel}` : rel;
    const now = this.now();
    // The wrapping token is checked before the client token (Vault's handleCancelableRequest).
    if (rel === "sys/wrapping/unwrap" && method === "POST") {
      const third = typeof body.token === "string";
      const wrapping = third ? (body.token as string) : tokenId;
      if (!this.wraps.isLive(wrapping, now)) return INVALID_WRAPPING_TOKEN;
      if (third && !this.validToken(tokenId)) return errorReply(403, "permission denied");
      return this.wraps.unwrap(wrapping, now);
    }
    // Login endpoints are unauthenticated.
    const login = /^auth\/(.+)\/login$/.exec(full);
    if (login && method === "POST") return this.#login(login[1]!, full, body, chain);
    // So are the PKI engine's CA, chain, CRL and certificate reads.
    const mount = this.mountOf(full);
    const pki = mount?.type === "pki" ? this.pkis.get(mount.path) : undefined;
    if (pki) {
      const open = await pki.unauthenticated(method, full.slice(mount!.path.length));
      if (open) return open;
    }
    const token = this.validToken(tokenId);
    if (!token) return errorReply(403, "permission denied");
    if (full === "auth/token/lookup-self" && method === "GET") return this.lookupSelf(token);
    if (full === "auth/token/renew-self" && method === "POST") return this.renewSelf(token, body);
    const leases = /^sys\/leases\/(renew|lookup|revoke)(?:\/(.+))?$/.exec(rel);
    if (leases && method === "POST") {
      if (leases[1] === "renew") return this.renewLease(token, body, leases[2]);
      if (leases[1] === "revoke") return this.revokeLeaseById(body, leases[2]);
      return this.lookupLease(body);
    }
    if (rel === "sys/capabilities-self" && method === "POST") return capabilitiesSelf(token.policies, this.policies, body, ns);
    if (rel === "sys/wrapping/lookup" && method === "POST") return this.wraps.lookup(typeof body.token === "string" ? body.token : undefined, now);
    if (rel === "sys/wrapping/wrap" && method === "POST") {
      return wrap === undefined ? errorReply(400, "endpoint requires response wrapping to be used") : { status: 200, body: this.envelope({ data: body }) };
    }
    const sid = /^auth\/(.+)\/role\/([^/]+)\/secret-id$/.exec(full);
    if (sid && method === "POST") {
      if (!this.allowed(token, full, "update")) return DENIED;
      const role = this.appRoles.find((r) => r.mount === sid[1] && r.roleName === sid[2]);
      if (!role) return errorReply(404, `role "${sid[2]}" does not exist`);
      const ttl = body.ttl === undefined ? undefined : Number(body.ttl);
      const numUses = body.num_uses === undefined ? undefined : Number(body.num_uses);
      return { status: 200, body: this.envelope({ data: generateSecretId(role, { now, ...(ttl ? { ttl } : {}), ...(numUses ? { numUses } : {}) }) }) };
    }
    const pre = /^sys\/internal\/ui\/mounts\/(.+)$/.exec(rel);
    if (pre && method === "GET") return this.preflight(token, ns, pre[1]!);
    if (pki) {
      if (!this.allowed(token, full, method === "GET" ? "read" : "update")) return DENIED;
      return pki.handle(method, full.slice(mount!.path.length), body, full);
    }
    if (method === "GET") return kvMetadata(this, token, full) ?? this.read(token, full, query);
    return UNSUPPORTED;
  }
}
