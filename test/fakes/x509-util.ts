/**
 * X.509 building blocks for the fakes (the Vault PKI engine, TLS listeners, client certificates):
 * real keys from node:crypto and real, signed certificates, CSRs and CRLs built with
 * `@peculiar/x509` (node:crypto can parse and verify certificates but not create them).
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { generateKeyPair, randomBytes, webcrypto, type KeyObject } from "node:crypto";

type CryptoKey = webcrypto.CryptoKey;
import { isIP } from "node:net";
import { promisify } from "node:util";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const genKeyPair = promisify(generateKeyPair);

/** A key algorithm Vault's PKI engine knows (`key_type` / `key_bits`). */
export interface KeySpec {
  readonly type: "rsa" | "ec";
  /** RSA: 2048, 3072, 4096. EC: 256, 384, 521. */
  readonly bits: number;
}

/** A key pair, as node:crypto objects and as PEM. */
export interface KeyPairPem {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) — Vault's default `private_key_format` "der" as PEM. */
  readonly privateKeyPem: string;
  /** PKCS#8 (`PRIVATE KEY`) — Vault's `private_key_format=pkcs8`. */
  readonly pkcs8Pem: string;
  /** SubjectPublicKeyInfo, DER. */
  readonly spki: Buffer;
}

const CURVES: Record<number, string> = { 256: "P-256", 384: "P-384", 521: "P-521" };
const EC_HASH: Record<number, string> = { 256: "SHA-256", 384: "SHA-384", 521: "SHA-512" };

/** Generates a key pair with node:crypto. */
export async function newKeyPair(spec: KeySpec): Promise<KeyPairPem> {
  const { privateKey, publicKey } =
    spec.type === "rsa" ? await genKeyPair("rsa", { modulusLength: spec.bits }) : await genKeyPair("ec", { namedCurve: CURVES[spec.bits] ?? fail(`unsupported EC key_bits ${spec.bits}`) });
  return {
    privateKey,
    publicKey,
    privateKeyPem: privateKey.export({ format: "pem", type: spec.type === "rsa" ? "pkcs1" : "sec1" }) as string,
    pkcs8Pem: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    spki: publicKey.export({ format: "der", type: "spki" }),
  };
}

/** The WebCrypto signing algorithm for a key. */
export function signingAlgorithm(spec: KeySpec): webcrypto.RsaHashedImportParams | (webcrypto.EcdsaParams & webcrypto.EcKeyImportParams) {
  return spec.type === "rsa"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "ECDSA", namedCurve: CURVES[spec.bits] ?? fail(`unsupported EC key_bits ${spec.bits}`), hash: EC_HASH[spec.bits]! };
}

/** Imports a node:crypto private key for signing with @peculiar/x509. */
export async function signingKey(key: KeyObject, spec: KeySpec): Promise<CryptoKey> {
  const der = key.export({ format: "der", type: "pkcs8" });
  return (await webcrypto.subtle.importKey("pkcs8", der, signingAlgorithm(spec), false, ["sign"])) as unknown as CryptoKey;
}

/** A random positive serial number of up to 20 bytes, as hex (what Vault's certutil draws: < 2^159). */
export function randomSerialHex(): string {
  const b = randomBytes(20);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

/** `39dd2e…` → `39:dd:2e:…` (Vault's serial_number format). */
export function colonHex(hex: string): string {
  return hex.toLowerCase().match(/../g)!.join(":");
}

/** PEM-encodes DER with a label; no trailing newline (as Vault's PKI engine returns PEM). */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----`;
}

/** What goes into a certificate. */
export interface CertSpec {
  readonly commonName: string;
  readonly dnsNames?: readonly string[];
  readonly emails?: readonly string[];
  readonly ips?: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subject's public key (SPKI DER). */
  readonly publicKey: Buffer | ArrayBuffer;
  readonly isCa?: boolean;
  readonly serverAuth?: boolean;
  readonly clientAuth?: boolean;
  readonly serialHex?: string;
}

/** A certificate authority that can sign certificates and CRLs. */
export interface FakeCa {
  readonly cert: x509.X509Certificate;
  readonly certPem: string;
  readonly key: KeyPairPem;
  readonly spec: KeySpec;
  /** This CA's chain up to the root, itself first. */
  readonly chainPem: readonly string[];
  /** Signs a certificate. */
  sign(c: CertSpec): Promise<x509.X509Certificate>;
  /** A CRL listing these serials (hex). */
  crl(revoked: readonly { serialHex: string; at: Date }[], now: Date): Promise<x509.X509Crl>;
}

/** Creates a CA: self-signed, or signed by `parent` (an intermediate). */
export async function newCa(opts: { commonName: string; spec?: KeySpec; notBefore: Date; notAfter: Date; parent?: FakeCa }): Promise<FakeCa> {
  const spec = opts.spec ?? { type: "ec", bits: 256 };
  const key = await newKeyPair(spec);
  const signer = opts.parent;
  const signWith = signer ? await signingKey(signer.key.privateKey, signer.spec) : await signingKey(key.privateKey, spec);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [opts.commonName] }],
    issuer: signer ? signer.cert.subject : [{ CN: [opts.commonName] }],
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    publicKey: key.spki,
    signingKey: signWith,
    signingAlgorithm: signingAlgorithm(signer?.spec ?? spec),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(key.spki),
      ...(signer ? [await x509.AuthorityKeyIdentifierExtension.create(signer.key.spki)] : []),
    ],
  });
  const certPem = toPem(cert.rawData, "CERTIFICATE");
  const ownKey = await signingKey(key.privateKey, spec);
  const ca: FakeCa = {
    cert,
    certPem,
    key,
    spec,
    chainPem: [certPem, ...(signer?.chainPem ?? [])],
    async sign(c) {
      const names: x509.JsonGeneralName[] = [
        ...(c.dnsNames ?? []).map((v) => ({ type: "dns" as const, value: v })),
        ...(c.emails ?? []).map((v) => ({ type: "email" as const, value: v })),
        ...(c.ips ?? []).map((v) => ({ type: "ip" as const, value: v })),
      ];
      const eku = [...(c.serverAuth ? [x509.ExtendedKeyUsage.serverAuth] : []), ...(c.clientAuth ? [x509.ExtendedKeyUsage.clientAuth] : [])];
      return x509.X509CertificateGenerator.create({
        serialNumber: c.serialHex ?? randomSerialHex(),
        subject: [{ CN: [c.commonName] }],
        issuer: cert.subject,
        notBefore: c.notBefore,
        notAfter: c.notAfter,
        publicKey: c.publicKey,
        signingKey: ownKey,
        signingAlgorithm: signingAlgorithm(spec),
        extensions: [
          new x509.BasicConstraintsExtension(!!c.isCa, undefined, true),
          new x509.KeyUsagesExtension(
            c.isCa
              ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
              : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement,
            true,
          ),
          ...(eku.length ? [new x509.ExtendedKeyUsageExtension(eku)] : []),
          await x509.SubjectKeyIdentifierExtension.create(c.publicKey),
          await x509.AuthorityKeyIdentifierExtension.create(key.spki),
          ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
        ],
      });
    },
    crl(revoked, now) {
      return x509.X509CrlGenerator.create({
        issuer: cert.subject,
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + 72 * 3600_000),
        entries: revoked.map((r) => ({ serialNumber: r.serialHex, revocationDate: r.at })),
        signingKey: ownKey,
        signingAlgorithm: signingAlgorithm(spec),
      });
    },
  };
  return ca;
}

/** A parsed CSR. */
export interface ParsedCsr {
  readonly commonName: string;
  readonly dnsNames: string[];
  readonly emails: string[];
  readonly ips: string[];
  /** SubjectPublicKeyInfo, DER. */
  readonly spki: Buffer;
  readonly keyType: "rsa" | "ec" | "ed25519" | "unknown";
  readonly keyBits: number;
  /** Whether the CSR's self-signature verifies (Vault does not check; tests may). */
  readonly signatureValid: boolean;
}

/** Parses a PEM CSR; throws with Go's wording on bad input. */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  const m = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(pem);
  if (!m) throw new CsrError("csr contains no data");
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
  } catch (err) {
    throw new CsrError(`certificate request could not be parsed: ${(err as Error).message}`);
  }
  const cn = csr.subjectName.getField("CN")[0] ?? "";
  const sanExt = csr.extensions.find((e) => e.type === "2.5.29.17");
  const items = sanExt ? new x509.SubjectAlternativeNameExtension(sanExt.rawData).names.items : [];
  const alg = csr.publicKey.algorithm as { name: string; modulusLength?: number; namedCurve?: string };
  const keyType = alg.name === "RSASSA-PKCS1-v1_5" || alg.name === "RSA-PSS" ? "rsa" : alg.name === "ECDSA" ? "ec" : alg.name === "Ed25519" ? "ed25519" : "unknown";
  const keyBits = keyType === "rsa" ? (alg.modulusLength ?? 0) : keyType === "ec" ? Number((alg.namedCurve ?? "P-0").slice(2)) : 0;
  let signatureValid = false;
  try {
    signatureValid = await csr.verify();
  } catch {
    signatureValid = false;
  }
  return {
    commonName: cn,
    dnsNames: items.filter((i) => i.type === "dns").map((i) => i.value),
    emails: items.filter((i) => i.type === "email").map((i) => i.value),
    ips: items.filter((i) => i.type === "ip").map((i) => i.value),
    spki: Buffer.from(csr.publicKey.rawData),
    keyType,
    keyBits,
    signatureValid,
  };
}

/** Creates a CSR (for tests acting as a client). */
export async function newCsr(key: KeyPairPem, spec: KeySpec, opts: { commonName: string; dnsNames?: string[]; ips?: string[] }): Promise<string> {
  const pub = await webcrypto.subtle.importKey("spki", key.spki, signingAlgorithm(spec), true, ["verify"]);
  const priv = await signingKey(key.privateKey, spec);
  const names: x509.JsonGeneralName[] = [...(opts.dnsNames ?? []).map((v) => ({ type: "dns" as const, value: v })), ...(opts.ips ?? []).map((v) => ({ type: "ip" as const, value: v }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [opts.commonName] }],
    keys: { publicKey: pub as unknown as CryptoKey, privateKey: priv },
    signingAlgorithm: signingAlgorithm(spec),
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return toPem(csr.rawData, "CERTIFICATE REQUEST");
}

/** A CSR that could not be read. */
export class CsrError extends Error {}

/** True for an IPv4 or IPv6 literal. */
export function isIpLiteral(v: string): boolean {
  return isIP(v) !== 0;
}

function fail(msg: string): never {
  throw new Error(msg);
}
