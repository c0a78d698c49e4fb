/**
 * What the AWS backends share about their SDK clients: the client options built from
 * {@link AwsSettings}, one abort signal per call, and building the client lazily on first use
 * with one log line saying where it points.
 */
import type { Logger } from "../../src/api/index.js";
import { FatalError, safeError } from "../../src/api/index.js";
import { endpointForLog, type AwsSettings } from "./config.js";

/** The options every AWS SDK client constructor of ours is given. */
export interface AwsClientOptions {
  readonly region?: string;
  readonly endpoint?: string;
  readonly profile?: string;
  readonly maxAttempts: number;
  readonly requestHandler: { readonly connectionTimeout: number; readonly requestTimeout: number; readonly throwOnRequestTimeout: true };
}

/**
 * SDK client options from the settings. Credentials come from the SDK's default chain; region,
 * endpoint and profile from the settings (when unset, the SDK's own chains decide).
 */
export function awsClientOptions(settings: AwsSettings): AwsClientOptions {
  return {
    ...(settings.region ? { region: settings.region } : {}),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.profile ? { profile: settings.profile } : {}),
    maxAttempts: settings.maxAttempts,
    requestHandler: {
      connectionTimeout: settings.requestTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  };
}

/**
 * Runs one API call with a signal of its own, aborted with `parent`. The SDK hangs a listener on
 * the signal of every request; giving each call its own keeps a long-lived parent signal (the
 * core's, shared by a whole batch) from collecting listeners and tripping Node's MaxListeners
 * warning.
 */
export async function withOwnSignal<T>(parent: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(parent.reason);
  if (parent.aborted) ac.abort(parent.reason);
  else parent.addEventListener("abort", onAbort, { once: true });
  try {
    return await fn(ac.signal);
  } finally {
    parent.removeEventListener("abort", onAbort);
  }
}

/** What a lazily built API wrapper must offer. */
export interface AwsApiBase {
  /** The region the SDK resolved (config, env, profile or instance metadata). */
  region(): Promise<string>;
  destroy(): void;
}

/** Options for {@link lazyAwsApi}. */
export interface LazyApiOptions<T extends AwsApiBase> {
  /** The backend's name, for messages: `awssm`. */
  readonly backend: string;
  /** The service, for the ready line: `AWS Secrets Manager`. */
  readonly service: string;
  /** The SDK package, for the load error: `@aws-sdk/client-secrets-manager`. */
  readonly sdkPackage: string;
  readonly settings: AwsSettings;
  readonly logger: Logger;
  /** Imports the SDK and builds the wrapper. */
  readonly build: (settings: AwsSettings) => Promise<T>;
}

/** An API built on first use. */
export interface LazyApi<T> {
  /** The API, built (and the SDK imported) on the first call. Rejects with a FatalError once closed. */
  get(): Promise<T>;
  /** Destroys the client; later {@link LazyApi.get} calls reject. */
  close(): void;
}

/**
 * Builds the API on the first {@link LazyApi.get}, so a deployment that never names a reference of
 * this backend never loads its SDK. Logs one line with the region and the endpoint's origin.
 */
export function lazyAwsApi<T extends AwsApiBase>(opts: LazyApiOptions<T>): LazyApi<T> {
  let promise: Promise<T> | undefined;
  let api: T | undefined;
  let closed = false;
  const { settings, logger } = opts;
  return {
    get() {
      if (closed) return Promise.reject(new FatalError(`${opts.backend}: the backend is closed`));
      promise ??= (async () => {
        let built: T;
        try {
          built = await opts.build(settings);
        } catch (err) {
          promise = undefined;
          throw new FatalError(`${opts.backend}: cannot load ${opts.sdkPackage} (${safeError(err).type})`);
        }
        api = built;
        let region: string | undefined;
        try {
          region = await built.region();
        } catch {
          // No region: every fetch fails with a message saying how to set one.
        }
        logger.info(
          { region: region ?? null, regionSource: settings.regionSource, endpoint: endpointForLog(settings.endpoint), maxAttempts: settings.maxAttempts },
          region ? `${opts.service} client ready` : `${opts.service} client has no region yet`,
        );
        return built;
      })();
      return promise;
    },
    close() {
      closed = true;
      api?.destroy();
      api = undefined;
      promise = undefined;
    },
  };
}
