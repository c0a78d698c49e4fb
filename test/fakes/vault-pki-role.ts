/**
 * PKI roles of the fake Vault: the parameters of `POST <pki>/roles/:name`
 * (api-docs/secret/pki "Create/Update role") with Vault's defaults, and the name checks Vault's
 * `validateNames` makes (cert_util.go): bare domains, subdomains, globs, wildcards, localhost,
 * `allow_any_name`, `enforce_hostnames`.
 */
import { commaList, goDuration, parseDuration } from "./vault-util.js";

/**
 * A PKI role as written to `pki/roles/:name` — Vault's own parameter names. Durations take
 * seconds or Go durations (`"30s"`, `"1h"`). Unset fields get Vault's defaults.
 */
export interface FakePkiRoleParams {
  ttl?: string | number;
  max_ttl?: string | number;
  allowed_domains?: string | string[];
  allow_bare_domains?: boolean;
  allow_subdomains?: boolean;
  allow_glob_domains?: boolean;
  allow_wildcard_certificates?: boolean;
  allow_any_name?: boolean;
  allow_localhost?: boolean;
  allow_ip_sans?: boolean;
  enforce_hostnames?: boolean;
  key_type?: "rsa" | "ec" | "any";
  key_bits?: number;
  use_csr_common_name?: boolean;
  use_csr_sans?: boolean;
  require_cn?: boolean;
  server_flag?: boolean;
  client_flag?: boolean;
  generate_lease?: boolean;
  no_store?: boolean;
  not_before_duration?: string | number;
}

/** A role with every field resolved. */
export interface PkiRole {
  readonly ttl: number;
  readonly max_ttl: number;
  readonly allowed_domains: string[];
  readonly allow_bare_domains: boolean;
  readonly allow_subdomains: boolean;
  readonly allow_glob_domains: boolean;
  readonly allow_wildcard_certificates: boolean;
  readonly allow_any_name: boolean;
  readonly allow_localhost: boolean;
  readonly allow_ip_sans: boolean;
  readonly enforce_hostnames: boolean;
  readonly key_type: "rsa" | "ec" | "any";
  readonly key_bits: number;
  readonly use_csr_common_name: boolean;
  readonly use_csr_sans: boolean;
  readonly require_cn: boolean;
  readonly server_flag: boolean;
  readonly client_flag: boolean;
  readonly generate_lease: boolean;
  readonly no_store: boolean;
  readonly not_before_duration: number;
}

/** A role parameter that could not be read (answered 400). */
export class RoleParamError extends Error {}

function bool(v: unknown, def: boolean, field: string): boolean {
  if (v === undefined || v === null) return def;
  if (typeof v === "boolean") return v;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new RoleParamError(`error converting input ${String(v)} for field "${field}": cannot parse '' as bool`);
}

function dur(v: unknown, def: number, field: string): number {
  if (v === undefined || v === null || v === "") return def;
  const n = parseDuration(v);
  if (n === undefined) throw new RoleParamError(`error converting input ${String(v)} for field "${field}": time: invalid duration "${String(v)}"`);
  return n;
}

/** Resolves role parameters with Vault's defaults. */
export function resolveRole(p: FakePkiRoleParams | Record<string, unknown>): PkiRole {
  const r = p as Record<string, unknown>;
  const keyType = (r.key_type ?? "rsa") as string;
  if (keyType !== "rsa" && keyType !== "ec" && keyType !== "any") throw new RoleParamError(`unknown key type ${keyType}`);
  const bitsIn = r.key_bits === undefined ? 0 : Number(r.key_bits);
  const keyBits = bitsIn !== 0 ? bitsIn : keyType === "rsa" ? 2048 : keyType === "ec" ? 256 : 0;
  if (keyType === "rsa" && ![2048, 3072, 4096, 8192].includes(keyBits)) throw new RoleParamError(`unsupported bit length for RSA key: ${keyBits}`);
  if (keyType === "ec" && ![224, 256, 384, 521].includes(keyBits)) throw new RoleParamError(`unsupported bit length for EC key: ${keyBits}`);
  return {
    ttl: dur(r.ttl, 0, "ttl"),
    max_ttl: dur(r.max_ttl, 0, "max_ttl"),
    allowed_domains: commaList(r.allowed_domains),
    allow_bare_domains: bool(r.allow_bare_domains, false, "allow_bare_domains"),
    allow_subdomains: bool(r.allow_subdomains, false, "allow_subdomains"),
    allow_glob_domains: bool(r.allow_glob_domains, false, "allow_glob_domains"),
    allow_wildcard_certificates: bool(r.allow_wildcard_certificates, true, "allow_wildcard_certificates"),
    allow_any_name: bool(r.allow_any_name, false, "allow_any_name"),
    allow_localhost: bool(r.allow_localhost, true, "allow_localhost"),
    allow_ip_sans: bool(r.allow_ip_sans, true, "allow_ip_sans"),
    enforce_hostnames: bool(r.enforce_hostnames, true, "enforce_hostnames"),
    key_type: keyType,
    key_bits: keyBits,
    use_csr_common_name: bool(r.use_csr_common_name, true, "use_csr_common_name"),
    use_csr_sans: bool(r.use_csr_sans, true, "use_csr_sans"),
    require_cn: bool(r.require_cn, true, "require_cn"),
    server_flag: bool(r.server_flag, true, "server_flag"),
    client_flag: bool(r.client_flag, true, "client_flag"),
    generate_lease: bool(r.generate_lease, false, "generate_lease"),
    no_store: bool(r.no_store, false, "no_store"),
    not_before_duration: dur(r.not_before_duration, 30, "not_before_duration"),
  };
}

/** The role as `GET <pki>/roles/:name` shows it (durations in seconds). */
export function roleData(r: PkiRole): Record<string, unknown> {
  return { ...r, key_usage: ["DigitalSignature", "KeyAgreement", "KeyEncipherment"], ext_key_usage: [], issuer_ref: "default", not_before_duration_string: goDuration(r.not_before_duration) };
}

/** Vault's hostnameRegex (cert_util.go). */
export const HOSTNAME = /^(\*\.)?(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])\.?$/;
const LEFT_WILD_LABEL = /^[a-zA-Z0-9-]*\*[a-zA-Z0-9-]*$/;

function glob(pattern: string, name: string): boolean {
  const re = pattern
    .split("*")
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${re}$`).test(name);
}

const eq = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** Whether the role allows `name` (a CN, DNS SAN or email address), as Vault's validateNames decides. */
export function nameAllowed(r: PkiRole, name: string): boolean {
  let reduced = name;
  let emailDomain = name;
  let isEmail = false;
  let isWildcard = false;
  let wildcardLabel = "";
  if (reduced.includes("@")) {
    const parts = reduced.split("@");
    if (parts.length !== 2) return false;
    reduced = emailDomain = parts[1]!;
    isEmail = true;
  }
  if (reduced.includes("*")) {
    isWildcard = true;
    if (!r.allow_wildcard_certificates) return false;
    if (reduced.split("*").length > 2) return false;
    const i = reduced.indexOf(".");
    if (i < 0) {
      wildcardLabel = reduced;
      reduced = "";
    } else {
      wildcardLabel = reduced.slice(0, i);
      reduced = reduced.slice(i + 1);
      if (reduced.includes("*")) return false;
    }
  }
  if (isEmail && isWildcard) return false;
  if (r.enforce_hostnames) {
    if (reduced !== "" && !HOSTNAME.test(reduced)) return false;
    if (isWildcard && !LEFT_WILD_LABEL.test(wildcardLabel)) return false;
  }
  if (r.allow_any_name) return true;
  if (r.allow_localhost) {
    for (const local of ["localhost", "localdomain"]) {
      if (reduced === local || (isEmail && emailDomain === local)) return true;
      if (r.allow_subdomains && (reduced.endsWith(`.${local}`) || (isWildcard && reduced === local))) return true;
    }
  }
  for (const d of r.allowed_domains) {
    if (d === "") continue;
    if (r.allow_bare_domains && (eq(name, d) || (isEmail && eq(emailDomain, d)))) return true;
    if (r.allow_subdomains && (reduced.toLowerCase().endsWith(`.${d.toLowerCase()}`) || (isWildcard && eq(reduced, d)))) return true;
    if (r.allow_glob_domains && d.includes("*") && glob(d, name)) return true;
  }
  return false;
}
