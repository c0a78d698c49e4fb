/**
 * A thin, lazily built wrapper around the Systems Manager SDK client. The SDK is imported on the
 * first call, so a deployment that never names an `ssm:` reference never loads it.
 *
 * Only the three read operations the backend needs are exposed, each with `WithDecryption` (a
 * SecureString arrives decrypted) and plain result shapes, so the fetch logic can be reasoned
 * about (and tested) without the SDK's types.
 */
import type { Parameter, SSMClient } from "@aws-sdk/client-ssm";
import { awsClientOptions, withOwnSignal, type AwsApiBase } from "../aws/client.js";
import type { AwsSettings } from "../aws/config.js";

/** One parameter as GetParameter, GetParameters and GetParametersByPath return it. */
export interface ParameterResult {
  /** The name (for a parameter shared from another account, AWS may answer with the ARN). */
  readonly name: string;
  readonly arn?: string;
  /** `String`, `StringList` or `SecureString`. */
  readonly type?: string;
  /** The value; a SecureString decrypted, a StringList as its comma text. */
  readonly value: string;
  readonly version: number;
  /** `:3` or `:label` when the request named one. */
  readonly selector?: string;
  readonly lastModifiedMs?: number;
}

/** What one GetParametersByPath walk returned. */
export interface PathAnswer {
  readonly parameters: ParameterResult[];
  /** More pages were left than `maxPages` allowed. */
  readonly truncated: boolean;
}

/** The operations the backend uses. Every call throws the SDK's error on failure. */
export interface SsmApi extends AwsApiBase {
  /** `decrypt: false` (check --connect) leaves a SecureString encrypted: the value is never plaintext. @defaultValue true */
  getParameter(name: string, signal: AbortSignal, decrypt?: boolean): Promise<ParameterResult>;
  /** At most 10 names (with selectors). Names the service could not answer are in `invalid`, as sent. */
  getParameters(names: readonly string[], signal: AbortSignal): Promise<{ parameters: ParameterResult[]; invalid: string[] }>;
  /** Every parameter below `path`, recursively, page after page; `onRequest` is called once per page asked for. */
  getParametersByPath(path: string, signal: AbortSignal, opts: { maxPages: number; onRequest: () => void; decrypt?: boolean }): Promise<PathAnswer>;
}

/** GetParametersByPath answers at most this many parameters a page. */
export const PATH_PAGE_SIZE = 10;

/** Builds the SDK client with the shared AWS settings (region, endpoint, profile, attempts, timeout). */
export async function createSsmApi(settings: AwsSettings): Promise<SsmApi> {
  const sdk = await import("@aws-sdk/client-ssm");
  const client: SSMClient = new sdk.SSMClient(awsClientOptions(settings));

  return {
    getParameter: (name, signal, decrypt = true) =>
      withOwnSignal(signal, async (abortSignal) => {
        const out = await client.send(new sdk.GetParameterCommand({ Name: name, WithDecryption: decrypt }), { abortSignal });
        if (!out.Parameter) throw Object.assign(new Error("GetParameter answered without a Parameter"), { name: "ParameterNotFound" });
        return toResult(out.Parameter);
      }),
    getParameters: (names, signal) =>
      withOwnSignal(signal, async (abortSignal) => {
        const out = await client.send(new sdk.GetParametersCommand({ Names: [...names], WithDecryption: true }), { abortSignal });
        return { parameters: (out.Parameters ?? []).map(toResult), invalid: [...(out.InvalidParameters ?? [])] };
      }),
    getParametersByPath: (path, signal, opts) =>
      withOwnSignal(signal, async (abortSignal) => {
        const parameters: ParameterResult[] = [];
        let nextToken: string | undefined;
        for (let page = 0; ; page++) {
          if (page >= opts.maxPages) return { parameters, truncated: true };
          opts.onRequest();
          const out = await client.send(
            new sdk.GetParametersByPathCommand({
              Path: path,
              Recursive: true,
              WithDecryption: opts.decrypt ?? true,
              MaxResults: PATH_PAGE_SIZE,
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
            { abortSignal },
          );
          for (const p of out.Parameters ?? []) parameters.push(toResult(p));
          nextToken = out.NextToken ?? undefined;
          if (!nextToken) return { parameters, truncated: false };
        }
      }),
    async region() {
      return client.config.region();
    },
    destroy() {
      client.destroy();
    },
  };
}

function toResult(p: Parameter): ParameterResult {
  const modified = p.LastModifiedDate instanceof Date ? p.LastModifiedDate.getTime() : undefined;
  return {
    name: p.Name ?? "",
    ...(p.ARN ? { arn: p.ARN } : {}),
    ...(p.Type ? { type: p.Type } : {}),
    value: p.Value ?? "",
    version: typeof p.Version === "number" ? p.Version : 0,
    ...(p.Selector ? { selector: p.Selector } : {}),
    ...(modified !== undefined && Number.isFinite(modified) ? { lastModifiedMs: modified } : {}),
  };
}
