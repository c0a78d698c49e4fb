/**
 * The `awssm` backend: AWS Secrets Manager.
 *
 * References: `awssm:NAME` or `awssm:ARN` (full or partial), with `#field` / `#/pointer` applied by
 * the core to a JSON SecretString. Long form options: `version_stage` (default AWSCURRENT),
 * `version_id` (a pinned version). A SecretBinary is returned as its bytes, marked `binary`: the
 * core renders it as base64 unless the reference says `encoding:` (`binary` for the raw bytes,
 * `utf8` for text). The legacy `{{poll "awssm" "ID"}}` arrives as `awssm:ID`.
 *
 * Region: `backends.awssm.region` → `AWS_REGION` → `AWS_DEFAULT_REGION` → the profile → EC2
 * instance metadata (IMDSv2, resolved by the SDK itself). Credentials: the SDK's default chain.
 * Endpoint: `backends.awssm.endpoint` → `AWS_ENDPOINT_URL_SECRETS_MANAGER` → `AWS_ENDPOINT_URL`.
 *
 * The SDK is imported on first use. See docs/awssm.md for the IAM policy and the request arithmetic.
 * @packageDocumentation
 */
import type { Backend, BackendFactoryContext } from "../src/api/index.js";
import { fetchOneOfMany } from "./aws/pool.js";
import { lazyAwsApi } from "./aws/client.js";
import { checkAwsSm } from "./awssm/check.js";
import { createSecretsApi, type SecretsApi } from "./awssm/client.js";
import { parseAwsSmConfig, type AwsSmSettings } from "./awssm/config.js";
import { AwsSmFetcher, type FetchCounts } from "./awssm/fetcher.js";
import { planRef } from "./awssm/refs.js";

export { AWSSM_CONFIG_KEYS, type AwsSmSettings } from "./awssm/config.js";
export { AWSSM_REF_OPTIONS, type BinaryEncoding } from "./awssm/refs.js";
export { AWS_ERROR_TABLE } from "./awssm/errors.js";

/** How often a resolved secret is re-checked (one DescribeSecret). @defaultValue 1 hour */
export const AWSSM_DEFAULT_REFRESH_MS = 3_600_000;

/** The awssm backend, with its request counters (for debugging and tests). */
export interface AwsSmBackend extends Backend {
  readonly name: "awssm";
  /** Requests made so far: DescribeSecret, GetSecretValue, BatchGetSecretValue. */
  readonly counts: Readonly<FetchCounts>;
  /** The validated settings (no credentials are part of them). */
  readonly settings: AwsSmSettings;
}

/**
 * Builds the awssm backend from the `backends.awssm` config section and the environment.
 * Does not load the AWS SDK; that happens on the first fetch.
 * @throws {@link ConfigError} naming `backends.awssm.<key>` for an unknown key or a bad value.
 */
export default function createAwsSmBackend(ctx: BackendFactoryContext): AwsSmBackend {
  const settings = parseAwsSmConfig(ctx.config, ctx.env, ctx.configFile);
  const logger = ctx.logger.child({ backend: "awssm" });
  const api = lazyAwsApi<SecretsApi>({
    backend: "awssm",
    service: "AWS Secrets Manager",
    sdkPackage: "@aws-sdk/client-secrets-manager",
    settings,
    logger,
    build: createSecretsApi,
  });

  const fetcher = new AwsSmFetcher({ api: () => api.get(), logger });

  const backend: AwsSmBackend = {
    name: "awssm",
    defaultRefreshMs: AWSSM_DEFAULT_REFRESH_MS,
    counts: fetcher.counts,
    settings,
    validate(ref) {
      planRef(ref);
    },
    fetch(ref, fctx) {
      return fetchOneOfMany(ref, fctx, (refs, previous) => fetcher.fetchMany(refs, fctx.signal, previous, fctx.fresh === true));
    },
    async fetchMany(refs, fctx) {
      return fetcher.fetchMany(refs, fctx.signal, fctx.previous, fctx.fresh === true);
    },
    check(ref, cctx) {
      return checkAwsSm(() => api.get(), ref, cctx);
    },
    async close() {
      api.close();
    },
  };
  return backend;
}
