/**
 * `emissary check --connect` for the ssm backend: resolve the region and credentials, then
 * GetParameter each parameter without decryption (a SecureString stays encrypted, so no value is
 * ever in plaintext), or the first page of GetParametersByPath for a path. That proves
 * ssm:GetParameter(s)/GetParametersByPath; kms:Decrypt for a SecureString can only be proven by a
 * decrypting read, which `--read` does (discarding the value).
 * @module
 */
import type { CheckContext, CheckResult, SecretRef } from "../../src/api/index.js";
import { SecretNotFoundError, classifyError } from "../../src/api/index.js";
import type { SsmApi } from "./client.js";
import { SSM_ERRORS } from "./errors.js";
import { planRef, toResult, type SsmPlan } from "./refs.js";

/** AWS error names that mean the reference (not the permission) is wrong. */
const INVALID = new Set(["ValidationException", "UnsupportedParameterType", "InvalidFilterKey", "InvalidFilterOption", "InvalidFilterValue"]);

function failed(label: string, err: unknown): CheckResult {
  const typed = SSM_ERRORS.from(label, err);
  if (INVALID.has(SSM_ERRORS.facts(err).name) || /no AWS region/.test(typed.message)) return { status: "invalid", reason: typed.message };
  const cls = classifyError(typed);
  return { status: cls === "not_found" ? "not_set" : cls === "transient" ? "unreachable" : "denied", reason: typed.message };
}

/** Checks one ssm reference. */
export async function checkSsm(getApi: () => Promise<SsmApi>, ref: SecretRef, ctx: CheckContext): Promise<CheckResult> {
  let plan: SsmPlan;
  try {
    plan = planRef(ref);
  } catch (err) {
    return { status: "invalid", reason: (err as Error).message };
  }
  const decrypt = ctx.read === true;
  try {
    const api = await getApi();
    const region = await api.region();
    if (plan.kind === "path") {
      const answer = await api.getParametersByPath(plan.path, ctx.signal, { maxPages: 1, onRequest: () => undefined, decrypt });
      if (answer.parameters.length === 0) return { status: "not_set", reason: `${plan.label}: no parameter below ${plan.prefix}` };
      return { status: "ok", reason: `GetParametersByPath answered (region ${region})${decrypt ? ", decrypted (values discarded)" : "; kms:Decrypt for SecureStrings can only be proven by reading (--read)"}` };
    }
    const p = await api.getParameter(plan.request, ctx.signal, decrypt);
    const secure = p.type === "SecureString";
    if (decrypt || !secure) {
      const r = toResult(plan, p);
      if (r instanceof SecretNotFoundError) return { status: "not_set", reason: r.message };
    }
    const how = decrypt ? "read and decrypted (value discarded)" : secure ? "a SecureString, not decrypted: kms:Decrypt can only be proven by reading (--read)" : `a ${p.type ?? "String"}`;
    return { status: "ok", reason: `GetParameter: version ${p.version}, ${how} (region ${region})` };
  } catch (err) {
    return failed(plan.label, err);
  }
}
