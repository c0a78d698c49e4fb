/**
 * What an `awssm:` reference asks for: the secret id, which version, and how to render binary.
 */
import { Buffer } from "node:buffer";
import { FatalError, INTENTIONALLY_EMPTY, SecretNotFoundError, isUnsetValue, refKey, type Secret, type SecretRef } from "../../src/api/index.js";
import type { ValueResult } from "./client.js";

/**
 * How a SecretBinary reaches a template. Kept for compatibility: the core's long-form
 * `encoding:` (utf8, binary, base64) now applies to every backend, and a SecretBinary without
 * one is rendered as base64, as before.
 * @deprecated use the core's `encoding:` (`ValueEncoding`)
 */
export type BinaryEncoding = "base64" | "utf8";

/** Long-form options an `awssm` reference accepts (`encoding:` is the core's, for every backend). */
export const AWSSM_REF_OPTIONS = ["version_stage", "version_id"] as const;

/** The stage GetSecretValue reads when none is given. */
export const CURRENT_STAGE = "AWSCURRENT";

/** A validated reference. */
export interface AwsSmRef {
  readonly ref: SecretRef;
  /** {@link refKey} of the reference: the key of fetchMany's maps. */
  readonly key: string;
  /** For messages: `awssm:prod/db` or `awssm:prod/db?version_stage=AWSPENDING`. */
  readonly label: string;
  /** Secret name, full ARN or partial ARN. */
  readonly id: string;
  /** Staging label to follow. Undefined with a pinned `versionId` and no explicit stage. */
  readonly stage?: string;
  /** A pinned, immutable version. */
  readonly versionId?: string;
}

const NAME = /^[A-Za-z0-9/_+=.@!-]{1,512}$/;
const ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]{1,512}$/;
const STAGE = /^[A-Za-z0-9_.+=@/-]{1,256}$/;
const VERSION_ID = /^[A-Za-z0-9-]{1,64}$/;

function option(ref: SecretRef, key: string, label: string, re: RegExp, what: string): string | undefined {
  const v = ref.options[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !re.test(v)) throw new FatalError(`${label}: ${key} must be ${what}`);
  return v;
}

/**
 * Validates a reference and works out what to fetch.
 * @throws {@link FatalError} naming the reference and what is wrong with it.
 */
export function planRef(ref: SecretRef): AwsSmRef {
  const key = refKey(ref);
  const label = key;
  const id = ref.id;
  if (id.startsWith("arn:")) {
    if (!ARN.test(id)) throw new FatalError(`${label}: "${id}" is not a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)`);
  } else if (!NAME.test(id)) {
    throw new FatalError(`${label}: a secret name is 1 to 512 letters, digits and /_+=.@- characters`);
  }
  for (const k of Object.keys(ref.options)) {
    if (!(AWSSM_REF_OPTIONS as readonly string[]).includes(k)) {
      throw new FatalError(`${label}: unknown option "${k}" for awssm (known: ${AWSSM_REF_OPTIONS.join(", ")})`);
    }
  }
  const stage = option(ref, "version_stage", label, STAGE, "a staging label such as AWSCURRENT, AWSPREVIOUS or AWSPENDING");
  const versionId = option(ref, "version_id", label, VERSION_ID, "a version id (letters, digits and -)");
  return {
    ref,
    key,
    label,
    id,
    ...(stage !== undefined ? { stage } : versionId === undefined ? { stage: CURRENT_STAGE } : {}),
    ...(versionId !== undefined ? { versionId } : {}),
  };
}

/** True when BatchGetSecretValue can fetch it: it only ever returns AWSCURRENT. */
export function batchable(p: AwsSmRef): boolean {
  return p.versionId === undefined && p.stage === CURRENT_STAGE;
}

/**
 * True when a batch answer entry is the secret `id` names: by name, by full ARN, or by partial
 * ARN (the full ARN without its 6-character random suffix).
 */
export function sameSecret(id: string, v: { name?: string; arn?: string }): boolean {
  if (v.name === id || v.arn === id) return true;
  return id.startsWith("arn:") && v.arn !== undefined && v.arn.length === id.length + 7 && v.arn.startsWith(id + "-");
}

/**
 * The Secret for a fetched value: SecretString as it is; SecretBinary as its bytes, marked
 * `binary` (the core renders it as base64 unless the reference says `encoding:`); nothing at all
 * as the empty string (which the core reads as "not set").
 */
export function toSecret(_p: AwsSmRef, v: ValueResult): Secret {
  const version = v.versionId ? { version: v.versionId } : {};
  if (v.secretString !== undefined) return { value: v.secretString, ...version };
  if (v.secretBinary !== undefined) return { value: Buffer.from(v.secretBinary), binary: true, ...version };
  return { value: "", ...version };
}

/**
 * {@link toSecret}, except that a value that is empty or the original's placeholder
 * `intentionally-empty` (after trimming) is reported as not yet set. The core would read it as
 * not set too, but only the backend's error makes the scheduler poll it at the retry interval
 * (10 s, as the original did) instead of the one-hour refresh.
 */
export function toResult(p: AwsSmRef, v: ValueResult): Secret | SecretNotFoundError {
  const s = toSecret(p, v);
  if (isUnsetValue(s.value)) return new SecretNotFoundError(`${p.label}: the value is empty or "${INTENTIONALLY_EMPTY}"`);
  return s;
}
