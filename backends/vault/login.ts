/**
 * Logging in: `POST auth/<mount>/login` for AppRole (ids from files or the config) and AWS IAM
 * (a signed `sts:GetCallerIdentity`). The token keeper decides when; this module only does it.
 */
import { readFile } from "node:fs/promises";
import { FatalError, TransientError } from "../../src/index.js";
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
    text = (await readFile(path, "utf8")).trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    // A provisioning step may write it after emissary starts: keep retrying with backoff.
    if (code === "ENOENT") throw new TransientError(`vault approle: ${key} ${path} does not exist yet`);
    throw new FatalError(`vault approle: cannot read ${key} ${path} (${code})`);
  }
  if (text === "") throw new TransientError(`vault approle: ${key} ${path} is empty`);
  ctx.remember(text);
  return text;
}
