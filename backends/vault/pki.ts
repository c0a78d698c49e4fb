/**
 * Issued certificates (a write whose response has `certificate`, e.g. `pki/issue/<role>`): the
 * certificate's validity from node:crypto's X509Certificate, the check that the private key
 * belongs to it (before anything is written), and the renewal point — `renew_at` of the validity,
 * counted from the later of NotBefore and the issue time (CAs backdate NotBefore), jittered by ±5%
 * of the validity so a fleet issued at one moment does not come back at one moment, and never
 * after expiry. The jitter is drawn once per issuance and kept with it (in memory and in the state
 * directory), so a restart does not move the renewal.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { FatalError, contentVersion, type CertificateInfo, type Secret } from "../../src/api/index.js";

/** Default `renew_at`: re-issue after two thirds of the validity. */
export const DEFAULT_RENEW_AT = 0.67;
/** Jitter of the renewal point, as a fraction of the validity (±). */
export const RENEW_JITTER = 0.05;
/** The renewal point is at least this fraction of the validity before NotAfter. */
const EXPIRY_MARGIN = 0.02;

/** One issuance as emissary holds it (and keeps in the state directory). */
export interface Issued {
  /** The response's `data` (certificate, private_key, ca_chain, …), with a local key added. */
  readonly data: Record<string, unknown>;
  readonly issuedAt: number;
  readonly renewAt: number;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly serialNumber?: string;
}

/** What the state directory keeps for an issued certificate. */
export interface KeptIssue {
  readonly kind: "issued";
  /** Canonical JSON of the params it was issued for. */
  readonly params: string;
  readonly issuedAt: number;
  readonly renewAt: number;
  readonly data: Record<string, unknown>;
}

/** True when a write's response data holds a certificate. */
export function hasCertificate(data: unknown): data is Record<string, unknown> & { certificate: string } {
  return data !== null && typeof data === "object" && typeof (data as { certificate?: unknown }).certificate === "string";
}

/** The first certificate of a PEM text (or base64 DER, for `format: der`). */
export function parseCertificate(text: string, refText: string): X509Certificate {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  try {
    if (pem) return new X509Certificate(pem[0]);
    if (/^[A-Za-z0-9+/=\s]+$/.test(text)) return new X509Certificate(Buffer.from(text, "base64"));
  } catch {
    // The parser's message may quote the input: say what, not why.
  }
  throw new FatalError(`${refText}: the certificate in Vault's response cannot be read`);
}

/** Reads a private key as Vault returns it: PEM (SEC1, PKCS#1, PKCS#8) or base64 DER. */
function parsePrivateKey(text: string): KeyObject | undefined {
  if (text.includes("-----BEGIN")) {
    try {
      return createPrivateKey(text);
    } catch {
      return undefined;
    }
  }
  const der = Buffer.from(text, "base64");
  for (const type of ["pkcs8", "sec1", "pkcs1"] as const) {
    try {
      return createPrivateKey({ key: der, format: "der", type });
    } catch {
      /* try the next encoding */
    }
  }
  return undefined;
}

/**
 * Checks that `keyText` is the private key of `cert`.
 * @throws {@link FatalError} naming the reference (never a key or certificate) when it is not,
 *   or when the key cannot be read
 */
export function checkKeyMatches(cert: X509Certificate, keyText: string, refText: string): void {
  const key = parsePrivateKey(keyText);
  if (!key) throw new FatalError(`${refText}: the private key cannot be read; nothing was written`);
  let ok = false;
  try {
    ok = cert.checkPrivateKey(key);
  } catch {
    ok = false;
  }
  if (!ok) throw new FatalError(`${refText}: the private key does not match the certificate; nothing was written`);
}

/**
 * The renewal point of a certificate, epoch ms.
 * @param u - the jitter draw in [-1, 1]
 */
export function renewalPoint(o: { notBefore: number; notAfter: number; issuedAt: number; renewAt: number; u: number }): number {
  const start = Math.max(o.notBefore, o.issuedAt);
  const validity = o.notAfter - start;
  const point = start + (o.renewAt + RENEW_JITTER * Math.max(-1, Math.min(1, o.u))) * validity;
  return Math.round(Math.min(point, o.notAfter - EXPIRY_MARGIN * validity));
}

/**
 * Builds an {@link Issued} from a response's data: parses the certificate, checks the private
 * key (the response's, or `localKey`), and places the renewal.
 * @param renewAt - the point to use (a kept issuance) or undefined to draw one with `u`
 * @throws {@link FatalError} for an unreadable certificate, a key that does not match, or a certificate that has expired
 */
export function makeIssued(o: { data: Record<string, unknown> & { certificate: string }; refText: string; issuedAt: number; renewAtFraction: number; u: number; renewAt?: number; now: number }): Issued {
  const cert = parseCertificate(o.data.certificate, o.refText);
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (!(notAfter > o.now)) throw new FatalError(`${o.refText}: the certificate has expired (NotAfter ${cert.validTo})`);
  if (typeof o.data.private_key === "string" && o.data.private_key !== "") checkKeyMatches(cert, o.data.private_key, o.refText);
  const renewAt = o.renewAt ?? renewalPoint({ notBefore, notAfter, issuedAt: o.issuedAt, renewAt: o.renewAtFraction, u: o.u });
  const serial = cert.serialNumber.replace(/(..)(?!$)/g, "$1:").toLowerCase();
  return { data: o.data, issuedAt: o.issuedAt, renewAt: Math.min(renewAt, notAfter), notBefore, notAfter, serialNumber: serial };
}

/** Smallest `ttlMs` handed to the core, so it cannot spin near the renewal point. */
const MIN_TTL_MS = 250;
/** The core fetches at 0.9 × ttlMs, ±5%: aim the latest of those at the renewal point. */
const CORE_LATEST = 0.9 * 1.05;

/** The secret templates see for an issuance, with a `ttlMs` that brings the core back at its renewal point. */
export function issuedSecret(i: Issued, now: number): Secret {
  const value = JSON.stringify(i.data);
  const certificate: CertificateInfo = {
    notBefore: i.notBefore,
    notAfter: i.notAfter,
    renewAt: i.renewAt,
    issuedAt: i.issuedAt,
    ...(i.serialNumber ? { serialNumber: i.serialNumber } : {}),
  };
  const ttlMs = Math.max(MIN_TTL_MS, Math.round((i.renewAt - now) / CORE_LATEST));
  return { value, version: contentVersion(value), data: i.data, ttlMs, renewal: true, certificate };
}

/** Reads a kept issuance back; undefined for anything that is not one. */
export function parseKeptIssue(v: unknown): KeptIssue | undefined {
  const k = v as Partial<KeptIssue> | null;
  if (k === null || typeof k !== "object" || k.kind !== "issued") return undefined;
  if (typeof k.params !== "string" || typeof k.issuedAt !== "number" || typeof k.renewAt !== "number" || !hasCertificate(k.data)) return undefined;
  return k as KeptIssue;
}
