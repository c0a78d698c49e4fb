/**
 * Vault's AWS IAM auth method: emissary signs an `sts:GetCallerIdentity` request with the
 * machine's AWS credentials and hands the signed request to Vault, which sends it to STS to learn
 * who is calling. The request is never sent to AWS by emissary. The SigV4 signer and the AWS
 * credential chain are imported on first use.
 */
import { FatalError, safeError } from "../../src/api/index.js";

/** AWS credentials (never logged). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Where credentials come from. */
export type AwsCredentialSource = () => Promise<AwsCredentials>;

/** The body of `POST /v1/auth/<mount>/login` for the `iam` type. */
export interface AwsIamLoginBody {
  readonly role?: string;
  readonly iam_http_request_method: "POST";
  readonly iam_request_url: string;
  readonly iam_request_body: string;
  readonly iam_request_headers: string;
}

/** The body STS expects, as the Vault CLI and Vault Agent send it. */
export const GET_CALLER_IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15";

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

/**
 * Credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`) in the
 * given environment, else the AWS SDK's default chain (profile, SSO, web identity, ECS, EC2
 * instance metadata).
 */
export function defaultAwsCredentials(env: Readonly<Record<string, string | undefined>>): AwsCredentialSource {
  return async () => {
    const id = env.AWS_ACCESS_KEY_ID;
    const secret = env.AWS_SECRET_ACCESS_KEY;
    if (id && secret) return { accessKeyId: id, secretAccessKey: secret, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
    let provider: () => Promise<AwsCredentials>;
    try {
      const mod = await import("@aws-sdk/credential-provider-node");
      provider = mod.defaultProvider();
    } catch (err) {
      throw new FatalError(`vault aws login: cannot load @aws-sdk/credential-provider-node (${safeError(err).type})`);
    }
    try {
      return await provider();
    } catch (err) {
      // The chain's messages name the sources it tried; they hold no credential.
      throw new FatalError(`vault aws login: no AWS credentials (${safeError(err).message.slice(0, 200)})`);
    }
  };
}

/** Options for {@link awsIamLoginBody}. */
export interface AwsIamOptions {
  readonly role?: string;
  readonly region: string;
  readonly stsEndpoint: string;
  /** `X-Vault-AWS-IAM-Server-ID`, signed along with the request. */
  readonly headerValue?: string;
  readonly credentials: AwsCredentialSource;
}

/** Builds a signed `sts:GetCallerIdentity` request in the shape Vault's `auth/aws/login` takes. */
export async function awsIamLoginBody(opts: AwsIamOptions): Promise<AwsIamLoginBody> {
  const [{ SignatureV4 }, { Sha256 }] = await Promise.all([import("@smithy/signature-v4"), import("@aws-crypto/sha256-js")]);
  const creds = await opts.credentials();
  const url = new URL(opts.stsEndpoint);
  const headers: Record<string, string> = {
    host: url.host,
    "content-type": "application/x-www-form-urlencoded; charset=utf-8",
  };
  if (opts.headerValue) headers["x-vault-aws-iam-server-id"] = opts.headerValue;
  const signer = new SignatureV4({ credentials: creds, region: opts.region, service: "sts", sha256: Sha256 });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname || "/",
    query: {},
    headers,
    body: GET_CALLER_IDENTITY_BODY,
  });
  // Vault reads the headers as a JSON map of name → [values] (Go's http.Header).
  const outHeaders: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(signed.headers)) outHeaders[k] = [String(v)];
  return {
    ...(opts.role ? { role: opts.role } : {}),
    iam_http_request_method: "POST",
    iam_request_url: b64(url.href),
    iam_request_body: b64(GET_CALLER_IDENTITY_BODY),
    iam_request_headers: b64(JSON.stringify(outHeaders)),
  };
}
