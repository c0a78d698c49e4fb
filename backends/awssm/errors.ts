/**
 * Secrets Manager's part of the AWS error classification (the shared part is in ../aws/errors.ts).
 */
import { awsErrors, type AwsErrorClass, type AwsErrorFacts } from "../aws/errors.js";

export type { AwsErrorClass, AwsErrorFacts } from "../aws/errors.js";

/** Secrets Manager's own error names → what the loop should do. */
const SECRETS_MANAGER_ERRORS: Readonly<Record<string, AwsErrorClass>> = {
  // The secret, the version or the stage does not exist (yet): keep waiting.
  ResourceNotFoundException: "not_found",
  // A secret that cannot be read or a bad reference: loud, retried at the cap.
  DecryptionFailure: "fatal",
  InvalidRequestException: "fatal",
  InvalidParameterException: "fatal",
};

const AWSSM = awsErrors({
  backend: "awssm",
  table: SECRETS_MANAGER_ERRORS,
  hints: {
    AccessDeniedException:
      "the identity needs secretsmanager:GetSecretValue and secretsmanager:DescribeSecret on this secret (and kms:Decrypt for a customer-managed key); see docs/awssm.md",
    DecryptionFailure: "Secrets Manager could not decrypt the secret with its KMS key (check kms:Decrypt and the key's state)",
    InvalidRequestException: "the secret cannot be read in its current state (e.g. scheduled for deletion)",
  },
});

/**
 * AWS error names (and SDK/Node error names) → what the loop should do, for awssm. Anything not
 * listed is transient unless the HTTP status says authentication (401/403).
 */
export const AWS_ERROR_TABLE: Readonly<Record<string, AwsErrorClass>> = AWSSM.table;

/** Extracts the loggable facts from anything the SDK threw. */
export function awsErrorFacts(err: unknown): AwsErrorFacts {
  return AWSSM.facts(err);
}

/** Converts anything the SDK threw into a typed error naming `label` (e.g. `awssm:prod/db`). */
export function fromAwsError(label: string, err: unknown): ReturnType<typeof AWSSM.from> {
  return AWSSM.from(label, err);
}

/** An error entry of a BatchGetSecretValue answer (`{ SecretId, ErrorCode, Message }`). */
export function fromBatchError(label: string, errorCode: string | undefined, message: string | undefined): ReturnType<typeof AWSSM.fromCode> {
  return AWSSM.fromCode(label, errorCode, message);
}
