/**
 * State and read paths of the fake Vault (see vault-server.ts for the documented shapes it
 * follows): tokens with TTLs and policies, mounts (KV v1, KV v2, database, pki), KV reads.
 * Leases and dynamic credentials are in vault-leases.ts.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { LoginGrant } from "./vault-auth.js";
import { allows, grantedPatterns, type Capability, type PolicyRules } from "./vault-policy.js";
import { DENIED, errorReply, multiError, parseDuration, renewalTtl, type Reply } from "./vault-util.js";

export type { Reply } from "./vault-util.js";

/** A token the fake knows. */
export interface FakeToken {
  readonly id: string;
  readonly accessor: string;
  readonly name: string;
  /** Path globs the token may read (`secret/data/app/*`), or `["root"]`. */
  readonly policies: readonly string[];
  /** Creation TTL in seconds (0: never expires). */
  readonly ttl: number;
  readonly renewable: boolean;
  readonly issuedAt: number;
  expiresAt?: number;
  readonly maxExpiresAt?: number;
  /** Max TTL in seconds, counted from `issuedAt` (undefined: none). */
  readonly maxTtl?: number;
  revoked: boolean;
  readonly path: string;
  readonly meta: Record<string, string>;
}

/** A secrets engine mount. */
export interface FakeMount {
  /** Full path with the namespace and a trailing slash (`ops/secret/`). */
  readonly path: string;
  readonly namespace: string;
  readonly type: "kv" | "database" | "pki";
  readonly kvVersion?: 1 | 2;
  readonly accessor: string;
  readonly uuid: string;
}

interface KvVersion {
  readonly data: Record<string, unknown>;
  readonly created: string;
  deletionTime: string;
  destroyed: boolean;
}

const KV_V1_DEFAULT_LEASE = 2_764_800;
/** Vault's system max lease TTL (768h), the cap when nothing smaller is configured. */
export const SYSTEM_MAX_TTL = 2_764_800;

/** The fake's data. */
export class FakeVaultState {
  readonly tokens = new Map<string, FakeToken>();
  readonly mounts: FakeMount[] = [];
  readonly kv1 = new Map<string, Record<string, unknown>>();
  readonly kv2 = new Map<string, { versions: Map<number, KvVersion>; current: number }>();
  /** Named ACL policies (see vault-policy.ts); token policies not named here are path globs. */
  readonly policies = new Map<string, PolicyRules>();
  readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  /** Mounts an engine at `path` (`secret`, or `ops/secret` inside namespace `ops`). */
  mount(path: string, type: "kv" | "database" | "pki", opts: { version?: 1 | 2; namespace?: string } = {}): FakeMount {
    const ns = opts.namespace ?? "";
    const p = `${ns ? ns + "/" : ""}${path.replace(/^\/+|\/+$/g, "")}/`;
    const m: FakeMount = { path: p, namespace: ns, type, ...(type === "kv" ? { kvVersion: opts.version ?? 2 } : {}), accessor: `${type}_${randomBytes(4).toString("hex")}`, uuid: randomUUID() };
    this.mounts.push(m);
    return m;
  }

  /** Creates a token; returns its id. */
  createToken(opts: { name?: string; policies?: string[]; ttl?: number; renewable?: boolean; maxTtl?: number; id?: string; path?: string; meta?: Record<string, string> } = {}): string {
    const id = opts.id ?? "hvs." + randomBytes(18).toString("base64url");
    const now = this.now();
    const ttl = opts.ttl ?? 0;
    this.tokens.set(id, {
      id,
      accessor: randomBytes(12).toString("base64url"),
      name: opts.name ?? "token",
      policies: opts.policies ?? ["root"],
      ttl,
      renewable: opts.renewable ?? ttl > 0,
      issuedAt: now,
      ...(ttl > 0 ? { expiresAt: now + ttl * 1000 } : {}),
      ...(opts.maxTtl !== undefined ? { maxExpiresAt: now + opts.maxTtl * 1000, maxTtl: opts.maxTtl } : {}),
      revoked: false,
      path: opts.path ?? "auth/token/create",
      meta: opts.meta ?? {},
    });
    return id;
  }

  /** Defines a named ACL policy: `{ "pki/issue/web": ["update"], "secret/data/*": ["read"] }`. */
  setPolicy(name: string, rules: PolicyRules): void {
    this.policies.set(name, rules);
  }

  /** Revokes a token (and, as Vault does, the leases made with it: see the leases layer). */
  revokeToken(id: string): void {
    const t = this.tokens.get(id);
    if (t) t.revoked = true;
  }

  /** Revokes every token issued by a login (all but those made with createToken). */
  revokeLoginTokens(): void {
    for (const t of this.tokens.values()) if (t.path.endsWith("/login")) this.revokeToken(t.id);
  }

  /** Writes a KV secret at `path` (`secret/app` — no `data/`). Returns the new version (v2) or 0. */
  kvPut(path: string, data: Record<string, unknown>): number {
    const m = this.mountOf(path);
    if (!m || m.type !== "kv") throw new Error(`fake vault: no kv mount for ${path}`);
    if (m.kvVersion === 1) {
      this.kv1.set(path, data);
      return 0;
    }
    const e = this.kv2.get(path) ?? { versions: new Map<number, KvVersion>(), current: 0 };
    e.current++;
    e.versions.set(e.current, { data, created: new Date(this.now()).toISOString(), deletionTime: "", destroyed: false });
    this.kv2.set(path, e);
    return e.current;
  }

  /** Soft-deletes a KV v2 version (the latest by default), or removes a KV v1 secret. */
  kvDelete(path: string, version?: number): void {
    if (this.kv1.delete(path)) return;
    const e = this.kv2.get(path);
    const v = e?.versions.get(version ?? e.current);
    if (v) v.deletionTime = new Date(this.now()).toISOString();
  }

  envelope(over: Record<string, unknown>): Record<string, unknown> {
    return { request_id: randomUUID(), lease_id: "", renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth: null, ...over };
  }

  issueToken(g: LoginGrant): Record<string, unknown> {
    const id = this.createToken({ name: g.path, policies: [...g.policies], ttl: g.ttl, renewable: g.renewable, path: g.path, meta: g.metadata, ...(g.maxTtl !== undefined ? { maxTtl: g.maxTtl } : {}) });
    const t = this.tokens.get(id)!;
    return {
      client_token: id,
      accessor: t.accessor,
      policies: ["default", ...g.policies],
      token_policies: ["default", ...g.policies],
      metadata: g.metadata,
      lease_duration: g.ttl,
      renewable: g.renewable,
      entity_id: randomUUID(),
      token_type: "service",
      orphan: true,
    };
  }

  validToken(id: string | undefined): FakeToken | undefined {
    const t = id ? this.tokens.get(id) : undefined;
    if (!t || t.revoked) return undefined;
    if (t.expiresAt !== undefined && this.now() >= t.expiresAt) return undefined;
    return t;
  }

  /** Whether the token's policies allow `op` on `full` (the path with its namespace). */
  allowed(t: FakeToken, full: string, op: Capability = "read"): boolean {
    return allows(t.policies, this.policies, full, op);
  }

  /** The mount `full` lies under (the longest match). */
  mountOf(full: string): FakeMount | undefined {
    let best: FakeMount | undefined;
    for (const m of this.mounts) if ((full + "/").startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
    return best;
  }

  #ttlLeft(t: FakeToken): number {
    return t.expiresAt === undefined ? 0 : Math.max(0, Math.floor((t.expiresAt - this.now()) / 1000));
  }

  lookupSelf(t: FakeToken): Reply {
    return {
      status: 200,
      body: this.envelope({
        data: {
          accessor: t.accessor,
          creation_time: Math.floor(t.issuedAt / 1000),
          creation_ttl: t.ttl,
          display_name: t.name,
          entity_id: "",
          expire_time: t.expiresAt === undefined ? null : new Date(t.expiresAt).toISOString(),
          explicit_max_ttl: 0,
          id: t.id,
          issue_time: new Date(t.issuedAt).toISOString(),
          meta: t.meta,
          num_uses: 0,
          orphan: true,
          path: t.path,
          policies: tokenPolicies(t),
          renewable: t.renewable,
          ttl: this.#ttlLeft(t),
          type: "service",
        },
      }),
    };
  }

  /**
   * `auth/token/renew-self`. The new TTL is Vault's `CalculateTTL`: the increment (or the
   * token's TTL), capped by what is left of its max TTL (768h when none was set), times
   * truncated to the second. In the last second past the max TTL — the token may still be
   * valid then — Vault answers 500 "past the max TTL, cannot renew" (a plain handler error,
   * wrapped by multierror), not 200 with a zero TTL.
   */
  renewSelf(t: FakeToken, body: Record<string, unknown>): Reply {
    if (!t.renewable || t.expiresAt === undefined) return errorReply(400, "lease is not renewable");
    const now = this.now();
    const r = renewalTtl({ increment: parseDuration(body.increment), ttl: t.ttl, maxTtl: t.maxTtl ?? SYSTEM_MAX_TTL, issuedAtMs: t.issuedAt, nowMs: now });
    if (r.past) return errorReply(500, multiError("past the max TTL, cannot renew"));
    t.expiresAt = now + r.ttl * 1000;
    return {
      status: 200,
      body: this.envelope({
        auth: { client_token: t.id, accessor: t.accessor, policies: tokenPolicies(t), token_policies: tokenPolicies(t), metadata: t.meta, lease_duration: r.ttl, renewable: t.renewable, entity_id: "", token_type: "service", orphan: true },
        ...(r.warning ? { warnings: [r.warning] } : {}),
      }),
    };
  }

  preflight(t: FakeToken, ns: string, rel: string): Reply {
    const path = (ns ? `${ns}/` : "") + rel.replace(/^\/+/, "").replace(/\/?$/, "/");
    const deny: Reply = { status: 403, body: { errors: [`preflight capability check returned 403, please ensure client's policies grant access to path "${rel.replace(/\/?$/, "/")}"`] } };
    const m = this.mountOf(path.replace(/\/$/, ""));
    if (!m) return deny;
    const access = t.policies.includes("root") || grantedPatterns(t.policies, this.policies).some((p) => p.startsWith(m.path) || m.path.startsWith(p.replace(/[*+][\s\S]*$/, "")));
    if (!access) return deny;
    const relMount = ns && m.path.startsWith(ns + "/") ? m.path.slice(ns.length + 1) : m.path;
    return {
      status: 200,
      body: this.envelope({
        data: {
          accessor: m.accessor,
          config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
          description: "",
          external_entropy_access: false,
          local: false,
          options: m.type === "kv" ? { version: String(m.kvVersion) } : null,
          path: relMount,
          plugin_version: "",
          running_plugin_version: `v0.0.0+builtin`,
          running_sha256: "",
          seal_wrap: false,
          type: m.type,
          uuid: m.uuid,
        },
      }),
    };
  }

  /** A GET under a mount that is not KV (the leases layer answers database reads). */
  protected readEngine(_t: FakeToken, _m: FakeMount, full: string, _rest: string): Reply {
    return errorReply(404, `no handler for route "${full}". route entry not found.`);
  }

  read(t: FakeToken, full: string, query: Record<string, string>): Reply {
    if (!this.allowed(t, full)) return DENIED;
    const m = this.mountOf(full);
    if (!m) return { status: 404, body: { errors: [`no handler for route "${full}". route entry not found.`] } };
    const rest = full.slice(m.path.length);
    if (m.type !== "kv") return this.readEngine(t, m, full, rest);
    if (m.kvVersion === 1) {
      const data = this.kv1.get(full);
      if (!data) return { status: 404, body: { errors: [] } };
      const ttl = typeof data.ttl === "string" ? parseDuration(data.ttl) : undefined;
      return { status: 200, body: this.envelope({ lease_duration: ttl ?? KV_V1_DEFAULT_LEASE, data }) };
    }
    if (!rest.startsWith("data/")) {
      return { status: 404, body: { errors: [], warnings: ["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."] } };
    }
    const key = m.path + rest.slice(5);
    const e = this.kv2.get(key);
    const n = query.version !== undefined ? Number(query.version) : e?.current;
    const v = n !== undefined ? e?.versions.get(n) : undefined;
    if (!e || !v) return { status: 404, body: { errors: [] } };
    const metadata = { created_time: v.created, custom_metadata: null, deletion_time: v.deletionTime, destroyed: v.destroyed, version: n };
    if (v.deletionTime !== "" || v.destroyed) return { status: 404, body: this.envelope({ data: { data: null, metadata } }) };
    return { status: 200, body: this.envelope({ data: { data: v.data, metadata } }) };
  }
}

/** The policy names Vault reports for a token: `["root"]`, or `default` plus the token's own. */
function tokenPolicies(t: FakeToken): string[] {
  return t.policies.includes("root") ? ["root"] : ["default", ...t.policies.filter((p) => p !== "default")];
}
