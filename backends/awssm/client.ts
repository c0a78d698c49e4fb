/**
 * A thin, lazily built wrapper around the Secrets Manager SDK client. The SDK is imported on the
 * first call, so a deployment that never names an `awssm:` reference never loads it.
 *
 * Only the three read operations the backend needs are exposed, with plain result shapes, so the
 * fetch logic can be reasoned about (and tested) without the SDK's types.
 */
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { awsClientOptions, withOwnSignal, type AwsApiBase } from "../aws/client.js";
import type { AwsSmSettings } from "./config.js";

/** What DescribeSecret tells us. */
export interface DescribeResult {
  readonly arn?: string;
  readonly name?: string;
  /** Version id → its staging labels. Versions without labels are not listed. */
  readonly versionIdsToStages: Readonly<Record<string, readonly string[]>>;
  /** Set when the secret is scheduled for deletion. */
  readonly deleted: boolean;
}

/** A secret's value as GetSecretValue and BatchGetSecretValue return it. */
export interface ValueResult {
  readonly arn?: string;
  readonly name?: string;
  readonly versionId?: string;
  readonly secretString?: string;
  readonly secretBinary?: Uint8Array;
}

/** One failed entry of a BatchGetSecretValue answer. */
export interface BatchErrorEntry {
  readonly secretId?: string;
  readonly errorCode?: string;
  readonly message?: string;
}

/** The operations the backend uses. Every call throws the SDK's error on failure. */
export interface SecretsApi extends AwsApiBase {
  describe(secretId: string, signal: AbortSignal): Promise<DescribeResult>;
  getValue(input: { secretId: string; versionStage?: string; versionId?: string }, signal: AbortSignal): Promise<ValueResult>;
  batchGetValues(secretIds: readonly string[], signal: AbortSignal): Promise<{ values: ValueResult[]; errors: BatchErrorEntry[] }>;
}

/**
 * Builds the SDK client. Credentials come from the SDK's default chain; region, endpoint and
 * profile from {@link AwsSmSettings} (when unset, the SDK's own chains decide).
 */
export async function createSecretsApi(settings: AwsSmSettings): Promise<SecretsApi> {
  const sdk = await import("@aws-sdk/client-secrets-manager");
  const client: SecretsManagerClient = new sdk.SecretsManagerClient(awsClientOptions(settings));

  return {
    describe: (secretId, signal) =>
      withOwnSignal(signal, async (abortSignal) => {
        const out = await client.send(new sdk.DescribeSecretCommand({ SecretId: secretId }), { abortSignal });
        const stages: Record<string, readonly string[]> = {};
        for (const [id, labels] of Object.entries(out.VersionIdsToStages ?? {})) stages[id] = labels ?? [];
        return {
          ...(out.ARN ? { arn: out.ARN } : {}),
          ...(out.Name ? { name: out.Name } : {}),
          versionIdsToStages: stages,
          deleted: out.DeletedDate !== undefined && out.DeletedDate !== null,
        };
      }),
    getValue: (input, signal) =>
      withOwnSignal(signal, async (abortSignal) => {
        const out = await client.send(
          new sdk.GetSecretValueCommand({
            SecretId: input.secretId,
            ...(input.versionStage ? { VersionStage: input.versionStage } : {}),
            ...(input.versionId ? { VersionId: input.versionId } : {}),
          }),
          { abortSignal },
        );
        return toValue(out);
      }),
    batchGetValues: (secretIds, signal) =>
      withOwnSignal(signal, async (abortSignal) => {
        const values: ValueResult[] = [];
        const errors: BatchErrorEntry[] = [];
        let nextToken: string | undefined;
        // With a SecretIdList of at most 20 there is one page; the loop only guards against a
        // service that pages anyway.
        for (let page = 0; page < 5; page++) {
          const out = await client.send(
            new sdk.BatchGetSecretValueCommand({ SecretIdList: [...secretIds], ...(nextToken ? { NextToken: nextToken } : {}) }),
            { abortSignal },
          );
          for (const v of out.SecretValues ?? []) values.push(toValue(v));
          for (const e of out.Errors ?? []) {
            errors.push({
              ...(e.SecretId ? { secretId: e.SecretId } : {}),
              ...(e.ErrorCode ? { errorCode: e.ErrorCode } : {}),
              ...(e.Message ? { message: e.Message } : {}),
            });
          }
          nextToken = out.NextToken ?? undefined;
          if (!nextToken) break;
        }
        return { values, errors };
      }),
    async region() {
      return client.config.region();
    },
    destroy() {
      client.destroy();
    },
  };
}

function toValue(out: { ARN?: string | undefined; Name?: string | undefined; VersionId?: string | undefined; SecretString?: string | undefined; SecretBinary?: Uint8Array | undefined }): ValueResult {
  return {
    ...(out.ARN ? { arn: out.ARN } : {}),
    ...(out.Name ? { name: out.Name } : {}),
    ...(out.VersionId ? { versionId: out.VersionId } : {}),
    ...(out.SecretString !== undefined && out.SecretString !== null ? { secretString: out.SecretString } : {}),
    ...(out.SecretBinary !== undefined && out.SecretBinary !== null ? { secretBinary: out.SecretBinary } : {}),
  };
}
