/**
 * What an `ssm:` reference asks for: one parameter (a name or ARN, optionally a version or label),
 * or every parameter below a path (a name ending in `/`).
 */
import { FatalError, INTENTIONALLY_EMPTY, SecretNotFoundError, contentVersion, refKey, type Secret, type SecretRef } from "../../src/api/index.js";
import type { ParameterResult } from "./client.js";

/** Long-form options an `ssm` reference accepts. */
export const SSM_REF_OPTIONS = ["version", "label"] as const;

interface PlanBase {
  readonly ref: SecretRef;
  /** {@link refKey} of the reference: the key of fetchMany's maps. */
  readonly key: string;
  /** For messages: `ssm:/prod/db` or `ssm:/prod/db?version=3`. */
  readonly label: string;
}

/** One parameter. */
export interface ParameterPlan extends PlanBase {
  readonly kind: "parameter";
  /** The name or ARN, without a selector. */
  readonly name: string;
  /** A version number (digits) or a label, as GetParameter's `name:selector` takes it. */
  readonly selector?: string;
  /** What is sent as `Name`: `name` or `name:selector`. One request per distinct value. */
  readonly request: string;
  /**
   * The parameter's name without a leading `/` (for an ARN: the part after `parameter/`). Two
   * requests of one group never share a GetParameters call: the answer names the parameter, not
   * the selector, so it could not tell them apart.
   */
  readonly group: string;
}

/** Every parameter below a path. */
export interface PathPlan extends PlanBase {
  readonly kind: "path";
  /** What is sent as GetParametersByPath's `Path`: without the trailing `/` (except the root `/`). */
  readonly path: string;
  /** The path with its trailing `/`: stripped from the names to make the object's keys. */
  readonly prefix: string;
}

/** A validated reference. */
export type SsmPlan = ParameterPlan | PathPlan;

/** A parameter name's characters. */
const NAME = /^[A-Za-z0-9_.\-/]{1,1011}$/;
const ARN = /^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter\/[A-Za-z0-9_.\-/]{1,1011}$/;
const VERSION = /^[1-9][0-9]{0,9}$/;
/** Labels: letters, digits, `.` `-` `_`; not starting with a digit (that is a version) or with aws/ssm. */
const LABEL = /^[A-Za-z_.\-][A-Za-z0-9_.\-]{0,99}$/;

function checkName(label: string, name: string, isPath: boolean): void {
  if (!NAME.test(name)) throw new FatalError(`${label}: a parameter name is 1 to 1011 letters, digits and _.-/ characters`);
  if (name.includes("/") && !name.startsWith("/")) {
    throw new FatalError(`${label}: a name with a hierarchy must start with "/" (e.g. /prod/consul/gossip)`);
  }
  if (name.includes("//")) throw new FatalError(`${label}: "//" is not allowed in a parameter name`);
  if (isPath && !name.startsWith("/")) throw new FatalError(`${label}: a path must start with "/" (e.g. /prod/app/)`);
}

function checkSelector(label: string, sel: string, what: string): string {
  if (VERSION.test(sel)) return sel;
  if (LABEL.test(sel) && !/^(aws|ssm)/i.test(sel)) return sel;
  throw new FatalError(`${label}: ${what} "${sel}" is neither a version number nor a label (letters, digits, . - _, not starting with a digit, aws or ssm)`);
}

/**
 * Validates a reference and works out what to fetch.
 * @throws {@link FatalError} naming the reference and what is wrong with it.
 */
export function planRef(ref: SecretRef): SsmPlan {
  const key = refKey(ref);
  const label = key;
  for (const k of Object.keys(ref.options)) {
    if (!(SSM_REF_OPTIONS as readonly string[]).includes(k)) {
      throw new FatalError(`${label}: unknown option "${k}" for ssm (known: ${SSM_REF_OPTIONS.join(", ")})`);
    }
  }
  const { version, label: labelOpt } = ref.options;
  if (version !== undefined && labelOpt !== undefined) throw new FatalError(`${label}: give version or label, not both`);
  let optSelector: string | undefined;
  if (version !== undefined) {
    const v = String(version);
    if (!(typeof version === "number" || typeof version === "string") || !VERSION.test(v)) throw new FatalError(`${label}: version must be a positive whole number`);
    optSelector = v;
  } else if (labelOpt !== undefined) {
    if (typeof labelOpt !== "string" || VERSION.test(labelOpt)) throw new FatalError(`${label}: label must be a label name (use version: for a number)`);
    optSelector = checkSelector(label, labelOpt, "label");
  }

  // Split an inline selector off: `/prod/db:3`, `arn:…:parameter/prod/db:blue`. Names hold no ":".
  let id = ref.id;
  const isArn = id.startsWith("arn:");
  let inline: string | undefined;
  const at = isArn ? id.indexOf(":parameter/") : -1;
  const colon = id.indexOf(":", isArn ? (at === -1 ? id.length : at + ":parameter/".length) : 0);
  if (colon !== -1) {
    inline = id.slice(colon + 1);
    id = id.slice(0, colon);
    checkSelector(label, inline, "selector");
  }
  if (inline !== undefined && optSelector !== undefined) throw new FatalError(`${label}: give a selector in the name or a version/label option, not both`);
  const selector = inline ?? optSelector;

  if (isArn) {
    if (!ARN.test(id)) throw new FatalError(`${label}: "${id}" is not a Parameter Store ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)`);
    if (id.endsWith("/")) throw new FatalError(`${label}: a path is given by name (ssm:/prod/app/), not by ARN`);
    const rest = id.slice(id.indexOf(":parameter/") + ":parameter/".length);
    return { kind: "parameter", ref, key, label, name: id, ...(selector !== undefined ? { selector } : {}), request: selector !== undefined ? `${id}:${selector}` : id, group: rest };
  }

  if (id.endsWith("/")) {
    checkName(label, id, true);
    if (selector !== undefined) throw new FatalError(`${label}: a path takes no version or label (each parameter below it is read at its latest version)`);
    const path = id === "/" ? "/" : id.slice(0, -1);
    return { kind: "path", ref, key, label, path, prefix: id };
  }
  checkName(label, id, false);
  return {
    kind: "parameter",
    ref,
    key,
    label,
    name: id,
    ...(selector !== undefined ? { selector } : {}),
    request: selector !== undefined ? `${id}:${selector}` : id,
    group: id.replace(/^\//, ""),
  };
}

/** True when `p` is the parameter a request of `plan` names: by name, or by ARN. */
export function answers(plan: ParameterPlan, p: ParameterResult): boolean {
  return p.name === plan.name || (p.arn !== undefined && p.arn === plan.name);
}

/** A version that changes whenever the parameter is written again, even after a delete and re-create. */
function versionOf(p: ParameterResult): string {
  return p.lastModifiedMs !== undefined ? `${p.version}@${p.lastModifiedMs}` : String(p.version);
}

/**
 * The Secret for a parameter read: the value as stored (a StringList is its comma text, a
 * SecureString is decrypted). An empty value or `intentionally-empty` is reported as not yet set,
 * so the scheduler polls it at the retry interval, as the original did.
 */
export function toResult(plan: ParameterPlan, p: ParameterResult): Secret | SecretNotFoundError {
  const t = p.value.trim();
  if (t === "" || t === INTENTIONALLY_EMPTY) return new SecretNotFoundError(`${plan.label}: the value is empty or "${INTENTIONALLY_EMPTY}"`);
  return { value: p.value, version: versionOf(p) };
}

/**
 * The Secret for a path: a JSON object whose keys are the names below the path, relative to it
 * (`/prod/app/db/password` under `/prod/app/` is `"db/password"`), sorted, each with its value as
 * text. No parameter below the path is "not yet set".
 */
export function pathResult(plan: PathPlan, params: readonly ParameterResult[]): Secret | SecretNotFoundError {
  if (params.length === 0) return new SecretNotFoundError(`${plan.label}: no parameter below the path yet`);
  const entries = params
    .map((p): [string, string] => [p.name.startsWith(plan.prefix) ? p.name.slice(plan.prefix.length) : p.name, p.value])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Object.fromEntries defines own properties: a parameter called "__proto__" stays a key.
  const data = Object.fromEntries(entries) as Record<string, string>;
  const value = JSON.stringify(data);
  return { value, data, version: "path:" + contentVersion(value) };
}

/** `next`, or `prev` when it is the same value at the same version (no re-render, same object). */
export function keepPrevious(next: Secret | Error, prev: Secret | undefined): Secret | Error {
  if (next instanceof Error || prev === undefined) return next;
  return prev.version === next.version && prev.value === next.value ? prev : next;
}
