/**
 * Turns AWS SDK and network failures into emissary's typed errors — one table per service on top
 * of a table of the errors every AWS service shares.
 *
 * The SDK's error objects carry the request (headers with the SigV4 signature, the access key id)
 * and the raw response; they are never passed on, not even as `cause`. What is kept: the AWS error
 * name, the HTTP status, the request id and the service's short message for a modelled error,
 * which for the read operations used here never contains a secret value.
 */
import { FatalError, SecretNotFoundError, TransientError } from "../../src/api/index.js";

/** What the scheduler does with an AWS error. */
export type AwsErrorClass = "not_found" | "transient" | "fatal";

/** Error names every AWS service (and the SDK, and Node) may produce → what the loop should do. */
export const COMMON_AWS_ERRORS: Readonly<Record<string, AwsErrorClass>> = {
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
  // Permission, authentication or a bad request: loud, retried at the cap.
  AccessDeniedException: "fatal",
  AccessDenied: "fatal",
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

/** Hints every AWS backend appends, keyed by error name. */
const COMMON_HINTS: Readonly<Record<string, string>> = {
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

/** One service's part of the classification. */
export interface AwsServiceErrors {
  /** The backend's name, for the "no region" message (`backends.<backend>.region`). */
  readonly backend: string;
  /** The service's own error names, merged over {@link COMMON_AWS_ERRORS} (the service wins). */
  readonly table: Readonly<Record<string, AwsErrorClass>>;
  /** Short hints appended to messages, merged over the common ones. */
  readonly hints?: Readonly<Record<string, string>>;
  /** A rule for names in neither table (e.g. every `KMS…` error), before the status rules. */
  readonly classifyName?: (name: string) => AwsErrorClass | undefined;
}

/** The typed errors one AWS backend produces. */
export interface AwsErrors {
  /** The merged table: common names plus the service's. */
  readonly table: Readonly<Record<string, AwsErrorClass>>;
  /** Extracts the loggable facts from anything the SDK threw. */
  facts(err: unknown): AwsErrorFacts;
  /** Classifies facts: the table, the service's rule, then network code and HTTP status; else transient. */
  classify(f: AwsErrorFacts): AwsErrorClass;
  /** The message: reference, AWS error name, status, the service's words, a hint. */
  describe(label: string, f: AwsErrorFacts): string;
  /** The typed error for `facts` on reference `label`. */
  typed(label: string, f: AwsErrorFacts): SecretNotFoundError | TransientError | FatalError;
  /**
   * Converts anything the SDK threw into a typed error naming `label` (e.g. `ssm:/prod/db`).
   * The SDK error itself is dropped. A region the SDK could not find is a fatal config problem.
   */
  from(label: string, err: unknown): SecretNotFoundError | TransientError | FatalError;
  /** An error reported inside a successful answer (a batch's error entry): a code and a message. */
  fromCode(label: string, errorCode: string | undefined, message: string | undefined): SecretNotFoundError | TransientError | FatalError;
}

const MAX_MESSAGE = 300;

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length > MAX_MESSAGE ? t.slice(0, MAX_MESSAGE) + "…" : t;
}

/** Builds the error mapping of one AWS backend. */
export function awsErrors(service: AwsServiceErrors): AwsErrors {
  const table: Readonly<Record<string, AwsErrorClass>> = { ...COMMON_AWS_ERRORS, ...service.table };
  const hints: Readonly<Record<string, string>> = { ...COMMON_HINTS, ...(service.hints ?? {}) };
  const known = (name: string): boolean => name in table || service.classifyName?.(name) !== undefined;

  const facts = (err: unknown): AwsErrorFacts => {
    if (err === null || typeof err !== "object") return { name: typeof err };
    const e = err as Record<string, unknown>;
    const meta = (e.$metadata ?? {}) as Record<string, unknown>;
    const name = typeof e.name === "string" && e.name !== "Error" ? e.name : typeof e.code === "string" ? e.code : "Error";
    const status = typeof meta.httpStatusCode === "number" ? meta.httpStatusCode : undefined;
    const code = typeof e.code === "string" && /^[A-Z_]+$/.test(e.code) ? e.code : undefined;
    const requestId = typeof meta.requestId === "string" && /^[\w-]{1,100}$/.test(meta.requestId) ? meta.requestId : undefined;
    // Only messages written by the service for a modelled error are kept: those name the secret and
    // the principal, never a value. Network and unknown errors keep their name and code only.
    const fromService = typeof e.$fault === "string" && status !== undefined && known(name);
    const message = fromService && typeof e.message === "string" && e.message !== "UnknownError" ? oneLine(e.message) : undefined;
    return {
      name,
      ...(status !== undefined ? { status } : {}),
      ...(code !== undefined ? { code } : {}),
      ...(message ? { message } : {}),
      ...(requestId ? { requestId } : {}),
    };
  };

  const classify = (f: AwsErrorFacts): AwsErrorClass => {
    const byName = table[f.name] ?? service.classifyName?.(f.name);
    if (byName) return byName;
    if (f.code && NETWORK_CODES.has(f.code)) return "transient";
    if (f.status === 401 || f.status === 403) return "fatal";
    return "transient";
  };

  const describe = (label: string, f: AwsErrorFacts): string => {
    let msg = `${label}: ${f.name}`;
    const details: string[] = [];
    if (f.status !== undefined) details.push(`HTTP ${f.status}`);
    if (f.code && f.code !== f.name) details.push(f.code);
    if (f.requestId) details.push(`request ${f.requestId}`);
    if (details.length) msg += ` (${details.join(", ")})`;
    if (f.message) msg += `: ${f.message}`;
    const hint = hints[f.name];
    if (hint) msg += ` — ${hint}`;
    return msg;
  };

  const typed = (label: string, f: AwsErrorFacts): SecretNotFoundError | TransientError | FatalError => {
    const msg = describe(label, f);
    switch (classify(f)) {
      case "not_found":
        return new SecretNotFoundError(msg);
      case "fatal":
        return new FatalError(msg);
      default:
        return new TransientError(msg);
    }
  };

  return {
    table,
    facts,
    classify,
    describe,
    typed,
    from(label, err) {
      if (err instanceof SecretNotFoundError || err instanceof TransientError || err instanceof FatalError) return err;
      const msg = (err as { message?: unknown } | null)?.message;
      if (typeof msg === "string" && /^Region is missing/.test(msg)) {
        return new FatalError(
          `${label}: no AWS region — set backends.${service.backend}.region or AWS_REGION, give the profile a region, or run on EC2 where the instance metadata service (IMDSv2) answers`,
        );
      }
      return typed(label, facts(err));
    },
    fromCode(label, errorCode, message) {
      const name = errorCode && /^[\w.]{1,100}$/.test(errorCode) ? errorCode : "UnknownError";
      const f: AwsErrorFacts = { name, ...(message && known(name) ? { message: oneLine(message) } : {}) };
      return typed(label, f);
    },
  };
}
