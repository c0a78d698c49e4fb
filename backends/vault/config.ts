/**
 * The `backends.vault` config section and the standard Vault environment variables.
 *
 * Precedence follows emissary's rule (flag > env > config file > default), which is also Vault
 * Agent's: `VAULT_ADDR` overrides `address`, `VAULT_NAMESPACE` overrides `namespace`, and so on.
 * Files named here (CA, client certificate, token file, AppRole ids) are only read when they are
 * needed, so they may appear after emissary starts.
 */
import { ConfigError, rejectUnknownKeys, toMs } from "../../src/api/index.js";

/** How emissary logs in to Vault. */
export type VaultAuthConfig =
  | {
      readonly method: "token";
      /** A token from the config file. `VAULT_TOKEN` wins over it. */
      readonly token?: string;
      /** Where the token came from, for messages (never the token itself). */
      readonly source: "VAULT_TOKEN" | "config" | "none";
      /** Renew the token at 2/3 of its TTL. @defaultValue true */
      readonly renew: boolean;
    }
  | {
      readonly method: "token_file";
      /** A file holding the token (a Vault Agent sink); re-read whenever it changes. */
      readonly path: string;
      /** Renew the token (Vault Agent renews its sink token itself). @defaultValue false */
      readonly renew: boolean;
    }
  | {
      readonly method: "approle";
      /** Where the AppRole auth method is mounted. @defaultValue "approle" */
      readonly mount: string;
      readonly roleId?: string;
      readonly roleIdFile?: string;
      readonly secretId?: string;
      readonly secretIdFile?: string;
      /**
       * `secret_id_file` holds a response-wrapped token: it is unwrapped once (`sys/wrapping/unwrap`)
       * and the secret_id it gave is kept in the state directory. @defaultValue false
       */
      readonly secretIdWrapped: boolean;
      /** @defaultValue true */
      readonly renew: boolean;
    }
  | {
      readonly method: "jwt";
      /** Where the JWT/OIDC auth method is mounted. @defaultValue "jwt" */
      readonly mount: string;
      /** The Vault role to log in as. */
      readonly role: string;
      /** A file holding the JWT (a Nomad workload identity, a Kubernetes token…); re-read at each login. */
      readonly jwtFile: string;
      /** @defaultValue true */
      readonly renew: boolean;
    }
  | {
      readonly method: "cert";
      /** Where the TLS certificate auth method is mounted. @defaultValue "cert" */
      readonly mount: string;
      /** The certificate role to log in against; Vault tries every role when unset. */
      readonly name?: string;
      /** Client certificate and key for the login, when they differ from `backends.vault.client_cert`/`client_key`. */
      readonly clientCert?: string;
      readonly clientKey?: string;
      /** @defaultValue true */
      readonly renew: boolean;
    }
  | {
      readonly method: "aws";
      /** Where the AWS auth method is mounted. @defaultValue "aws" */
      readonly mount: string;
      /** The Vault role; Vault defaults it to the IAM principal's name. */
      readonly role?: string;
      /** Region whose STS endpoint is signed for. @defaultValue "us-east-1" (the global endpoint) */
      readonly region: string;
      /** The STS URL that is signed. @defaultValue https://sts.amazonaws.com/ (or the regional one) */
      readonly stsEndpoint: string;
      /** Value of `X-Vault-AWS-IAM-Server-ID`, when the Vault mount requires it. */
      readonly headerValue?: string;
      /** @defaultValue true */
      readonly renew: boolean;
    };

/** Validated settings of the vault backend. */
export interface VaultSettings {
  /** Base URL, without a trailing slash. @defaultValue https://127.0.0.1:8200 (as the Vault CLI) */
  readonly address: string;
  /** Enterprise / HCP namespace sent as `X-Vault-Namespace`. */
  readonly namespace?: string;
  /** PEM file of the CA(s) to trust instead of the system ones. */
  readonly caCert?: string;
  /** PEM client certificate and key, for TLS client authentication. */
  readonly clientCert?: string;
  readonly clientKey?: string;
  /** Skip TLS verification. Only `true`/`1`/`t` mean skip; `"false"` means verify. @defaultValue false */
  readonly skipVerify: boolean;
  /** SNI / certificate name to expect, when it differs from the address's host. */
  readonly tlsServerName?: string;
  /** Deadline of one HTTP request. @defaultValue 30 000 ms */
  readonly timeoutMs: number;
  readonly auth: VaultAuthConfig;
}

/** Keys accepted in `backends.vault`. `refresh` belongs to the core. */
export const VAULT_CONFIG_KEYS = ["address", "namespace", "ca_cert", "client_cert", "client_key", "skip_verify", "tls_server_name", "timeout", "auth", "refresh"] as const;

/** Keys accepted in `backends.vault.auth`, per method. */
export const VAULT_AUTH_KEYS: Readonly<Record<VaultAuthConfig["method"], readonly string[]>> = {
  token: ["method", "token", "renew"],
  token_file: ["method", "path", "renew"],
  approle: ["method", "mount", "role_id", "role_id_file", "secret_id", "secret_id_file", "secret_id_wrapped", "renew"],
  aws: ["method", "mount", "role", "region", "sts_endpoint", "header_value", "renew"],
  jwt: ["method", "mount", "role", "jwt_file", "renew"],
  cert: ["method", "mount", "name", "client_cert", "client_key", "renew"],
};

/** @defaultValue 30 000 */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** The Vault CLI's default address. */
export const DEFAULT_ADDRESS = "https://127.0.0.1:8200";

type Env = Readonly<Record<string, string | undefined>>;
type Section = Readonly<Record<string, unknown>>;

function fail(field: string, reason: string, file?: string): never {
  const where = field.startsWith("VAULT_") || field.startsWith("AWS_") ? field : `backends.vault${field ? "." + field : ""}`;
  throw new ConfigError(`${file && !field.startsWith("VAULT_") ? file + ": " : ""}${where}: ${reason}`, { field: where, ...(file ? { file } : {}) });
}

function str(cfg: Section, key: string, prefix: string, file?: string): string | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v.trim() === "") fail(prefix + key, "must be a non-empty string", file);
  return v.trim();
}

function envStr(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

/**
 * Parses a boolean the way Go's `strconv.ParseBool` does (the Vault CLI reads `VAULT_SKIP_VERIFY`
 * with it): `1 t true` are true, `0 f false` are false, case-insensitively. Unlike node-vault,
 * `"false"` is false.
 * @returns undefined for anything else
 */
export function parseBool(v: string | boolean): boolean | undefined {
  if (typeof v === "boolean") return v;
  const s = v.trim().toLowerCase();
  if (s === "1" || s === "t" || s === "true") return true;
  if (s === "0" || s === "f" || s === "false") return false;
  return undefined;
}

function bool(cfg: Section, key: string, prefix: string, file?: string): boolean | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  const b = typeof v === "boolean" || typeof v === "string" ? parseBool(v) : undefined;
  if (b === undefined) fail(prefix + key, "must be true or false", file);
  return b;
}

function checkAddress(url: string, field: string, file?: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    fail(field, "is not a URL (expected e.g. https://vault.example.com:8200)", file);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") fail(field, `must be an http or https URL, not ${u.protocol}`, file);
  if (u.username || u.password) fail(field, "must not contain credentials", file);
  if (u.search || u.hash) fail(field, "must not contain a query or fragment", file);
  return u.href.replace(/\/+$/, "");
}

function mountName(cfg: Section, def: string, file?: string): string {
  const m = str(cfg, "mount", "auth.", file) ?? def;
  const clean = m.replace(/^\/+|\/+$/g, "");
  if (clean === "" || clean.split("/").some((s) => s === "" || s === "." || s === "..")) fail("auth.mount", `"${m}" is not a mount path`, file);
  return clean;
}

function parseAuth(raw: unknown, env: Env, file?: string): VaultAuthConfig {
  if (raw === undefined || raw === null) {
    const token = envStr(env, "VAULT_TOKEN");
    return { method: "token", ...(token ? { token } : {}), source: token ? "VAULT_TOKEN" : "none", renew: true };
  }
  if (typeof raw !== "object" || Array.isArray(raw)) fail("auth", "must be a mapping with a method (token, token_file, approle, aws, jwt or cert)", file);
  const cfg = raw as Section;
  const method = cfg.method;
  if (typeof method !== "string" || !(method in VAULT_AUTH_KEYS)) {
    fail("auth.method", `must be one of ${Object.keys(VAULT_AUTH_KEYS).join(", ")}`, file);
  }
  const allowed = VAULT_AUTH_KEYS[method as VaultAuthConfig["method"]];
  for (const key of Object.keys(cfg)) {
    if (!allowed.includes(key)) fail(`auth.${key}`, `unknown key for auth method ${method} (known keys: ${allowed.join(", ")})`, file);
  }
  const renew = bool(cfg, "renew", "auth.", file);
  switch (method) {
    case "token": {
      const fromEnv = envStr(env, "VAULT_TOKEN");
      const fromCfg = str(cfg, "token", "auth.", file);
      const token = fromEnv ?? fromCfg;
      return { method, ...(token ? { token } : {}), source: fromEnv ? "VAULT_TOKEN" : fromCfg ? "config" : "none", renew: renew ?? true };
    }
    case "token_file": {
      const path = str(cfg, "path", "auth.", file);
      if (!path) fail("auth.path", "is required for auth method token_file", file);
      return { method, path, renew: renew ?? false };
    }
    case "approle": {
      const roleId = str(cfg, "role_id", "auth.", file);
      const roleIdFile = str(cfg, "role_id_file", "auth.", file);
      const secretId = str(cfg, "secret_id", "auth.", file);
      const secretIdFile = str(cfg, "secret_id_file", "auth.", file);
      if (!roleId && !roleIdFile) fail("auth.role_id_file", "is required for auth method approle (or role_id)", file);
      if (roleId && roleIdFile) fail("auth.role_id", "give role_id or role_id_file, not both", file);
      if (secretId && secretIdFile) fail("auth.secret_id", "give secret_id or secret_id_file, not both", file);
      const secretIdWrapped = bool(cfg, "secret_id_wrapped", "auth.", file) ?? false;
      if (secretIdWrapped && !secretIdFile) fail("auth.secret_id_wrapped", "needs secret_id_file (the file holding the response-wrapped token)", file);
      return {
        method,
        mount: mountName(cfg, "approle", file),
        ...(roleId ? { roleId } : {}),
        ...(roleIdFile ? { roleIdFile } : {}),
        ...(secretId ? { secretId } : {}),
        ...(secretIdFile ? { secretIdFile } : {}),
        secretIdWrapped,
        renew: renew ?? true,
      };
    }
    case "jwt": {
      const role = str(cfg, "role", "auth.", file);
      if (!role) fail("auth.role", "is required for auth method jwt (the Vault role to log in as)", file);
      const jwtFile = str(cfg, "jwt_file", "auth.", file);
      if (!jwtFile) fail("auth.jwt_file", "is required for auth method jwt (e.g. a Nomad workload identity file)", file);
      return { method, mount: mountName(cfg, "jwt", file), role, jwtFile, renew: renew ?? true };
    }
    case "cert": {
      const name = str(cfg, "name", "auth.", file);
      const clientCert = str(cfg, "client_cert", "auth.", file);
      const clientKey = str(cfg, "client_key", "auth.", file);
      if ((clientCert === undefined) !== (clientKey === undefined)) fail(clientCert ? "auth.client_key" : "auth.client_cert", "client_cert and client_key go together", file);
      return { method, mount: mountName(cfg, "cert", file), ...(name ? { name } : {}), ...(clientCert ? { clientCert, clientKey: clientKey! } : {}), renew: renew ?? true };
    }
    default: {
      const region = str(cfg, "region", "auth.", file) ?? "us-east-1";
      if (!/^[a-z0-9-]{2,32}$/.test(region)) fail("auth.region", `"${region}" is not an AWS region`, file);
      const endpoint = str(cfg, "sts_endpoint", "auth.", file);
      const stsEndpoint = endpoint
        ? checkAddress(endpoint, "auth.sts_endpoint", file) + "/"
        : region === "us-east-1"
          ? "https://sts.amazonaws.com/"
          : `https://sts.${region}.amazonaws.com/`;
      const role = str(cfg, "role", "auth.", file);
      const headerValue = str(cfg, "header_value", "auth.", file);
      return { method: "aws", mount: mountName(cfg, "aws", file), ...(role ? { role } : {}), region, stsEndpoint, ...(headerValue ? { headerValue } : {}), renew: renew ?? true };
    }
  }
}

/**
 * Validates the `backends.vault` section and merges in the standard environment variables:
 * `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_CLIENT_CERT`,
 * `VAULT_CLIENT_KEY`, `VAULT_SKIP_VERIFY`, `VAULT_TLS_SERVER_NAME`, `VAULT_CLIENT_TIMEOUT`.
 * @throws {@link ConfigError} naming `backends.vault.<key>` (or the variable) for an unknown key or a bad value.
 */
export function parseVaultConfig(cfg: Section, env: Env, file?: string): VaultSettings {
  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) fail("", "must be a mapping", file);
  rejectUnknownKeys("vault", cfg, VAULT_CONFIG_KEYS, file);

  const envAddr = envStr(env, "VAULT_ADDR");
  const address = envAddr ? checkAddress(envAddr, "VAULT_ADDR") : checkAddress(str(cfg, "address", "", file) ?? DEFAULT_ADDRESS, "address", file);

  const namespace = (envStr(env, "VAULT_NAMESPACE") ?? str(cfg, "namespace", "", file))?.replace(/^\/+|\/+$/g, "");

  let skipVerify = bool(cfg, "skip_verify", "", file) ?? false;
  const envSkip = envStr(env, "VAULT_SKIP_VERIFY");
  if (envSkip !== undefined) {
    const b = parseBool(envSkip);
    if (b === undefined) fail("VAULT_SKIP_VERIFY", `"${envSkip}" is not a boolean (true/false, 1/0)`);
    skipVerify = b;
  }

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  const envTimeout = envStr(env, "VAULT_CLIENT_TIMEOUT");
  const rawTimeout = envTimeout ?? cfg.timeout;
  if (rawTimeout !== undefined && rawTimeout !== null) {
    const field = envTimeout ? "VAULT_CLIENT_TIMEOUT" : "timeout";
    try {
      // VAULT_CLIENT_TIMEOUT is a number of seconds or a Go duration, as in the Vault CLI.
      timeoutMs = typeof rawTimeout === "string" && /^\d+$/.test(rawTimeout.trim()) ? Number(rawTimeout.trim()) * 1000 : toMs(rawTimeout as string | number);
    } catch (err) {
      fail(field, (err as Error).message, file);
    }
    if (!(timeoutMs > 0)) fail(field, "must be greater than zero", file);
  }

  const caCert = envStr(env, "VAULT_CACERT") ?? str(cfg, "ca_cert", "", file);
  const clientCert = envStr(env, "VAULT_CLIENT_CERT") ?? str(cfg, "client_cert", "", file);
  const clientKey = envStr(env, "VAULT_CLIENT_KEY") ?? str(cfg, "client_key", "", file);
  if ((clientCert === undefined) !== (clientKey === undefined)) fail(clientCert ? "client_key" : "client_cert", "client_cert and client_key go together", file);
  const tlsServerName = envStr(env, "VAULT_TLS_SERVER_NAME") ?? str(cfg, "tls_server_name", "", file);

  const auth = parseAuth(cfg.auth, env, file);
  if (auth.method === "cert") {
    if (!address.startsWith("https:")) fail("auth.method", "cert logs in with a TLS client certificate: the address must be https", file);
    if (!auth.clientCert && !clientCert) fail("auth.client_cert", "is required for auth method cert (here, or backends.vault.client_cert / VAULT_CLIENT_CERT)", file);
  }

  return Object.freeze({
    address,
    ...(namespace ? { namespace } : {}),
    ...(caCert ? { caCert } : {}),
    ...(clientCert ? { clientCert } : {}),
    ...(clientKey ? { clientKey } : {}),
    skipVerify,
    ...(tlsServerName ? { tlsServerName } : {}),
    timeoutMs,
    auth: Object.freeze(auth),
  });
}
