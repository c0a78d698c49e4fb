/**
 * Systems Manager's part of the AWS error classification (the shared part is in ../aws/errors.ts):
 * Parameter Store's own error names and the KMS errors a SecureString read can surface.
 */
import { awsErrors, type AwsErrorClass, type AwsErrors } from "../aws/errors.js";

/** Parameter Store and KMS error names → what the loop should do. */
export const SSM_ERROR_TABLE: Readonly<Record<string, AwsErrorClass>> = {
  // The parameter, the version or the label does not exist (yet): keep waiting.
  ParameterNotFound: "not_found",
  ParameterVersionNotFound: "not_found",
  // Passing: back off and retry.
  InternalServerError: "transient",
  InvalidNextToken: "transient",
  KMSThrottlingException: "transient",
  KeyUnavailableException: "transient",
  DependencyTimeoutException: "transient",
  // A SecureString whose KMS key cannot be used, a bad reference: loud, retried at the cap.
  InvalidKeyId: "fatal",
  KMSAccessDeniedException: "fatal",
  KMSAccessDenied: "fatal",
  KMSDisabledException: "fatal",
  KMSInvalidStateException: "fatal",
  KMSNotFoundException: "fatal",
  KMSNotFound: "fatal",
  KMSOptInRequired: "fatal",
  DisabledException: "fatal",
  InvalidCiphertextException: "fatal",
  IncorrectKeyException: "fatal",
  UnsupportedParameterType: "fatal",
  InvalidFilterKey: "fatal",
  InvalidFilterOption: "fatal",
  InvalidFilterValue: "fatal",
};

const KMS_HINT =
  "the SecureString's KMS key cannot be used: the identity needs kms:Decrypt on a customer-managed key, and the key must be enabled; see docs/ssm.md";

/** The typed errors of the ssm backend. */
export const SSM_ERRORS: AwsErrors = awsErrors({
  backend: "ssm",
  table: SSM_ERROR_TABLE,
  // Any other KMS error name is a key problem, not a passing one.
  classifyName: (name) => (/^KMS/.test(name) ? (/Throttl/.test(name) ? "transient" : "fatal") : undefined),
  hints: {
    AccessDeniedException:
      "the identity needs ssm:GetParameter and ssm:GetParameters on the parameter (ssm:GetParametersByPath on a path), and kms:Decrypt for a SecureString with a customer-managed key; see docs/ssm.md",
    InvalidKeyId: KMS_HINT,
    KMSAccessDeniedException: KMS_HINT,
    KMSAccessDenied: KMS_HINT,
    KMSDisabledException: KMS_HINT,
    KMSInvalidStateException: KMS_HINT,
    KMSNotFoundException: KMS_HINT,
    KMSNotFound: KMS_HINT,
    ThrottlingException: "Parameter Store's request rate was exceeded (see docs/ssm.md on higher throughput)",
  },
});

/**
 * Error names for which a failed GetParameters call is retried name by name: one parameter (denied,
 * its KMS key unusable, or missing) fails the whole call, and asking for each alone finds which.
 * Identity and credential errors are not listed: those would fail alone too.
 */
export function failsPerParameter(name: string): boolean {
  return (
    name === "AccessDeniedException" ||
    name === "AccessDenied" ||
    name === "ParameterNotFound" ||
    name === "ParameterVersionNotFound" ||
    name === "InvalidKeyId" ||
    name === "ValidationException" ||
    name === "UnsupportedParameterType" ||
    name === "DisabledException" ||
    name === "InvalidCiphertextException" ||
    name === "IncorrectKeyException" ||
    (/^KMS/.test(name) && !/Throttl/.test(name))
  );
}
