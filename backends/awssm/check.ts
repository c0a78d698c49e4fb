/**
 * `emissary check --connect` for the awssm backend: resolve the region and the credentials (the
 * SDK's chains), then DescribeSecret each secret — which says whether it exists and which version
 * holds the staging label, without its value. DescribeSecret cannot prove the GetSecretValue
 * permission; `--read` reads the value (and discards it) to prove that too.
 * @module
 */
import type { CheckContext, CheckResult, SecretRef } from "../../src/api/index.js";
import { SecretNotFoundError, classifyError } from "../../src/api/index.js";
import type { SecretsApi } from "./client.js";
import { awsErrorFacts, fromAwsError } from "./errors.js";
import { planRef, toResult, type AwsSmRef } from "./refs.js";

/** AWS error names that mean the reference (not the permission) is wrong. */
const INVALID = new Set(["InvalidRequestException", "InvalidParameterException", "ValidationException"]);

function failed(label: string, err: unknown): CheckResult {
  const typed = fromAwsError(label, err);
  const name = awsErrorFacts(err).name;
  if (INVALID.has(name) || /no AWS region/.test(typed.message)) return { status: "invalid", reason: typed.message };
  const cls = classifyError(typed);
  return { status: cls === "not_found" ? "not_set" : cls === "transient" ? "unreachable" : "denied", reason: typed.message };
}

async function read(api: SecretsApi, p: AwsSmRef, signal: AbortSignal): Promise<CheckResult> {
  try {
    const v = await api.getValue({ secretId: p.id, ...(p.stage !== undefined ? { versionStage: p.stage } : {}), ...(p.versionId !== undefined ? { versionId: p.versionId } : {}) }, signal);
    const r = toResult(p, v);
    if (r instanceof SecretNotFoundError) return { status: "not_set", reason: `GetSecretValue: ${r.message}` };
    return { status: "ok", reason: "GetSecretValue allowed (value read and discarded)" };
  } catch (err) {
    return failed(p.label, err);
  }
}

/** Checks one awssm reference. */
export async function checkAwsSm(getApi: () => Promise<SecretsApi>, ref: SecretRef, ctx: CheckContext): Promise<CheckResult> {
  let p: AwsSmRef;
  try {
    p = planRef(ref);
  } catch (err) {
    return { status: "invalid", reason: (err as Error).message };
  }
  let api: SecretsApi;
  let region: string;
  try {
    api = await getApi();
    region = await api.region();
  } catch (err) {
    return failed(p.label, err);
  }
  let d;
  try {
    d = await api.describe(p.id, ctx.signal);
  } catch (err) {
    const r = failed(p.label, err);
    // Without DescribeSecret the backend refreshes with GetSecretValue: a read can still prove access.
    if (r.status === "denied" && awsErrorFacts(err).name === "AccessDeniedException" && ctx.read) {
      const rr = await read(api, p, ctx.signal);
      return rr.status === "ok" ? { status: "ok", reason: `${rr.reason}; DescribeSecret is denied, so every refresh reads the value (grant secretsmanager:DescribeSecret)` } : rr;
    }
    return r;
  }
  if (d.deleted) return { status: "invalid", reason: `${p.label}: the secret is scheduled for deletion` };
  let found: string;
  if (p.versionId !== undefined) {
    found = d.versionIdsToStages[p.versionId] ? `version ${p.versionId} exists` : `version ${p.versionId} has no staging label, so DescribeSecret cannot show it exists`;
  } else {
    const stage = p.stage!;
    if (!Object.values(d.versionIdsToStages).some((labels) => labels.includes(stage))) {
      return { status: "not_set", reason: `${p.label}: no version of the secret has the staging label ${stage}` };
    }
    found = `${stage} has a version`;
  }
  if (ctx.read) {
    const r = await read(api, p, ctx.signal);
    return r.status === "ok" ? { status: "ok", reason: `DescribeSecret: ${found}; ${r.reason} (region ${region})` } : r;
  }
  return {
    status: "ok",
    reason: `DescribeSecret: the secret exists and ${found} (region ${region}); the GetSecretValue permission can only be proven by reading (--read)`,
  };
}
