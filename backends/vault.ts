/**
 * The `vault` backend: HashiCorp Vault (and OpenBao), over its HTTP API.
 *
 * References: `vault:secret/nomad` — a path as `vault kv get` takes it. The mount and its KV
 * version come from the preflight `sys/internal/ui/mounts/<path>` (as the Vault CLI does); KV v2
 * reads `<mount>/data/<rest>`, anything else is read as written (database, AWS, PKI reads…).
 * The value is the secret's data as JSON text (for KV v2 the inner `data.data`), so `#field` and
 * `#/json/pointer` work through the core. Long form: `version` (KV v2). A response that is not
 * JSON (`pki/ca/pem`, `pki/crl/pem`, `pki/ca_chain`) is the value as text.
 *
 * Writes: long-form `params` make the reference a `POST` of them (backends/vault/write.ts):
 * certificates (`pki/issue`, `pki/sign`, `private_key: local`) are held until `renew_at` of their
 * validity and kept in the state directory; leased results go through the lease table.
 *
 * Config `backends.vault`: address, namespace, ca_cert, client_cert, client_key, skip_verify,
 * tls_server_name, timeout, auth {method: token | token_file | approle | aws | jwt | cert, …}. Environment:
 * VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
 * VAULT_SKIP_VERIFY, VAULT_TLS_SERVER_NAME, VAULT_CLIENT_TIMEOUT. See docs/vault.md.
 *
 * Errors: 404 → not yet set; 403 → fatal, naming the path; 429, 412, 5xx (sealed, standby),
 * network → transient. With `auth.method: token_file`, the token file is re-read every 2s (30s
 * after a minute under one token) while a reference is refused (403), and refused references are fetched again when it holds a new token
 * (backends/vault/refused.ts). Vault's `warnings` are logged once per reference and text
 * (backends/vault/warnings.ts).
 * @packageDocumentation
 */
import type { Backend, BackendFactoryContext, SecretRef } from "../src/api/index.js";
import { classifyError, refKey, rejectUnknownOptions } from "../src/api/index.js";
import { TokenManager } from "./vault/auth.js";
import type { AwsCredentialSource } from "./vault/aws-iam.js";
import { checkVault } from "./vault/check.js";
import { VaultClient } from "./vault/client.js";
import { parseVaultConfig } from "./vault/config.js";
import { LeaseTable } from "./vault/leases.js";
import { normalizePath, parseVersion } from "./vault/mounts.js";
import { LeasedFetcher, readSecret } from "./vault/read.js";
import { RefusedRecheck } from "./vault/refused.js";
import { VaultSession } from "./vault/session.js";
import { Issuer, WRITE_OPTIONS, validateWrite } from "./vault/write.js";

export { VAULT_CONFIG_KEYS, VAULT_AUTH_KEYS, parseVaultConfig, parseBool, type VaultSettings, type VaultAuthConfig } from "./vault/config.js";
export type { AwsCredentials, AwsCredentialSource } from "./vault/aws-iam.js";

/** How often a resolved secret without a lease is re-read. @defaultValue 5 minutes */
export const VAULT_DEFAULT_REFRESH_MS = 5 * 60_000;

/** Options a library caller or a test may pass besides the factory context. */
export interface VaultBackendOptions {
  /** Clock for lease, token and certificate arithmetic. @defaultValue Date.now */
  readonly now?: () => number;
  /** AWS credentials for `auth.method: aws`. @defaultValue env keys, then the AWS SDK chain */
  readonly awsCredentials?: AwsCredentialSource;
  /** Randomness of the certificate renewal jitter (tests). @defaultValue Math.random */
  readonly random?: () => number;
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
  /** Issued certificates currently held. */
  readonly issued: Issuer;
  /** `token_file` only: the references refused (403) and the token file re-check while there are any. */
  readonly refused?: RefusedRecheck;
  /** Stops token renewal and frees the connections. Leases are not revoked. */
  close(): Promise<void>;
  validate(ref: SecretRef): void;
}

const READ_OPTIONS = ["version"] as const;

function check(ref: SecretRef): void {
  if (ref.params !== undefined) {
    rejectUnknownOptions(ref, WRITE_OPTIONS);
    validateWrite(ref);
    return;
  }
  rejectUnknownOptions(ref, READ_OPTIONS);
  normalizePath(ref.id);
  parseVersion(ref.id, ref.options.version);
}

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
  tokens = new TokenManager({
    client,
    settings,
    auth: settings.auth,
    logger,
    env: ctx.env,
    now,
    ...(ctx.state ? { state: ctx.state } : {}),
    ...(options.awsCredentials ? { awsCredentials: options.awsCredentials } : {}),
  });
  const tk = tokens;
  const leases = new LeaseTable(now);
  const session = new VaultSession({ client, tokens: tk, leases, logger, now });
  const leased = new LeasedFetcher(session);
  const issuer = new Issuer(session, leased, options.random);
  // A Vault Agent's sink: a 403 may be a stale token the agent is about to replace.
  const refused =
    settings.auth.method === "token_file"
      ? new RefusedRecheck({ recheck: async () => void (await tk.onForbidden(tk.generation)), generation: () => tk.generation, logger })
      : undefined;

  logger.debug({ address: settings.address, namespace: settings.namespace ?? null, auth: settings.auth.method }, "vault backend configured");

  const backend: VaultBackend = {
    name: "vault",
    defaultRefreshMs: VAULT_DEFAULT_REFRESH_MS,
    address: settings.address,
    tokens: tk,
    leases,
    issued: issuer,
    ...(refused ? { refused } : {}),
    validate: check,
    async fetch(ref, fctx) {
      check(ref);
      const key = refKey(ref);
      if (!refused) return ref.params !== undefined ? issuer.fetch(ref, key, fctx) : readSecret(session, leased, ref, key, fctx);
      try {
        const secret = ref.params !== undefined ? await issuer.fetch(ref, key, fctx) : await readSecret(session, leased, ref, key, fctx);
        refused.resolved(key);
        return secret;
      } catch (err) {
        const status = (err as { status?: unknown } | null)?.status;
        if (status === 403) refused.refused(key);
        else if (classifyError(err) === "not_found") refused.resolved(key);
        throw err;
      }
    },
    // Only for a token file: the core is told to fetch a refused reference again when the file has a new token.
    ...(refused ? { watch: (ref: SecretRef, onChange: () => void) => refused.watch(refKey(ref), onChange) } : {}),
    check(ref, cctx) {
      return checkVault(
        { address: settings.address, method: settings.auth.method, tokens: tk, authed: (req) => session.authed(req), mountOf: (path, refText, signal) => session.mountOf(path, refText, signal) },
        ref,
        cctx,
      );
    },
    async close() {
      refused?.close();
      tk.close();
      client.close();
      session.warnings.clear();
      leases.clear();
      issuer.clear();
      leased.reset();
    },
  };
  return backend satisfies Backend;
}
