/**
 * Auth engines of the fake Vault: AppRole and AWS IAM (JWT and TLS certificates are in
 * vault-auth-jwt-cert.ts). Response shapes follow Vault's API docs
 * (api-docs/auth/approle "Login with AppRole", api-docs/auth/aws "Login"): a login answers 200
 * with an `auth` block (client_token, accessor, policies, token_policies, metadata,
 * lease_duration, renewable, entity_id, token_type, orphan) and `data: null`; bad credentials
 * answer 400 with `{"errors": [...]}`.
 *
 * The AWS engine does what Vault does with the signed request as far as it can without AWS: it
 * decodes the four base64 fields, checks the method, URL, body and the server-ID header, and
 * verifies the SigV4 signature against the secret key it was given for the access key — the
 * check STS would make.
 */
import { randomUUID } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

/** An AppRole role. */
export interface FakeAppRole {
  readonly mount: string;
  readonly roleName: string;
  readonly roleId: string;
  /** The role's fixed secret ID. Undefined (and no generated ones): bind_secret_id = false. */
  secretId?: string;
  /** bind_secret_id. @defaultValue true when the role has a secret ID (fixed or generated) */
  readonly bindSecretId?: boolean;
  /** Remaining logins with the secret id (undefined: unlimited). */
  secretIdUses?: number;
  /**
   * More secret IDs, made by `POST auth/<mount>/role/<name>/secret-id` (or
   * {@link generateSecretId}); each with its own uses and expiry.
   */
  readonly extraSecretIds?: Map<string, FakeSecretId>;
  readonly policies: readonly string[];
  readonly tokenTtl: number;
  readonly tokenMaxTtl?: number;
  readonly renewable: boolean;
}

/** A generated AppRole secret ID. */
export interface FakeSecretId {
  readonly accessor: string;
  /** Remaining uses (undefined: unlimited). */
  uses?: number;
  /** Epoch ms after which it is invalid (undefined: never). */
  readonly expiresAt?: number;
}

/**
 * Generates a secret ID for a role, as `POST auth/<mount>/role/<name>/secret-id` does; returns
 * Vault's response `data` (`secret_id`, `secret_id_accessor`, `secret_id_ttl`, `secret_id_num_uses`).
 */
export function generateSecretId(role: FakeAppRole, opts: { ttl?: number; numUses?: number; now: number }): { secret_id: string; secret_id_accessor: string; secret_id_ttl: number; secret_id_num_uses: number } {
  if (!role.extraSecretIds) throw new Error("fake vault: this AppRole was not made by addAppRole");
  const secretId = randomUUID();
  const accessor = randomUUID();
  role.extraSecretIds.set(secretId, {
    accessor,
    ...(opts.numUses ? { uses: opts.numUses } : {}),
    ...(opts.ttl ? { expiresAt: opts.now + opts.ttl * 1000 } : {}),
  });
  return { secret_id: secretId, secret_id_accessor: accessor, secret_id_ttl: opts.ttl ?? 0, secret_id_num_uses: opts.numUses ?? 0 };
}

/** An AWS IAM principal Vault will accept. */
export interface FakeAwsRole {
  readonly mount: string;
  readonly role: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly arn: string;
  readonly policies: readonly string[];
  readonly tokenTtl: number;
  readonly renewable: boolean;
  /** Required `X-Vault-AWS-IAM-Server-ID`, signed. */
  readonly serverId?: string;
  /** The STS URL Vault is configured to use. @defaultValue https://sts.amazonaws.com/ */
  readonly stsEndpoint?: string;
}

/** What a successful login yields; the server turns it into a token. */
export interface LoginGrant {
  readonly policies: readonly string[];
  readonly ttl: number;
  readonly maxTtl?: number;
  readonly renewable: boolean;
  readonly metadata: Record<string, string>;
  readonly path: string;
}

/** A login failure: status and Vault's error strings. */
export interface LoginFailure {
  readonly status: number;
  readonly errors: string[];
}

/** `POST auth/<mount>/login` of an AppRole mount. */
export function appRoleLogin(roles: readonly FakeAppRole[], mount: string, body: Record<string, unknown>, now = Date.now()): LoginGrant | LoginFailure {
  const roleId = body.role_id;
  if (typeof roleId !== "string" || roleId === "") return { status: 400, errors: ["missing role_id"] };
  const role = roles.find((r) => r.mount === mount && r.roleId === roleId);
  if (!role) return { status: 400, errors: ["invalid role or secret ID"] };
  if (role.bindSecretId ?? (role.secretId !== undefined || (role.extraSecretIds?.size ?? 0) > 0)) {
    if (typeof body.secret_id !== "string" || body.secret_id === "") return { status: 400, errors: ["missing secret_id"] };
    const extra = role.extraSecretIds?.get(body.secret_id);
    if (extra) {
      if ((extra.uses !== undefined && extra.uses <= 0) || (extra.expiresAt !== undefined && now >= extra.expiresAt)) return { status: 400, errors: ["invalid role or secret ID"] };
      if (extra.uses !== undefined) extra.uses--;
    } else {
      if (body.secret_id !== role.secretId) return { status: 400, errors: ["invalid role or secret ID"] };
      if (role.secretIdUses !== undefined) {
        if (role.secretIdUses <= 0) return { status: 400, errors: ["invalid role or secret ID"] };
        role.secretIdUses--;
      }
    }
  }
  return {
    policies: role.policies,
    ttl: role.tokenTtl,
    ...(role.tokenMaxTtl !== undefined ? { maxTtl: role.tokenMaxTtl } : {}),
    renewable: role.renewable,
    metadata: { role_name: role.roleName },
    path: `auth/${mount}/login`,
  };
}

function b64decode(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? Buffer.from(v, "base64").toString("utf8") : undefined;
}

/** `POST auth/<mount>/login` of an AWS mount, IAM type. */
export async function awsLogin(roles: readonly FakeAwsRole[], mount: string, body: Record<string, unknown>): Promise<LoginGrant | LoginFailure> {
  if (body.iam_http_request_method !== "POST") return { status: 400, errors: ["invalid iam_http_request_method; currently only 'POST' is supported"] };
  const url = b64decode(body.iam_request_url);
  const reqBody = b64decode(body.iam_request_body);
  const headersText = b64decode(body.iam_request_headers);
  if (!url || !reqBody || !headersText) return { status: 400, errors: ["missing iam_request_url, iam_request_body or iam_request_headers"] };
  let parsed: Record<string, string | string[]>;
  try {
    parsed = JSON.parse(headersText) as Record<string, string | string[]>;
  } catch {
    return { status: 400, errors: ["error parsing iam_request_headers"] };
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(",") : v;
  const auth = headers.authorization ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/sts\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { status: 400, errors: ["error making upstream request: malformed Authorization header"] };
  const [, accessKeyId, , region, signedHeaders] = m;
  const candidates = roles.filter((r) => r.mount === mount && r.accessKeyId === accessKeyId);
  const role = candidates.find((r) => (typeof body.role === "string" && body.role !== "" ? r.role === body.role : true));
  if (!role) return { status: 400, errors: [`entry for role ${typeof body.role === "string" ? body.role : "(default)"} not found`] };
  if (url !== (role.stsEndpoint ?? "https://sts.amazonaws.com/")) return { status: 400, errors: [`error validating iam_request_url: unexpected endpoint`] };
  if (reqBody !== "Action=GetCallerIdentity&Version=2011-06-15") return { status: 400, errors: ["error parsing iam_request_body: not a GetCallerIdentity request"] };
  if (role.serverId !== undefined) {
    if (headers["x-vault-aws-iam-server-id"] !== role.serverId || !signedHeaders!.split(";").includes("x-vault-aws-iam-server-id")) {
      return { status: 400, errors: ["error validating X-Vault-AWS-IAM-Server-ID header: missing or wrong"] };
    }
  }
  // Re-sign the request as STS would verify it.
  const u = new URL(url);
  const amzDate = headers["x-amz-date"] ?? "";
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!dm) return { status: 400, errors: ["error making upstream request: missing X-Amz-Date"] };
  const signingDate = new Date(Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!));
  const toSign: Record<string, string> = {};
  for (const h of signedHeaders!.split(";")) if (headers[h] !== undefined) toSign[h] = headers[h]!;
  const signer = new SignatureV4({
    credentials: { accessKeyId: role.accessKeyId, secretAccessKey: role.secretAccessKey, ...(headers["x-amz-security-token"] ? { sessionToken: headers["x-amz-security-token"] } : {}) },
    region: region!,
    service: "sts",
    sha256: Sha256,
  });
  const resigned = await signer.sign(
    { method: "POST", protocol: u.protocol, hostname: u.hostname, path: u.pathname, query: {}, headers: toSign, body: reqBody },
    { signingDate },
  );
  const expected = String(resigned.headers.authorization ?? resigned.headers.Authorization ?? "");
  if (expected !== auth) {
    return { status: 400, errors: ["error making upstream request: received error code 403 from STS: SignatureDoesNotMatch"] };
  }
  return {
    policies: role.policies,
    ttl: role.tokenTtl,
    renewable: role.renewable,
    metadata: { account_id: role.arn.split(":")[4] ?? "", auth_type: "iam", canonical_arn: role.arn, client_arn: role.arn, role_id: role.role },
    path: `auth/${mount}/login`,
  };
}
