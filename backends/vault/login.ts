/**
 * Logging in: `POST auth/<mount>/login` for AppRole (ids from files or the config; a
 * response-wrapped secret_id is unwrapped once), AWS IAM (a signed `sts:GetCallerIdentity`), JWT
 * (`role` and the JWT file, re-read at each login: a Nomad workload identity is rotated) and TLS
 * certificates (the client certificate is the credential). The token keeper decides when; this
 * module only does it.
 */
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { FatalError, TransientError, readFailure, readRegularFile, type StateAccess } from "../../src/api/index.js";
import { awsIamLoginBody, defaultAwsCredentials, type AwsCredentialSource } from "./aws-iam.js";
import { vaultErrors, type VaultClient, type VaultResponse } from "./client.js";
import type { VaultAuthConfig } from "./config.js";

/** What a successful login gives. */
export interface LoginResult {
  readonly token: string;
  /** `auth.lease_duration`, seconds (0: does not expire); undefined when absent. */
  readonly ttlS?: number;
  readonly renewable: boolean;
}

/** What {@link login} needs. */
export interface LoginContext {
  readonly client: VaultClient;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly awsCredentials?: AwsCredentialSource;
  /** Scrubs known secrets from Vault's error strings. */
  readonly redact: (text: string) => string;
  /** Registers a secret read along the way (an AppRole id) so it is scrubbed from messages too. */
  readonly remember: (secret: string) => void;
  /** The client for `cert` logins (with the auth section's client certificate). @defaultValue client */
  readonly certClient?: VaultClient;
  /** The backend's state entries (the unwrapped secret_id). */
  readonly state?: StateAccess;
  /** The secret_id unwrapped earlier in this process, by the wrapping token's fingerprint. */
  readonly unwrapped: { fingerprint?: string; secretId?: string };
}

/** The methods that log in by themselves. */
export type LoginAuth = Extract<VaultAuthConfig, { method: "approle" | "aws" | "jwt" | "cert" }>;

/**
 * Logs in with AppRole or AWS IAM.
 * @throws {@link FatalError} for refused credentials (400/403) or an unreadable id file;
 *   {@link TransientError} for 412/429/5xx, network trouble, or an id file that is not there yet
 */
export async function login(auth: LoginAuth, ctx: LoginContext): Promise<LoginResult> {
  let body: unknown;
  let client = ctx.client;
  if (auth.method === "approle") {
    const roleId = auth.roleId ?? (await readIdFile(auth.roleIdFile!, "role_id_file", ctx));
    const secretId = auth.secretIdWrapped
      ? await unwrappedSecretId(auth.secretIdFile!, auth.mount, ctx)
      : (auth.secretId ?? (auth.secretIdFile ? await readIdFile(auth.secretIdFile, "secret_id_file", ctx) : undefined));
    body = { role_id: roleId, ...(secretId !== undefined ? { secret_id: secretId } : {}) };
  } else if (auth.method === "jwt") {
    body = { role: auth.role, jwt: await readIdFile(auth.jwtFile, "jwt_file", ctx) };
  } else if (auth.method === "cert") {
    client = ctx.certClient ?? ctx.client;
    body = auth.name ? { name: auth.name } : {};
  } else {
    body = await awsIamLoginBody({
      region: auth.region,
      stsEndpoint: auth.stsEndpoint,
      ...(auth.role ? { role: auth.role } : {}),
      ...(auth.headerValue ? { headerValue: auth.headerValue } : {}),
      credentials: ctx.awsCredentials ?? defaultAwsCredentials(ctx.env),
    });
  }
  const what = `vault ${auth.method} login at auth/${auth.mount}/login`;
  const res = await client.request({ method: "POST", path: `auth/${auth.mount}/login`, body });
  const a = res.body?.auth;
  const token = a && typeof a.client_token === "string" && a.client_token !== "" ? a.client_token : undefined;
  if (res.status !== 200 || !token) throw loginError(res, what, ctx.redact);
  ctx.remember(token);
  const ttl = a!.lease_duration;
  return { token, ...(typeof ttl === "number" && Number.isFinite(ttl) && ttl >= 0 ? { ttlS: ttl } : {}), renewable: a!.renewable === true };
}

function loginError(res: VaultResponse, what: string, redact: (s: string) => string): Error {
  if (res.status === 200) return new FatalError(`${what}: the response has no client token`);
  const detail = vaultErrors(res.body, redact);
  // A login method refuses bad credentials with 400; a bare 403 is Vault's answer for a login path
  // where no auth method is mounted (the request then needs a token it does not have).
  const hint = res.status === 403 && /^(permission denied)?$/.test(detail) ? " (is the auth method mounted there? check auth.mount)" : "";
  const msg = `${what} failed: ${res.status}${detail ? " " + detail : ""}${hint}`;
  if (res.status === 412 || res.status === 429 || res.status >= 500) return new TransientError(msg, res.retryAfterMs !== undefined ? { retryAfterMs: res.retryAfterMs } : {});
  return Object.assign(new FatalError(msg), { status: res.status });
}

async function readIdFile(path: string, key: string, ctx: LoginContext): Promise<string> {
  let text: string;
  try {
    text = (await readRegularFile(path, { maxBytes: TOKEN_FILE_MAX })).toString("utf8").trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    // A provisioning step may write it after emissary starts: keep retrying with backoff.
    if (code === "ENOENT") throw new TransientError(`vault login: ${key} ${path} does not exist yet`);
    throw new FatalError(`vault login: cannot read ${key} ${path} (${readFailure(err)})`);
  }
  if (text === "") throw new TransientError(`vault login: ${key} ${path} is empty`);
  ctx.remember(text);
  return text;
}

/** The state entry of an unwrapped secret_id. */
interface KeptSecretId {
  /** Fingerprint of the wrapping token it came from (never the token). */
  readonly wrapping: string;
  readonly secretId: string;
}

/** The state entry name of the unwrapped secret_id of an AppRole mount. */
export function secretIdEntry(mount: string): string {
  return `approle-secret-id/${mount}`;
}

/**
 * `secret_id_wrapped`: the secret_id behind the response-wrapped token in `file`. A wrapping token
 * works once, so the secret_id it gave is kept (in memory and in the state directory) and used for
 * every later login, across restarts; a new token in the file is unwrapped again.
 */
async function unwrappedSecretId(file: string, mount: string, ctx: LoginContext): Promise<string> {
  const wrapToken = await readIdFile(file, "secret_id_file", ctx);
  const fingerprint = createHash("sha256").update(wrapToken).digest("hex").slice(0, 16);
  if (ctx.unwrapped.fingerprint === fingerprint && ctx.unwrapped.secretId) return ctx.unwrapped.secretId;
  const kept = (await ctx.state?.get(secretIdEntry(mount))) as Partial<KeptSecretId> | undefined;
  if (kept && kept.wrapping === fingerprint && typeof kept.secretId === "string" && kept.secretId !== "") {
    ctx.remember(kept.secretId);
    Object.assign(ctx.unwrapped, { fingerprint, secretId: kept.secretId });
    return kept.secretId;
  }
  const what = "vault approle: unwrapping the secret_id in secret_id_file at sys/wrapping/unwrap";
  const res = await ctx.client.request({ method: "POST", path: "sys/wrapping/unwrap", token: wrapToken });
  const secretId = (res.body?.data as { secret_id?: unknown } | undefined)?.secret_id;
  if (res.status !== 200 || typeof secretId !== "string" || secretId === "") {
    if (res.status === 200) throw new FatalError(`${what}: the wrapped response has no secret_id`);
    const e = loginError(res, what, ctx.redact);
    if (e instanceof FatalError) {
      throw new FatalError(`${e.message}; a wrapping token works once: put a new one in ${file}${ctx.state?.enabled ? "" : " (with the state directory off, every restart needs one)"}`);
    }
    throw e;
  }
  ctx.remember(secretId);
  Object.assign(ctx.unwrapped, { fingerprint, secretId });
  await ctx.state?.set(secretIdEntry(mount), { wrapping: fingerprint, secretId } satisfies KeptSecretId);
  return secretId;
}

/** Largest token or id file read (a Vault token is ~100 bytes; a JWT a few KiB). */
const TOKEN_FILE_MAX = 64 * 1024;

/**
 * A token file's identity (inode, size, mtime: it changes when the file is rewritten) and a
 * reader for its trimmed content, for the `token_file` method (a Vault Agent sink).
 */
export async function tokenFileId(path: string): Promise<{ id: string; read: () => Promise<string> }> {
  let id: string;
  try {
    const st = await stat(path);
    id = `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    if (code === "ENOENT") throw new TransientError(`vault: token file ${path} does not exist yet`);
    throw new FatalError(`vault: cannot read token file ${path} (${code})`);
  }
  const read = async (): Promise<string> => {
    try {
      return (await readRegularFile(path, { maxBytes: TOKEN_FILE_MAX })).toString("utf8").trim();
    } catch (err) {
      throw new FatalError(`vault: cannot read token file ${path} (${readFailure(err)})`);
    }
  };
  return { id, read };
}
