/**
 * What an `awssm:` reference asks for: the secret id, which version, and how to render binary.
 */
import { Buffer } from "node:buffer";
import { FatalError, INTENTIONALLY_EMPTY, SecretNotFoundError, refKey, type Secret, type SecretRef } from "../../src/api/index.js";
import type { ValueResult } from "./client.js";

/** How a SecretBinary is turned into text. */
export type BinaryEncoding = "base64" | "utf8";

/** Long-form options an `awssm` reference accepts. */
export const AWSSM_REF_OPTIONS = ["version_stage", "version_id", "encoding"] as const;

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
  /** @defaultValue "base64" */
  readonly encoding: BinaryEncoding;
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
  const enc = option(ref, "encoding", label, /^(base64|utf8)$/, `"base64" or "utf8"`);
  return {
    ref,
    key,
    label,
    id,
    ...(stage !== undefined ? { stage } : versionId === undefined ? { stage: CURRENT_STAGE } : {}),
    ...(versionId !== undefined ? { versionId } : {}),
    encoding: (enc as BinaryEncoding | undefined) ?? "base64",
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
 * The Secret for a fetched value: SecretString as it is, SecretBinary as base64 (or UTF-8 text
 * with `encoding: utf8`), nothing at all as the empty string (which the core reads as "not set").
 */
export function toSecret(p: AwsSmRef, v: ValueResult): Secret {
  let value = "";
  if (v.secretString !== undefined) value = v.secretString;
  else if (v.secretBinary !== undefined) value = Buffer.from(v.secretBinary).toString(p.encoding === "utf8" ? "utf8" : "base64");
  return { value, ...(v.versionId ? { version: v.versionId } : {}) };
}

/**
 * {@link toSecret}, except that a value that is empty or the original's placeholder
 * `intentionally-empty` (after trimming) is reported as not yet set. The core would read it as
 * not set too, but only the backend's error makes the scheduler poll it at the retry interval
 * (10 s, as the original did) instead of the one-hour refresh.
 */
export function toResult(p: AwsSmRef, v: ValueResult): Secret | SecretNotFoundError {
  const s = toSecret(p, v);
  const t = s.value.trim();
  if (t === "" || t === INTENTIONALLY_EMPTY) return new SecretNotFoundError(`${p.label}: the value is empty or "${INTENTIONALLY_EMPTY}"`);
  return s;
}
