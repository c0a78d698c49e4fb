/**
 * Turns AWS SDK and network failures into emissary's typed errors — in one table.
 *
 * The SDK's error objects carry the request (headers with the SigV4 signature, the access key id)
 * and the raw response; they are never passed on, not even as `cause`. What is kept: the AWS error
 * name, the HTTP status, the request id and the service's short message, which for the read
 * operations used here never contains a secret value.
 */
import { FatalError, SecretNotFoundError, TransientError } from "../../src/api/index.js";

/** What the scheduler does with an AWS error. */
export type AwsErrorClass = "not_found" | "transient" | "fatal";

/**
 * AWS error names (and SDK/Node error names) → what the loop should do. Anything not listed is
 * transient unless the HTTP status says authentication (401/403).
 */
export const AWS_ERROR_TABLE: Readonly<Record<string, AwsErrorClass>> = {
  // The secret, the version or the stage does not exist (yet): keep waiting.
  ResourceNotFoundException: "not_found",
  // Passing: back off and retry.
  ThrottlingException: "transient",
  Throttling: "transient",
  TooManyRequestsException: "transient",
  RequestLimitExceeded: "transient",
  RequestThrottled: "transient",
  RequestThrottledException: "transient",
  ProvisionedThroughputExceededException: "transient",
  InternalServiceError: "transient",
  InternalServiceErrorException: "transient",
  InternalFailure: "transient",
  InternalError: "transient",
  ServiceUnavailable: "transient",
  ServiceUnavailableException: "transient",
  RequestTimeout: "transient",
  RequestTimeoutException: "transient",
  TimeoutError: "transient",
  PriorRequestNotComplete: "transient",
  EC2ThrottledException: "transient",
  // Permission, authentication, a bad reference or a secret that cannot be read: loud, retried at the cap.
  AccessDeniedException: "fatal",
  AccessDenied: "fatal",
  DecryptionFailure: "fatal",
  InvalidRequestException: "fatal",
  InvalidParameterException: "fatal",
  ValidationException: "fatal",
  UnrecognizedClientException: "fatal",
  InvalidSignatureException: "fatal",
  SignatureDoesNotMatch: "fatal",
  IncompleteSignature: "fatal",
  InvalidClientTokenId: "fatal",
  MissingAuthenticationToken: "fatal",
  ExpiredTokenException: "fatal",
  ExpiredToken: "fatal",
  NotAuthorized: "fatal",
  CredentialsProviderError: "fatal",
};

/** Short hints appended to the message, keyed by AWS error name. */
const HINTS: Readonly<Record<string, string>> = {
  AccessDeniedException:
    "the identity needs secretsmanager:GetSecretValue and secretsmanager:DescribeSecret on this secret (and kms:Decrypt for a customer-managed key); see docs/awssm.md",
  DecryptionFailure: "Secrets Manager could not decrypt the secret with its KMS key (check kms:Decrypt and the key's state)",
  InvalidRequestException: "the secret cannot be read in its current state (e.g. scheduled for deletion)",
  CredentialsProviderError:
    "no AWS credentials from the default chain (environment, profile, SSO, web identity, ECS or EC2 instance role)",
  ExpiredTokenException: "the AWS credentials have expired",
  UnrecognizedClientException: "the access key id is not valid",
  InvalidSignatureException: "the request signature was rejected (wrong secret key or clock skew)",
};

/** Network error codes (Node) that always mean "try again later". */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ECONNABORTED",
  "EPROTO",
  "UND_ERR_SOCKET",
]);

/** The parts of an SDK error we keep. All primitives; no request, no response. */
export interface AwsErrorFacts {
  /** AWS error name (`AccessDeniedException`) or the Node/SDK error name. */
  readonly name: string;
  /** HTTP status, when the service answered. */
  readonly status?: number;
  /** Node network error code (`ECONNREFUSED`). */
  readonly code?: string;
  /** The service's message, single line and shortened; only for answers from the service. */
  readonly message?: string;
  /** AWS request id, for support cases. */
  readonly requestId?: string;
}

const MAX_MESSAGE = 300;

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > MAX_MESSAGE ? t.slice(0, MAX_MESSAGE) + "…" : t;
}

/** Extracts the loggable facts from anything the SDK threw. */
export function awsErrorFacts(err: unknown): AwsErrorFacts {
  if (err === null || typeof err !== "object") return { name: typeof err };
  const e = err as Record<string, unknown>;
  const meta = (e.$metadata ?? {}) as Record<string, unknown>;
  const name = typeof e.name === "string" && e.name !== "Error" ? e.name : typeof e.code === "string" ? e.code : "Error";
  const status = typeof meta.httpStatusCode === "number" ? meta.httpStatusCode : undefined;
  const code = typeof e.code === "string" && /^[A-Z_]+$/.test(e.code) ? e.code : undefined;
  const requestId = typeof meta.requestId === "string" && /^[\w-]{1,100}$/.test(meta.requestId) ? meta.requestId : undefined;
  // Only messages written by the service for a modelled error are kept: those name the secret and
  // the principal, never a value. Network and unknown errors keep their name and code only.
  const fromService = typeof e.$fault === "string" && status !== undefined && name in AWS_ERROR_TABLE;
  const message = fromService && typeof e.message === "string" && e.message !== "UnknownError" ? oneLine(e.message) : undefined;
  return {
    name,
    ...(status !== undefined ? { status } : {}),
    ...(code !== undefined ? { code } : {}),
    ...(message ? { message } : {}),
    ...(requestId ? { requestId } : {}),
  };
}

/** Classifies facts with {@link AWS_ERROR_TABLE}, then status and network code. */
export function classifyAws(f: AwsErrorFacts): AwsErrorClass {
  const byName = AWS_ERROR_TABLE[f.name];
  if (byName) return byName;
  if (f.code && NETWORK_CODES.has(f.code)) return "transient";
  if (f.status === 401 || f.status === 403) return "fatal";
  return "transient";
}

/** Builds the message: reference, AWS error name, status, the service's words, a hint. */
export function describeAwsError(label: string, f: AwsErrorFacts): string {
  let msg = `${label}: ${f.name}`;
  const details: string[] = [];
  if (f.status !== undefined) details.push(`HTTP ${f.status}`);
  if (f.code && f.code !== f.name) details.push(f.code);
  if (f.requestId) details.push(`request ${f.requestId}`);
  if (details.length) msg += ` (${details.join(", ")})`;
  if (f.message) msg += `: ${f.message}`;
  const hint = HINTS[f.name];
  if (hint) msg += ` — ${hint}`;
  return msg;
}

/** Makes the typed error for a failure described by `facts` on reference `label`. */
export function typedAwsError(label: string, facts: AwsErrorFacts): SecretNotFoundError | TransientError | FatalError {
  const msg = describeAwsError(label, facts);
  switch (classifyAws(facts)) {
    case "not_found":
      return new SecretNotFoundError(msg);
    case "fatal":
      return new FatalError(msg);
    default:
      return new TransientError(msg);
  }
}

/**
 * Converts anything the SDK threw into a typed error naming `label` (e.g. `awssm:prod/db`).
 * The SDK error itself is dropped. A region the SDK could not find is a fatal config problem.
 */
export function fromAwsError(label: string, err: unknown): SecretNotFoundError | TransientError | FatalError {
  if (err instanceof SecretNotFoundError || err instanceof TransientError || err instanceof FatalError) return err;
  const msg = (err as { message?: unknown } | null)?.message;
  if (typeof msg === "string" && /^Region is missing/.test(msg)) {
    return new FatalError(
      `${label}: no AWS region — set backends.awssm.region or AWS_REGION, give the profile a region, or run on EC2 where the instance metadata service (IMDSv2) answers`,
    );
  }
  return typedAwsError(label, awsErrorFacts(err));
}

/** An error entry of a BatchGetSecretValue answer (`{ SecretId, ErrorCode, Message }`). */
export function fromBatchError(label: string, errorCode: string | undefined, message: string | undefined): SecretNotFoundError | TransientError | FatalError {
  const name = errorCode && /^[\w.]{1,100}$/.test(errorCode) ? errorCode : "UnknownError";
  const facts: AwsErrorFacts = { name, ...(message && name in AWS_ERROR_TABLE ? { message: oneLine(message) } : {}) };
  return typedAwsError(label, facts);
}
