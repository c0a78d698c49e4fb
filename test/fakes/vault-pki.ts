/**
 * The PKI secrets engine of the fake Vault, checked against api-docs/secret/pki and OpenBao's
 * builtin/logical/pki (path_issue_sign.go, path_fetch.go, cert_util.go). The CA (a root, or a root
 * and an intermediate) is generated when the engine is mounted; every certificate is a real X.509
 * certificate with a real signature.
 *
 * - `POST <pki>/issue/:role` → `data {certificate, issuing_ca, ca_chain, private_key,
 *   private_key_type, serial_number, expiration, not_before}`; `lease_id` "" unless the role has
 *   `generate_lease`. `POST <pki>/sign/:role {csr}` → the same without a private key; the CSR's
 *   public key is certified. A GET on either → 405 "unsupported operation".
 * - params: `common_name`, `alt_names` (comma list; `@` makes an email SAN), `ip_sans`, `ttl`,
 *   `format` (pem, der, pem_bundle), `private_key_format` (der, pkcs8), `exclude_cn_from_sans`,
 *   `key_type`/`key_bits` when the role's key type is "any".
 * - errors (400, Vault's text): `unknown role: x`, `common name x not allowed by this role`,
 *   `subject alternate name x not allowed by this role`, `IP Subject Alternative Names are not
 *   allowed in this role, but was provided via the API`, `the common_name field is required, …`,
 *   `role requires keys of type rsa`, `"csr" is empty`, `csr contains no data`, `cannot satisfy
 *   request, as TTL would result in notAfter of … that is beyond the expiration of the CA …`. A
 *   TTL over the role's max_ttl is capped with Vault's warning.
 * - unauthenticated raw endpoints, without a trailing newline as Vault serves them: `ca/pem`
 *   (`application/pem-certificate-chain`), `ca` (DER, `application/pkix-cert`), `ca_chain`
 *   (PEM chain, `application/pkix-cert`), `crl/pem` (`application/x-pem-file`, `X509 CRL`), `crl`
 *   (DER, `application/pkix-crl`); JSON `cert/ca`, `cert/ca_chain`, `cert/crl`, `cert/:serial`
 *   → `data {certificate, revocation_time, revocation_time_rfc3339[, ca_chain]}`.
 * - `POST/GET <pki>/roles/:name`, `POST <pki>/revoke {serial_number}`.
 */
import { randomUUID } from "node:crypto";
import { X509Certificate } from "node:crypto";
import { colonHex, CsrError, isIpLiteral, newCa, newKeyPair, parseCsr, toPem, type FakeCa, type KeySpec, type ParsedCsr } from "./x509-util.js";
import { HOSTNAME, nameAllowed, resolveRole, roleData, RoleParamError, type FakePkiRoleParams, type PkiRole } from "./vault-pki-role.js";
import { commaList, errorReply, goDuration, multiError, parseDuration, UNSUPPORTED, type Reply } from "./vault-util.js";

export type { FakePkiRoleParams } from "./vault-pki-role.js";

/** Options for mounting the PKI engine. */
export interface FakePkiOptions {
  /** The CA's key. @defaultValue EC P-256 */
  readonly caKey?: KeySpec;
  /** The root's common name. @defaultValue "fake-vault root CA" */
  readonly commonName?: string;
  /** CA lifetime in seconds. @defaultValue 10 years */
  readonly caTtl?: number;
  /** Issue from an intermediate signed by the root (ca_chain then holds both). @defaultValue false */
  readonly intermediate?: boolean;
  /** The mount's default and max lease TTL (seconds): the TTL when neither request nor role sets one. @defaultValue 768h */
  readonly defaultLeaseTtl?: number;
  readonly maxLeaseTtl?: number;
}

/** A certificate the engine issued or signed. */
export interface FakeIssuedCert {
  readonly via: "issue" | "sign";
  readonly role: string;
  /** `39:dd:…` */
  readonly serialNumber: string;
  readonly certificate: string;
  readonly commonName: string;
  readonly notAfter: Date;
  /** The CSR as received (sign only). */
  readonly csr?: ParsedCsr;
  revokedAt?: number;
}

const SYSTEM_TTL = 2_764_800;

/** One PKI mount. */
export class FakePki {
  readonly roles = new Map<string, PkiRole>();
  /** Every certificate issued or signed, in order. */
  readonly issued: FakeIssuedCert[] = [];
  readonly #now: () => number;
  readonly #root: FakeCa;
  readonly #issuer: FakeCa;
  readonly #defaultTtl: number;
  readonly #maxTtl: number;

  private constructor(readonly mount: string, root: FakeCa, issuer: FakeCa, now: () => number, opts: FakePkiOptions) {
    this.#root = root;
    this.#issuer = issuer;
    this.#now = now;
    this.#defaultTtl = opts.defaultLeaseTtl ?? SYSTEM_TTL;
    this.#maxTtl = opts.maxLeaseTtl ?? SYSTEM_TTL;
  }

  /** Generates the CA and returns the engine for `mount` (`pki/`). */
  static async create(mount: string, now: () => number, opts: FakePkiOptions = {}): Promise<FakePki> {
    const start = new Date(now() - 60_000);
    const end = new Date(now() + (opts.caTtl ?? 10 * 365 * 86400) * 1000);
    const root = await newCa({ commonName: opts.commonName ?? "fake-vault root CA", spec: opts.caKey ?? { type: "ec", bits: 256 }, notBefore: start, notAfter: end });
    const issuer = opts.intermediate ? await newCa({ commonName: `${opts.commonName ?? "fake-vault"} intermediate CA`, spec: opts.caKey ?? { type: "ec", bits: 256 }, notBefore: start, notAfter: end, parent: root }) : root;
    return new FakePki(mount, root, issuer, now, opts);
  }

  /** The issuing CA (PEM). */
  get caPem(): string {
    return this.#issuer.certPem;
  }

  /** The root CA (PEM): what a client trusts. */
  get rootPem(): string {
    return this.#root.certPem;
  }

  /** The issuing CA's chain, itself first (what `ca_chain` holds). */
  get chainPem(): readonly string[] {
    return this.#issuer.chainPem;
  }

  /** Creates or replaces a role (Vault's parameter names and defaults). */
  role(name: string, params: FakePkiRoleParams = {}): PkiRole {
    const r = resolveRole(params);
    this.roles.set(name, r);
    return r;
  }

  /** Revokes a certificate by serial (`39:dd:…` or `39-dd-…`): it appears on the CRL. */
  revoke(serial: string): FakeIssuedCert | undefined {
    const c = this.#bySerial(serial);
    if (c && c.revokedAt === undefined) c.revokedAt = this.#now();
    return c;
  }

  #bySerial(serial: string): FakeIssuedCert | undefined {
    const s = serial.toLowerCase().replace(/-/g, ":");
    return this.issued.find((c) => c.serialNumber === s);
  }

  /** A GET Vault serves without a token (a login path); undefined for any other path. */
  async unauthenticated(method: string, rest: string): Promise<Reply | undefined> {
    const raw = ["ca", "ca/pem", "ca_chain", "crl", "crl/pem"].includes(rest);
    if (!raw && !rest.startsWith("cert/")) return undefined;
    if (method !== "GET") return UNSUPPORTED;
    switch (rest) {
      case "ca":
        return { status: 200, raw: { contentType: "application/pkix-cert", body: Buffer.from(this.#issuer.cert.rawData) } };
      case "ca/pem":
        return { status: 200, raw: { contentType: "application/pem-certificate-chain", body: this.#issuer.certPem } };
      case "ca_chain":
        return { status: 200, raw: { contentType: "application/pkix-cert", body: this.#issuer.chainPem.join("\n") } };
      case "crl":
        return { status: 200, raw: { contentType: "application/pkix-crl", body: Buffer.from((await this.#crl()).rawData) } };
      case "crl/pem":
        return { status: 200, raw: { contentType: "application/x-pem-file", body: toPem((await this.#crl()).rawData, "X509 CRL") } };
    }
    const serial = rest.slice("cert/".length);
    const data = (certificate: string, extra: Record<string, unknown> = {}): Reply => ({ status: 200, body: envelope({ data: { certificate, revocation_time: 0, revocation_time_rfc3339: "", ...extra } }) });
    if (serial === "ca") return data(this.#issuer.certPem);
    if (serial === "ca_chain") return data(this.#issuer.chainPem.join("\n"), { ca_chain: this.#issuer.chainPem.join("\n") });
    if (serial === "crl") return data(toPem((await this.#crl()).rawData, "X509 CRL"));
    const c = this.#bySerial(serial);
    if (!c) return errorReply(404);
    const t = c.revokedAt;
    return data(c.certificate, { revocation_time: t === undefined ? 0 : Math.floor(t / 1000), revocation_time_rfc3339: t === undefined ? "" : new Date(t).toISOString() });
  }

  #crl(): ReturnType<FakeCa["crl"]> {
    const revoked = this.issued.filter((c) => c.revokedAt !== undefined).map((c) => ({ serialHex: c.serialNumber.replace(/:/g, ""), at: new Date(c.revokedAt!) }));
    return this.#issuer.crl(revoked, new Date(this.#now()));
  }

  /** An authenticated request under the mount (`rest` is the path after it). */
  async handle(method: string, rest: string, body: Record<string, unknown>, requestPath: string): Promise<Reply> {
    const m = /^(issue|sign|roles)\/([^/]+)$/.exec(rest);
    if (m) {
      const [, op, name] = m;
      if (op === "roles") {
        if (method === "GET") return this.roles.has(name!) ? { status: 200, body: envelope({ data: roleData(this.roles.get(name!)!) }) } : errorReply(404);
        if (method !== "POST") return UNSUPPORTED;
        try {
          return { status: 200, body: envelope({ data: roleData(this.role(name!, body as FakePkiRoleParams)) }) };
        } catch (err) {
          if (err instanceof RoleParamError) return errorReply(400, err.message);
          throw err;
        }
      }
      if (method !== "POST") return UNSUPPORTED;
      return this.#issueOrSign(op as "issue" | "sign", name!, body, requestPath);
    }
    if (rest === "revoke") {
      if (method !== "POST") return UNSUPPORTED;
      const c = typeof body.serial_number === "string" ? this.revoke(body.serial_number) : undefined;
      if (!c) return errorReply(400, `certificate with serial ${String(body.serial_number)} not found.`);
      return { status: 200, body: envelope({ data: { revocation_time: Math.floor(c.revokedAt! / 1000), revocation_time_rfc3339: new Date(c.revokedAt!).toISOString(), state: "revoked" } }) };
    }
    return errorReply(404, multiError("unsupported path"));
  }

  async #issueOrSign(op: "issue" | "sign", roleName: string, body: Record<string, unknown>, requestPath: string): Promise<Reply> {
    const role = this.roles.get(roleName);
    if (!role) return errorReply(400, `unknown role: ${roleName}`);
    const format = body.format === undefined || body.format === "" ? "pem" : String(body.format);
    if (!["pem", "der", "pem_bundle"].includes(format)) return errorReply(400, `the "format" path parameter must be "pem", "der", or "pem_bundle"`);
    let csr: ParsedCsr | undefined;
    let spec: KeySpec | undefined;
    if (op === "sign") {
      if (typeof body.csr !== "string" || body.csr === "") return errorReply(400, `"csr" is empty`);
      try {
        csr = await parseCsr(body.csr);
      } catch (err) {
        if (err instanceof CsrError) return errorReply(400, err.message);
        throw err;
      }
      if (role.key_type !== "any" && csr.keyType !== role.key_type) return errorReply(400, `role requires keys of type ${role.key_type}`);
      if (csr.keyType === "rsa" && role.key_type === "rsa" && csr.keyBits < role.key_bits) return errorReply(400, `role requires a minimum of a ${role.key_bits}-bit key, but CSR's key is ${csr.keyBits} bits`);
      if (csr.keyType === "rsa" && csr.keyBits < 2048) return errorReply(400, `OpenBao requires a minimum of a 2048-bit key, but CSR's key is ${csr.keyBits} bits`);
    } else if (role.key_type === "any") {
      if (body.key_type === undefined) return errorReply(400, `role key type "any" not allowed for issuing certificates without providing key_type and/or key_bits request parameters`);
      const t = String(body.key_type);
      if (t !== "rsa" && t !== "ec") return errorReply(400, `unsupported key type ${t}`);
      spec = { type: t, bits: body.key_bits ? Number(body.key_bits) : t === "rsa" ? 2048 : 256 };
    } else {
      spec = { type: role.key_type, bits: role.key_bits };
    }

    // Names (generateCreationBundle).
    let cn = csr && role.use_csr_common_name ? csr.commonName : "";
    if (cn === "") cn = typeof body.common_name === "string" ? body.common_name : "";
    if (cn === "" && role.require_cn) return errorReply(400, `the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`);
    const fromCsr = csr !== undefined && role.use_csr_sans;
    const dnsNames: string[] = fromCsr ? [...csr!.dnsNames] : [];
    const emails: string[] = fromCsr ? [...csr!.emails] : [];
    const excludeCn = body.exclude_cn_from_sans === true || body.exclude_cn_from_sans === "true";
    if (cn !== "" && !excludeCn) (cn.includes("@") ? emails : HOSTNAME.test(cn) ? dnsNames : []).push(cn);
    if (!fromCsr) {
      for (const v of [...new Set(commaList(body.alt_names))]) (v.includes("@") ? emails : HOSTNAME.test(v) ? dnsNames : []).push(v);
    }
    if (cn !== "" && !nameAllowed(role, cn)) return errorReply(400, `common name ${cn} not allowed by this role`);
    const badDns = dnsNames.find((n) => !nameAllowed(role, n));
    if (badDns) return errorReply(400, `subject alternate name ${badDns} not allowed by this role`);
    const badEmail = emails.find((n) => !nameAllowed(role, n));
    if (badEmail) return errorReply(400, `email address ${badEmail} not allowed by this role`);
    const ips = fromCsr ? [...csr!.ips] : commaList(body.ip_sans);
    const badIp = ips.find((v) => !isIpLiteral(v));
    if (badIp) return errorReply(400, `the value "${badIp}" is not a valid IP address`);
    if (ips.length && !role.allow_ip_sans) return errorReply(400, `IP Subject Alternative Names are not allowed in this role, but was provided via ${fromCsr ? "CSR" : "the API"}`);

    // Validity (getCertificateNotAfter).
    const warnings: string[] = [];
    const asked = body.ttl === undefined || body.ttl === "" ? 0 : parseDuration(body.ttl);
    if (asked === undefined) return errorReply(400, `error converting input ${String(body.ttl)} for field "ttl": time: invalid duration "${String(body.ttl)}"`);
    let ttl = asked || role.ttl || this.#defaultTtl;
    const max = role.max_ttl || this.#maxTtl;
    if (ttl > max) {
      warnings.push(`TTL "${goDuration(ttl)}" is longer than permitted maxTTL "${goDuration(max)}", so maxTTL is being used`);
      ttl = max;
    }
    const now = this.#now();
    const notAfter = new Date(Math.floor(now / 1000) * 1000 + ttl * 1000);
    const caEnd = new Date(this.#issuer.cert.notAfter);
    if (notAfter > caEnd) {
      return errorReply(400, `cannot satisfy request, as TTL would result in notAfter of ${notAfter.toISOString()} that is beyond the expiration of the CA certificate at ${caEnd.toISOString()}`);
    }
    const notBefore = new Date(Math.floor(now / 1000) * 1000 - role.not_before_duration * 1000);

    const key = spec ? await newKeyPair(spec) : undefined;
    const cert = await this.#issuer.sign({ commonName: cn, dnsNames, emails, ips, notBefore, notAfter, publicKey: key ? key.spki : csr!.spki, serverAuth: role.server_flag, clientAuth: role.client_flag });
    const certificate = toPem(cert.rawData, "CERTIFICATE");
    const serialNumber = colonHex(new X509Certificate(certificate).serialNumber);
    if (!role.no_store) this.issued.push({ via: op, role: roleName, serialNumber, certificate, commonName: cn, notAfter, ...(csr ? { csr } : {}) });

    const pkcs8 = body.private_key_format === "pkcs8";
    const chain = this.#issuer.chainPem;
    const der = (pem: string): string => pem.replace(/-----[A-Z ]+-----|\s/g, "");
    const data: Record<string, unknown> = { expiration: Math.floor(notAfter.getTime() / 1000), not_before: Math.floor(notBefore.getTime() / 1000), serial_number: serialNumber };
    const keyPem = key ? (pkcs8 ? key.pkcs8Pem : key.privateKeyPem).trim() : undefined;
    if (format === "der") {
      data.certificate = der(certificate);
      data.issuing_ca = der(this.#issuer.certPem);
      data.ca_chain = chain.map(der);
      if (keyPem) data.private_key = der(keyPem);
    } else {
      data.certificate = format === "pem_bundle" ? [...(keyPem ? [keyPem] : []), certificate, ...chain].join("\n") : certificate;
      data.issuing_ca = this.#issuer.certPem;
      data.ca_chain = [...chain];
      if (keyPem) data.private_key = keyPem;
    }
    if (key) data.private_key_type = spec!.type;
    const lease = role.generate_lease ? { lease_id: `${requestPath}/${randomUUID()}`, lease_duration: Math.max(0, Math.floor((notAfter.getTime() - now) / 1000)) } : {};
    return { status: 200, body: envelope({ data, ...lease, ...(warnings.length ? { warnings } : {}) }) };
  }
}

function envelope(over: Record<string, unknown>): Record<string, unknown> {
  return { request_id: randomUUID(), lease_id: "", renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth: null, ...over };
}
