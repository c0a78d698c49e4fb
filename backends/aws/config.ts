/**
 * The config section and environment variables shared by the AWS backends (`awssm`, `ssm`):
 * region, endpoint, profile, SDK attempts and request timeout. Everything else (credentials,
 * profile files, instance metadata) is left to the AWS SDK's default chains.
 */
import { ConfigError, toMs } from "../../src/api/index.js";

/** Validated settings of an AWS backend. No credential is part of them. */
export interface AwsSettings {
  /**
   * Region from the config file, `AWS_REGION` or `AWS_DEFAULT_REGION`. When undefined the SDK
   * resolves it: the profile (`AWS_PROFILE`, `~/.aws/config`), then EC2 instance metadata (IMDSv2).
   */
  readonly region?: string;
  /** Where the region came from, for the startup log line. */
  readonly regionSource: "config" | "AWS_REGION" | "AWS_DEFAULT_REGION" | "sdk";
  /**
   * Endpoint URL from the config file, the service's `AWS_ENDPOINT_URL_<SERVICE>` or
   * `AWS_ENDPOINT_URL` (both ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`).
   * Undefined: the AWS endpoint.
   */
  readonly endpoint?: string;
  /** Named profile of the shared config files. Undefined: `AWS_PROFILE` or `default`. */
  readonly profile?: string;
  /**
   * Attempts per API call inside the SDK, first try included. The core's scheduler does the
   * long backoff; a small number keeps one fetch from stalling for a long time.
   * @defaultValue 2
   */
  readonly maxAttempts: number;
  /**
   * Deadline of each HTTP attempt (connect + response). A hanging endpoint fails after this.
   * @defaultValue 10 000 ms
   */
  readonly requestTimeoutMs: number;
}

/** What differs between the AWS backends' config sections. */
export interface AwsServiceConfig {
  /** The backend's name: the config section is `backends.<backend>`. */
  readonly backend: string;
  /** The service-specific endpoint variable, e.g. `AWS_ENDPOINT_URL_SSM`. */
  readonly endpointEnv: string;
  /** An example AWS endpoint for error messages, e.g. `https://ssm.eu-west-1.amazonaws.com`. */
  readonly endpointExample: string;
}

/** Keys accepted in `backends.awssm` and `backends.ssm`. `refresh` belongs to the core and is ignored here. */
export const AWS_CONFIG_KEYS = ["region", "endpoint", "profile", "max_attempts", "request_timeout"] as const;

/** @defaultValue 2 */
export const DEFAULT_MAX_ATTEMPTS = 2;
/** @defaultValue 10 000 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

const REGION = /^[a-z0-9-]{2,32}$/;

/**
 * Validates a `backends.<name>` section of an AWS backend and merges in the environment:
 * region `config → AWS_REGION → AWS_DEFAULT_REGION → (the SDK: profile, IMDS)`, endpoint
 * `config → <service variable> → AWS_ENDPOINT_URL`.
 * @throws {@link ConfigError} naming `backends.<name>.<key>` for an unknown key or a bad value.
 */
export function parseAwsConfig(
  service: AwsServiceConfig,
  cfg: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  file?: string,
): AwsSettings {
  const fail = (key: string, reason: string): never => {
    const field = `backends.${service.backend}${key ? "." + key : ""}`;
    throw new ConfigError(`${file ? file + ": " : ""}${field}: ${reason}`, { field, ...(file ? { file } : {}) });
  };
  const str = (key: string): string | undefined => {
    const v = cfg[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || v.trim() === "") fail(key, "must be a non-empty string");
    return (v as string).trim();
  };
  const checkEndpoint = (url: string): string => {
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      fail("endpoint", `is not a URL (expected e.g. http://127.0.0.1:5000 or ${service.endpointExample})`);
    }
    if (u!.protocol !== "http:" && u!.protocol !== "https:") fail("endpoint", `must be an http or https URL, not ${u!.protocol}`);
    return url;
  };

  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) fail("", "must be a mapping");
  for (const key of Object.keys(cfg)) {
    if (key === "refresh") continue; // the core's key; normally stripped before we see it
    if (!(AWS_CONFIG_KEYS as readonly string[]).includes(key)) {
      fail(key, `unknown key (known: ${AWS_CONFIG_KEYS.join(", ")}, refresh)`);
    }
  }

  let region = str("region");
  let regionSource: AwsSettings["regionSource"] = "config";
  if (region !== undefined && !REGION.test(region)) fail("region", `"${region}" is not a region name (e.g. eu-west-1)`);
  if (region === undefined && env.AWS_REGION?.trim()) {
    region = env.AWS_REGION.trim();
    regionSource = "AWS_REGION";
  } else if (region === undefined && env.AWS_DEFAULT_REGION?.trim()) {
    region = env.AWS_DEFAULT_REGION.trim();
    regionSource = "AWS_DEFAULT_REGION";
  } else if (region === undefined) {
    regionSource = "sdk";
  }

  let endpoint = str("endpoint");
  if (endpoint !== undefined) {
    endpoint = checkEndpoint(endpoint);
  } else if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.trim().toLowerCase() !== "true") {
    const fromEnv = env[service.endpointEnv]?.trim() || env.AWS_ENDPOINT_URL?.trim();
    if (fromEnv) {
      try {
        endpoint = checkEndpoint(fromEnv);
      } catch {
        throw new ConfigError(`${service.endpointEnv} / AWS_ENDPOINT_URL: not an http(s) URL`, { field: service.endpointEnv });
      }
    }
  }

  const profile = str("profile");

  let maxAttempts = DEFAULT_MAX_ATTEMPTS;
  if (cfg.max_attempts !== undefined) {
    const n = typeof cfg.max_attempts === "string" ? Number(cfg.max_attempts) : cfg.max_attempts;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 10) fail("max_attempts", "must be an integer from 1 to 10");
    maxAttempts = n as number;
  }

  let requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS;
  if (cfg.request_timeout !== undefined) {
    const v = cfg.request_timeout;
    if (typeof v !== "string" && typeof v !== "number") fail("request_timeout", "must be a duration such as 10s");
    try {
      requestTimeoutMs = toMs(v as string | number);
    } catch (err) {
      fail("request_timeout", (err as Error).message);
    }
    if (requestTimeoutMs < 1) fail("request_timeout", "must be greater than zero");
  }

  return {
    ...(region !== undefined ? { region } : {}),
    regionSource,
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(profile !== undefined ? { profile } : {}),
    maxAttempts,
    requestTimeoutMs,
  };
}

/** The endpoint without user info, path or query, for log lines. */
export function endpointForLog(endpoint: string | undefined): string {
  if (!endpoint) return "aws";
  try {
    return new URL(endpoint).origin;
  } catch {
    return "(invalid)";
  }
}
