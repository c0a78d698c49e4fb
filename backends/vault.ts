/**
 * The `vault` backend: HashiCorp Vault (and OpenBao), over its HTTP API.
 *
 * References: `vault:secret/nomad` — a path as `vault kv get` takes it. The mount and its KV
 * version come from the preflight `sys/internal/ui/mounts/<path>` (as the Vault CLI does); KV v2
 * reads `<mount>/data/<rest>`, anything else is read as written (database, AWS, PKI reads…).
 * The value is the secret's data as JSON text (for KV v2 the inner `data.data`), so `#field` and
 * `#/json/pointer` work through the core. Long form: `version` (KV v2).
 *
 * Config `backends.vault`: address, namespace, ca_cert, client_cert, client_key, skip_verify,
 * tls_server_name, timeout, auth {method: token | token_file | approle | aws, …}. Environment:
 * VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
 * VAULT_SKIP_VERIFY, VAULT_TLS_SERVER_NAME, VAULT_CLIENT_TIMEOUT. See docs/vault.md.
 *
 * Errors: 404 → not yet set; 403 → fatal, naming the path; 429, 412, 5xx (sealed, standby),
 * network → transient.
 * @packageDocumentation
 */
import type { Backend, BackendFactoryContext, Secret, SecretRef } from "../src/api/index.js";
import { FatalError, SecretNotFoundError, contentVersion, refKey, rejectUnknownOptions, safeError } from "../src/api/index.js";
import { TokenManager } from "./vault/auth.js";
import type { AwsCredentialSource } from "./vault/aws-iam.js";
import { checkVault } from "./vault/check.js";
import { VaultClient, encodePath, statusError, type VaultRequest, type VaultResponse } from "./vault/client.js";
import { parseVaultConfig } from "./vault/config.js";
import { LeaseTable } from "./vault/leases.js";
import { MountCache, mountFromPreflight, normalizePath, parseVersion, planRead, type MountInfo, type ReadPlan } from "./vault/mounts.js";

export { VAULT_CONFIG_KEYS, VAULT_AUTH_KEYS, parseVaultConfig, parseBool, type VaultSettings, type VaultAuthConfig } from "./vault/config.js";
export type { AwsCredentials, AwsCredentialSource } from "./vault/aws-iam.js";

/** How often a resolved secret without a lease is re-read. @defaultValue 5 minutes */
export const VAULT_DEFAULT_REFRESH_MS = 5 * 60_000;

/** Options a library caller or a test may pass besides the factory context. */
export interface VaultBackendOptions {
  /** Clock for lease and token arithmetic. @defaultValue Date.now */
  readonly now?: () => number;
  /** AWS credentials for `auth.method: aws`. @defaultValue env keys, then the AWS SDK chain */
  readonly awsCredentials?: AwsCredentialSource;
}

/** The vault backend, with a few read-only views for debugging and tests. */
export interface VaultBackend extends Backend {
  readonly name: "vault";
  /** The Vault address in use. */
  readonly address: string;
  /** The token keeper (never exposes the token in a property). */
  readonly tokens: TokenManager;
  /** Leased secrets currently held. */
  readonly leases: LeaseTable;
  /** Stops token renewal and frees the connections. Leases are not revoked. */
  close(): Promise<void>;
  validate(ref: SecretRef): void;
}

const OPTIONS = ["version"] as const;

/**
 * Builds the vault backend from the `backends.vault` config section and the environment. Nothing
 * is sent to Vault until the first fetch.
 * @throws {@link ConfigError} naming `backends.vault.<key>` (or the environment variable) for an unknown key or a bad value.
 */
export default function createVaultBackend(ctx: BackendFactoryContext, options: VaultBackendOptions = {}): VaultBackend {
  const settings = parseVaultConfig(ctx.config, ctx.env, ctx.configFile);
  const logger = ctx.logger;
  const now = options.now ?? Date.now;
  let tokens: TokenManager | undefined;
  const client = new VaultClient({ settings, redact: (s) => tokens!.redact(s) });
  tokens = new TokenManager({ client, auth: settings.auth, logger, env: ctx.env, now, ...(options.awsCredentials ? { awsCredentials: options.awsCredentials } : {}) });
  const tk = tokens;
  const leases = new LeaseTable(now);
  const mounts = new MountCache(now);

  logger.debug({ address: settings.address, namespace: settings.namespace ?? null, auth: settings.auth.method }, "vault backend configured");

  /** Sends a request with the token; on 403, lets the token keeper decide whether one retry with a new token is worth it. */
  async function authed(req: Omit<VaultRequest, "token">): Promise<{ res: VaultResponse; gen: number }> {
    let lease = await tk.getToken();
    let res = await client.request({ ...req, token: lease.token });
    if (res.status === 403 && (await tk.onForbidden(lease.gen))) {
      lease = await tk.getToken();
      res = await client.request({ ...req, token: lease.token });
    }
    // Vault checks the token before routing: a 200 or a 404 means the token is good.
    if (res.status === 200 || res.status === 204 || res.status === 404) tk.markWorked(lease.gen);
    return { res, gen: lease.gen };
  }

  /** Preflights in flight, by first path segment: paths under one mount wait for one answer. */
  const preflights = new Map<string, Promise<MountInfo>>();

  async function mountOf(path: string, refText: string, signal: AbortSignal, fresh = false): Promise<MountInfo> {
    // An operator's refresh (`fresh`) asks again: the mount may have moved or been upgraded.
    const cached = fresh ? undefined : mounts.find(path);
    if (cached) return cached;
    // 100 paths under `secret/` asked at once would make 100 preflights; ask once per first
    // segment and let the others use its answer when that mount covers them.
    const segment = path.split("/")[0]!;
    const pending = preflights.get(segment);
    if (pending) {
      await pending.catch(() => undefined);
      // That preflight answered after this fetch began, so it is fresh enough even for a refresh.
      const now = mounts.find(path);
      if (now) return now;
    }
    const own = preflight(path, refText, signal);
    if (!pending) {
      preflights.set(segment, own);
      void own.finally(() => preflights.get(segment) === own && preflights.delete(segment)).catch(() => undefined);
    }
    return own;
  }

  async function preflight(path: string, refText: string, signal: AbortSignal): Promise<MountInfo> {
    const apiPath = `sys/internal/ui/mounts/${encodePath(path)}`;
    const { res } = await authed({ method: "GET", path: apiPath, signal });
    let info: MountInfo;
    if (res.status === 200) info = mountFromPreflight(res.body?.data);
    // A Vault older than the preflight: read the path as written (the Vault CLI assumes KV v1).
    else if (res.status === 404) info = { path: "", type: "unknown", kvVersion: 1 };
    else if (res.status === 403) {
      throw Object.assign(new FatalError(`${refText}: permission denied for ${path} (no policy of the token grants access to it, or nothing is mounted there)`), { status: 403, path });
    } else throw statusError(res, `vault GET sys/internal/ui/mounts/${path}`, tk.redact);
    mounts.set(path, info);
    return info;
  }

  function toSecret(plan: ReadPlan, res: VaultResponse, refText: string): { secret: Secret; lease?: { leaseId: string; durationS: number; renewable: boolean } } {
    const body = res.body;
    let data: unknown;
    let version: string;
    if (plan.kvVersion === 2) {
      const d = (body?.data ?? null) as { data?: unknown; metadata?: { version?: unknown; created_time?: unknown } } | null;
      if (!d || d.data === null || d.data === undefined) throw new SecretNotFoundError(`${refText}: ${plan.label} has no data (deleted or destroyed)`);
      data = d.data;
      const v = d.metadata?.version;
      // The version number restarts at 1 when a secret's metadata is deleted and it is written
      // again; the creation time tells those apart.
      version = typeof v === "number" ? `kv2:${v}:${String(d.metadata?.created_time ?? "")}` : contentVersion(JSON.stringify(data));
    } else {
      data = body?.data;
      if (data === null || data === undefined) throw new SecretNotFoundError(`${refText}: ${plan.label} has no data`);
      version = contentVersion(JSON.stringify(data));
    }
    const value = typeof data === "string" ? data : JSON.stringify(data);
    const secret: Secret = { value, version, ...(typeof data === "object" ? { data } : {}) };
    const leaseId = typeof body?.lease_id === "string" ? body.lease_id : "";
    const durationS = typeof body?.lease_duration === "number" ? body.lease_duration : 0;
    if (leaseId !== "" && durationS > 0) return { secret, lease: { leaseId, durationS, renewable: body?.renewable === true } };
    return { secret };
  }

  async function read(ref: SecretRef, key: string, signal: AbortSignal, fresh: boolean): Promise<Secret> {
    const refText = `vault:${ref.id}`;
    const path = normalizePath(ref.id);
    const version = parseVersion(ref.id, ref.options.version);
    const mount = await mountOf(path, refText, signal, fresh);
    const plan = planRead(path, mount, version, refText);
    const { res, gen } = await authed({ method: "GET", path: plan.apiPath, query: plan.query, signal });
    if (res.status === 200) {
      const { secret, lease } = toSecret(plan, res, refText);
      leases.delete(key);
      return lease ? leases.record(key, secret, lease, gen) : secret;
    }
    if (res.status === 204) throw new SecretNotFoundError(`${refText}: ${plan.label} has no data`);
    if (res.status === 404) {
      const meta = (res.body?.data as { metadata?: { deletion_time?: unknown; destroyed?: unknown; version?: unknown } } | undefined)?.metadata;
      if (meta && (meta.destroyed === true || (typeof meta.deletion_time === "string" && meta.deletion_time !== ""))) {
        throw new SecretNotFoundError(`${refText}: version ${String(meta.version ?? "?")} of ${plan.label} is ${meta.destroyed === true ? "destroyed" : "deleted"}`);
      }
      throw new SecretNotFoundError(`${refText}: nothing at ${plan.label}${version !== undefined ? ` version ${version}` : ""}`);
    }
    if (res.status === 403) {
      mounts.forget(path);
      throw Object.assign(new FatalError(`${refText}: permission denied reading ${plan.label}`), { status: 403, path: plan.label });
    }
    throw statusError(res, `vault GET ${plan.label}`, tk.redact);
  }

  async function renewLease(key: string, leaseId: string, incrementS: number, signal: AbortSignal): Promise<Secret | undefined> {
    let res: VaultResponse;
    try {
      ({ res } = await authed({ method: "POST", path: "sys/leases/renew", body: { lease_id: leaseId, increment: incrementS }, signal }));
    } catch (err) {
      logger.warn({ err: safeError(err) }, "vault: lease renewal failed; will retry");
      const p = leases.renewFailed(key, false);
      return p.action === "cached" ? p.secret : undefined;
    }
    const duration = typeof res.body?.lease_duration === "number" ? res.body.lease_duration : undefined;
    if (res.status === 200 && duration !== undefined) {
      const p = leases.renewed(key, duration, res.body?.renewable === true);
      logger.debug({ leaseSeconds: duration, replacing: p.action !== "cached" }, p.action === "cached" ? "vault: lease renewed" : "vault: lease is near its max TTL; reading new credentials");
      return p.action === "cached" ? p.secret : undefined;
    }
    // 400 (lease not found / not renewable), 403, 404: the lease is gone; read new credentials.
    const permanent = res.status === 400 || res.status === 403 || res.status === 404;
    logger.warn({ status: res.status, permanent }, permanent ? "vault: lease cannot be renewed; reading new credentials" : "vault: lease renewal failed; will retry");
    const p = leases.renewFailed(key, permanent);
    return p.action === "cached" ? p.secret : undefined;
  }

  const backend: VaultBackend = {
    name: "vault",
    defaultRefreshMs: VAULT_DEFAULT_REFRESH_MS,
    address: settings.address,
    tokens: tk,
    leases,
    validate(ref) {
      rejectUnknownOptions(ref, OPTIONS);
      normalizePath(ref.id);
      parseVersion(ref.id, ref.options.version);
    },
    async fetch(ref, fctx) {
      rejectUnknownOptions(ref, OPTIONS);
      const key = refKey(ref);
      const { gen } = await tk.getToken();
      // `emissary refresh --reissue`: new credentials, not the held lease (which Vault revokes when it ends).
      if (fctx.reissue) leases.delete(key);
      const plan = leases.plan(key, gen);
      if (plan.action === "cached") return plan.secret;
      if (plan.action === "renew") {
        const renewed = await renewLease(key, plan.leaseId, plan.incrementS, fctx.signal);
        if (renewed) return renewed;
      }
      return read(ref, key, fctx.signal, fctx.fresh === true);
    },
    check(ref, cctx) {
      return checkVault({ address: settings.address, method: settings.auth.method, tokens: tk, authed, mountOf }, ref, cctx);
    },
    async close() {
      tk.close();
      client.close();
      leases.clear();
    },
  };
  return backend satisfies Backend;
}
