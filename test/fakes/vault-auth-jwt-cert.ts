/**
 * JWT and TLS-certificate auth engines of the fake Vault (api-docs/auth/jwt "JWT login",
 * api-docs/auth/cert "Login with TLS certificate"), with the checks and error texts of OpenBao's
 * builtin/credential/jwt (path_login.go, hashicorp/cap jwt.Validator) and
 * builtin/credential/cert (path_login.go). Every failure is 400 with `{"errors": [...]}`.
 *
 * JWT: the signature is verified against the PEM public keys the test configures (the mount's
 * `jwt_validation_pubkeys`); RS/PS/ES 256–512 and EdDSA. Then `alg`, `iss`, `sub`, `aud`, and
 * the time claims (`exp`, `nbf`, `iat`, with a clock-skew leeway of 60 s by default), the user
 * claim and bound claims are checked as Vault does.
 *
 * Cert: the listener must be HTTPS and ask for a client certificate (FakeVault's
 * `tls.clientCerts: "request"`). The client's chain must lead to the role's `certificate`
 * (a CA), or be that very certificate; `allowedCommonNames` (globs) constrain it further.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { constants, createPublicKey, verify, X509Certificate, type KeyObject } from "node:crypto";
import type { LoginFailure, LoginGrant } from "./vault-auth.js";

/** A role of a JWT auth mount, with the mount's validation keys. */
export interface FakeJwtRole {
  readonly mount: string;
  readonly name: string;
  /** The mount's `jwt_validation_pubkeys` (PEM public keys or certificates, or KeyObjects). */
  readonly publicKeys: readonly (string | KeyObject)[];
  /** The mount's `bound_issuer`. */
  readonly boundIssuer?: string;
  readonly boundAudiences?: readonly string[];
  readonly boundSubject?: string;
  /** Claim → accepted value(s). */
  readonly boundClaims?: Readonly<Record<string, string | readonly string[]>>;
  /** @defaultValue "sub" */
  readonly userClaim: string;
  /** The mount's `jwt_supported_algs`. @defaultValue every algorithm Vault accepts */
  readonly supportedAlgs?: readonly string[];
  /** Seconds. @defaultValue 60 */
  readonly clockSkewLeeway: number;
  readonly policies: readonly string[];
  readonly tokenTtl: number;
  readonly tokenMaxTtl?: number;
  readonly renewable: boolean;
}

/** A role of a cert auth mount (`auth/cert/certs/:name`). */
export interface FakeCertRole {
  readonly mount: string;
  readonly name: string;
  /** The trusted CA, or the one client certificate this role accepts (PEM). */
  readonly certificate: string;
  /** CN globs the client certificate must match. */
  readonly allowedCommonNames?: readonly string[];
  readonly policies: readonly string[];
  readonly tokenTtl: number;
  readonly tokenMaxTtl?: number;
  readonly renewable: boolean;
}

const ALL_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"];
const fail = (...errors: string[]): LoginFailure => ({ status: 400, errors });

function b64url(s: string): Buffer {
  return Buffer.from(s, "base64url");
}

function verifyJws(alg: string, key: KeyObject, signingInput: string, sig: Buffer): boolean {
  const hash = alg === "EdDSA" ? null : `sha${alg.slice(2)}`;
  try {
    if (alg.startsWith("RS")) return key.asymmetricKeyType === "rsa" && verify(hash, Buffer.from(signingInput), key, sig);
    if (alg.startsWith("PS")) return key.asymmetricKeyType === "rsa" && verify(hash, Buffer.from(signingInput), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    if (alg.startsWith("ES")) return key.asymmetricKeyType === "ec" && verify(hash, Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" }, sig);
    if (alg === "EdDSA") return key.asymmetricKeyType === "ed25519" && verify(null, Buffer.from(signingInput), key, sig);
  } catch {
    return false;
  }
  return false;
}

function toKey(k: string | KeyObject): KeyObject {
  if (typeof k !== "string") return k;
  return k.includes("CERTIFICATE") ? new X509Certificate(k).publicKey : createPublicKey(k);
}

/** `POST auth/<mount>/login {role, jwt}` of a JWT mount. */
export function jwtLogin(roles: readonly FakeJwtRole[], mount: string, body: Record<string, unknown>, nowMs: number): LoginGrant | LoginFailure {
  const roleName = typeof body.role === "string" ? body.role : "";
  if (roleName === "") return fail("missing role");
  const role = roles.find((r) => r.mount === mount && r.name === roleName);
  if (!role) return fail(`role "${roleName}" could not be found`);
  const token = typeof body.jwt === "string" ? body.jwt : "";
  if (token === "") return fail("missing token");
  const v = (msg: string): LoginFailure => fail(`error validating token: ${msg}`);
  const parts = token.split(".");
  if (parts.length !== 3) return v("error verifying token signature: go-jose/go-jose: compact JWS format must have three parts");
  let header: { alg?: string };
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(b64url(parts[0]!).toString("utf8")) as { alg?: string };
    claims = JSON.parse(b64url(parts[1]!).toString("utf8")) as Record<string, unknown>;
  } catch {
    return v("error verifying token signature: go-jose/go-jose: invalid character in token");
  }
  const alg = header.alg ?? "";
  const signingInput = `${parts[0]}.${parts[1]}`;
  if (!role.publicKeys.map(toKey).some((k) => verifyJws(alg, k, signingInput, b64url(parts[2]!)))) {
    return v("error verifying token signature: no known key successfully validated the token signature");
  }
  if (!(role.supportedAlgs ?? ALL_ALGS).includes(alg)) return v("invalid algorithm (alg) header parameter: token signed with unexpected algorithm");
  if (role.boundIssuer && claims.iss !== role.boundIssuer) return v("invalid issuer (iss) claim");
  if (role.boundSubject && claims.sub !== role.boundSubject) return v("invalid subject (sub) claim");
  const aud = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)];
  if (role.boundAudiences?.length && !role.boundAudiences.some((a) => aud.includes(a))) return v("invalid audience (aud) claim: audience claim does not match any expected audience");
  const num = (x: unknown): number => (typeof x === "number" ? x : 0);
  let [iat, exp, nbf] = [num(claims.iat), num(claims.exp), num(claims.nbf)];
  if (iat === 0 && exp === 0 && nbf === 0) return v("no issued at (iat), not before (nbf), or expiration time (exp) claims in token");
  if (exp === 0) exp = Math.max(iat, nbf) + 150;
  if (nbf === 0) nbf = iat !== 0 ? iat : exp - 150;
  const now = nowMs / 1000;
  const skew = role.clockSkewLeeway;
  if (now + skew < nbf) return v("invalid not before (nbf) claim: token not yet valid");
  if (now - skew > exp) return v("invalid expiration time (exp) claim: token is expired");
  if (iat !== 0 && now + skew < iat) return v("invalid issued at (iat) claim: token issued in the future");
  if (aud.length > 0 && !role.boundAudiences?.length) return fail("audience claim found in JWT but no audiences bound to the role");
  const user = claims[role.userClaim];
  if (user === undefined || user === null) return fail(`claim "${role.userClaim}" not found in token`);
  if (typeof user !== "string") return fail(`claim "${role.userClaim}" could not be converted to string`);
  for (const [claim, want] of Object.entries(role.boundClaims ?? {})) {
    const got = claims[claim];
    if (got === undefined) return fail(`error validating claims: claim "${claim}" is missing`);
    const wants = typeof want === "string" ? [want] : want;
    const gots = Array.isArray(got) ? got.map(String) : [String(got)];
    if (!gots.some((g) => wants.includes(g))) return fail(`error validating claims: claim "${claim}" does not match any associated bound claim values`);
  }
  return {
    policies: role.policies,
    ttl: role.tokenTtl,
    ...(role.tokenMaxTtl !== undefined ? { maxTtl: role.tokenMaxTtl } : {}),
    renewable: role.renewable,
    metadata: { role: roleName },
    path: `auth/${mount}/login`,
  };
}

function cnGlob(pattern: string, cn: string): boolean {
  const re = pattern
    .split("*")
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${re}$`).test(cn);
}

function keyIdHex(der: Buffer, ext: typeof x509.SubjectKeyIdentifierExtension | typeof x509.AuthorityKeyIdentifierExtension): string {
  const c = new x509.X509Certificate(der);
  const e = c.getExtension(ext as typeof x509.SubjectKeyIdentifierExtension);
  const id = e?.keyId ?? "";
  return id.toLowerCase().match(/../g)?.join(":") ?? "";
}

/**
 * `POST auth/<mount>/login {name?}` of a cert mount. `chain` is the client's certificate chain
 * (DER, leaf first) as the TLS layer saw it; undefined over plain HTTP.
 */
export function certLogin(roles: readonly FakeCertRole[], mount: string, body: Record<string, unknown>, chain: readonly Buffer[] | undefined, nowMs: number): LoginGrant | LoginFailure {
  if (chain === undefined) return fail("tls connection not found");
  if (chain.length === 0) return fail("no client certificate found");
  const certs = chain.map((d) => new X509Certificate(d));
  const leaf = certs[0]!;
  const name = typeof body.name === "string" ? body.name : "";
  const candidates = roles.filter((r) => r.mount === mount && (name === "" || r.name === name));
  const timeOk = (c: X509Certificate): boolean => nowMs >= Date.parse(c.validFrom) && nowMs <= Date.parse(c.validTo);
  const clientEku = leaf.keyUsage === undefined || leaf.keyUsage.includes("1.3.6.1.5.5.7.3.2") || leaf.keyUsage.includes("2.5.29.37.0");
  const trusted = candidates.filter((r) => {
    const t = new X509Certificate(r.certificate);
    if (!t.ca) return t.raw.equals(leaf.raw) && timeOk(leaf);
    if (!clientEku || !certs.every(timeOk)) return false;
    // Walk the presented chain up to a certificate the role's CA issued.
    for (let i = 0; i < certs.length; i++) {
      const c = certs[i]!;
      if (i > 0 && !(certs[i - 1]!.checkIssued(c) && certs[i - 1]!.verify(c.publicKey))) return false;
      if (c.raw.equals(t.raw)) return i > 0;
      if (c.checkIssued(t) && c.verify(t.publicKey)) return true;
    }
    return false;
  });
  if (trusted.length === 0) return fail("invalid certificate or no client certificate supplied");
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1] ?? "";
  const matched = trusted.find((r) => !r.allowedCommonNames?.length || r.allowedCommonNames.some((p) => cnGlob(p, cn)));
  if (!matched) return fail("no chain matching all constraints could be found for this login certificate");
  return {
    policies: matched.policies,
    ttl: matched.tokenTtl,
    ...(matched.tokenMaxTtl !== undefined ? { maxTtl: matched.tokenMaxTtl } : {}),
    renewable: matched.renewable,
    metadata: {
      authority_key_id: keyIdHex(leaf.raw, x509.AuthorityKeyIdentifierExtension),
      cert_name: matched.name,
      common_name: cn,
      serial_number: BigInt(`0x${leaf.serialNumber}`).toString(10),
      subject_key_id: keyIdHex(leaf.raw, x509.SubjectKeyIdentifierExtension),
    },
    path: `auth/${mount}/login`,
  };
}
