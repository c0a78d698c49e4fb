/**
 * Logging in: `POST auth/<mount>/login` for AppRole (ids from files or the config) and AWS IAM
 * (a signed `sts:GetCallerIdentity`). The token keeper decides when; this module only does it.
 */
import { stat } from "node:fs/promises";
import { FatalError, TransientError, readFailure, readRegularFile } from "../../src/api/index.js";
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
}

type LoginAuth = Extract<VaultAuthConfig, { method: "approle" | "aws" }>;

/**
 * Logs in with AppRole or AWS IAM.
 * @throws {@link FatalError} for refused credentials (400/403) or an unreadable id file;
 *   {@link TransientError} for 412/429/5xx, network trouble, or an id file that is not there yet
 */
export async function login(auth: LoginAuth, ctx: LoginContext): Promise<LoginResult> {
  let body: unknown;
  if (auth.method === "approle") {
    const roleId = auth.roleId ?? (await readIdFile(auth.roleIdFile!, "role_id_file", ctx));
    const secretId = auth.secretId ?? (auth.secretIdFile ? await readIdFile(auth.secretIdFile, "secret_id_file", ctx) : undefined);
    body = { role_id: roleId, ...(secretId !== undefined ? { secret_id: secretId } : {}) };
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
  const res = await ctx.client.request({ method: "POST", path: `auth/${auth.mount}/login`, body });
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
  const msg = `${what} failed: ${res.status}${detail ? " " + detail : ""}`;
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
    if (code === "ENOENT") throw new TransientError(`vault approle: ${key} ${path} does not exist yet`);
    throw new FatalError(`vault approle: cannot read ${key} ${path} (${readFailure(err)})`);
  }
  if (text === "") throw new TransientError(`vault approle: ${key} ${path} is empty`);
  ctx.remember(text);
  return text;
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
