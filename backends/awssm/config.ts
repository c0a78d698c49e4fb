/**
 * The `backends.awssm` config section: the settings every AWS backend shares (../aws/config.ts)
 * with Secrets Manager's endpoint variable, `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
 */
import { AWS_CONFIG_KEYS, parseAwsConfig, type AwsServiceConfig, type AwsSettings } from "../aws/config.js";

/** Validated settings of the awssm backend. */
export type AwsSmSettings = AwsSettings;

/** Keys accepted in `backends.awssm`. `refresh` belongs to the core and is ignored here. */
export const AWSSM_CONFIG_KEYS = AWS_CONFIG_KEYS;

const SERVICE: AwsServiceConfig = {
  backend: "awssm",
  endpointEnv: "AWS_ENDPOINT_URL_SECRETS_MANAGER",
  endpointExample: "https://secretsmanager.eu-west-1.amazonaws.com",
};

/**
 * Validates the `backends.awssm` section and merges in the environment.
 * @throws {@link ConfigError} naming `backends.awssm.<key>` for an unknown key or a bad value.
 */
export function parseAwsSmConfig(
  cfg: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  file?: string,
): AwsSmSettings {
  return parseAwsConfig(SERVICE, cfg, env, file);
}
