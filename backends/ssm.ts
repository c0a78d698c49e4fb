/**
 * The `ssm` backend: AWS Systems Manager Parameter Store.
 *
 * References: `ssm:NAME` or `ssm:ARN` (a `SecureString` is decrypted, a `StringList` is its comma
 * text), with a version or label as the long form's `version:` / `label:` or GetParameter's own
 * selector (`ssm:/prod/db:3`, `ssm:/prod/db:blue`). A name ending in `/` is a path: every parameter
 * below it (recursively), as a JSON object keyed by the names relative to the path
 * (`{"db/password": "…", "gossip": "…"}`), usable whole, by `#field` or as a section.
 *
 * Region, credentials and endpoint follow the same chain as `awssm` (../aws/config.ts), with
 * `backends.ssm` and `AWS_ENDPOINT_URL_SSM`. The SDK is imported on first use. See docs/ssm.md
 * for the IAM policy and the request arithmetic.
 * @packageDocumentation
 */
import type { Backend, BackendFactoryContext } from "../src/api/index.js";
import { fetchOneOfMany } from "./aws/pool.js";
import { lazyAwsApi } from "./aws/client.js";
import { AWS_CONFIG_KEYS, parseAwsConfig, type AwsServiceConfig, type AwsSettings } from "./aws/config.js";
import { checkSsm } from "./ssm/check.js";
import { createSsmApi, type SsmApi } from "./ssm/client.js";
import { SsmFetcher, type SsmFetchCounts } from "./ssm/fetcher.js";
import { planRef } from "./ssm/refs.js";

export { SSM_REF_OPTIONS } from "./ssm/refs.js";
export { SSM_ERROR_TABLE } from "./ssm/errors.js";
export type { SsmFetchCounts } from "./ssm/fetcher.js";

/** Keys accepted in `backends.ssm` (besides the core's `refresh`). */
export const SSM_CONFIG_KEYS = AWS_CONFIG_KEYS;

/** How often a resolved parameter is re-read (batched GetParameters). @defaultValue 1 hour */
export const SSM_DEFAULT_REFRESH_MS = 3_600_000;

const SERVICE: AwsServiceConfig = {
  backend: "ssm",
  endpointEnv: "AWS_ENDPOINT_URL_SSM",
  endpointExample: "https://ssm.eu-west-1.amazonaws.com",
};

/** The ssm backend, with its request counters (for debugging and tests). */
export interface SsmBackend extends Backend {
  readonly name: "ssm";
  /** Requests made so far: GetParameter, GetParameters, GetParametersByPath pages. */
  readonly counts: Readonly<SsmFetchCounts>;
  /** The validated settings (no credentials are part of them). */
  readonly settings: AwsSettings;
}

/**
 * Builds the ssm backend from the `backends.ssm` config section and the environment.
 * Does not load the AWS SDK; that happens on the first fetch.
 * @throws {@link ConfigError} naming `backends.ssm.<key>` for an unknown key or a bad value.
 */
export default function createSsmBackend(ctx: BackendFactoryContext): SsmBackend {
  const settings = parseAwsConfig(SERVICE, ctx.config, ctx.env, ctx.configFile);
  const logger = ctx.logger.child({ backend: "ssm" });
  const api = lazyAwsApi<SsmApi>({
    backend: "ssm",
    service: "AWS Systems Manager",
    sdkPackage: "@aws-sdk/client-ssm",
    settings,
    logger,
    build: createSsmApi,
  });
  const fetcher = new SsmFetcher({ api: () => api.get(), logger });

  const backend = {
    name: "ssm",
    defaultRefreshMs: SSM_DEFAULT_REFRESH_MS,
    counts: fetcher.counts,
    settings,
    validate(ref) {
      planRef(ref);
    },
    fetch(ref, fctx) {
      return fetchOneOfMany(ref, fctx, (refs, previous) => fetcher.fetchMany(refs, fctx.signal, previous));
    },
    // Every fetch reads the parameters (no "has it changed?" shortcut), so `fresh` changes nothing.
    async fetchMany(refs, fctx) {
      return fetcher.fetchMany(refs, fctx.signal, fctx.previous);
    },
    check(ref, cctx) {
      return checkSsm(() => api.get(), ref, cctx);
    },
    async close() {
      api.close();
    },
  } satisfies SsmBackend;
  return backend;
}
