/**
 * `private_key: local`: the key pair is generated here and only a certificate signing request
 * goes to Vault (`pki/sign/<role>` with `csr`), so the private key never crosses the network.
 *
 * The CSR is built with @peculiar/x509 (PKCS#10 on WebCrypto, maintained by PeculiarVentures, the
 * authors of pkijs and webcrypto-liner). It needs the `reflect-metadata` polyfill (its dependency
 * injection container reads decorator metadata), so both are loaded on the first local key only:
 * a deployment without `private_key: local` never loads them.
 */
import { createPrivateKey, webcrypto } from "node:crypto";
import { FatalError, type ParamValue } from "../../src/api/index.js";

/** A generated key and the CSR for it. */
export interface LocalKey {
  /** PEM: SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) as Vault returns them, or PKCS#8 when params ask for `private_key_format: pkcs8`. */
  readonly privateKey: string;
  readonly keyType: "ec" | "rsa";
  /** PEM `CERTIFICATE REQUEST`. */
  readonly csr: string;
}

/** The names a CSR carries, from the params of the sign request (as Vault reads them). */
export interface CsrNames {
  readonly commonName?: string;
  readonly dnsNames: readonly string[];
  readonly emails: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly uris: readonly string[];
}

const CURVES: Readonly<Record<number, { curve: string; hash: string }>> = {
  256: { curve: "P-256", hash: "SHA-256" },
  384: { curve: "P-384", hash: "SHA-384" },
  521: { curve: "P-521", hash: "SHA-512" },
};

type X509Module = typeof import("@peculiar/x509");
let x509: Promise<X509Module> | undefined;

function loadX509(): Promise<X509Module> {
  x509 ??= (async () => {
    await import("reflect-metadata");
    return import("@peculiar/x509");
  })();
  return x509;
}

/** A comma list or a list param, as Vault reads `alt_names`, `ip_sans`, `uri_sans`. */
function list(v: ParamValue | undefined): string[] {
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v.map(String) : String(v).split(",");
  return items.map((s) => s.trim()).filter((s) => s !== "");
}

/** The names of a sign request's params: `common_name`, `alt_names` (an `@` makes an email), `ip_sans`, `uri_sans`. */
export function namesFromParams(params: Readonly<Record<string, ParamValue>>): CsrNames {
  const cn = params.common_name;
  const alt = list(params.alt_names);
  return {
    ...(cn !== undefined && String(cn).trim() !== "" ? { commonName: String(cn).trim() } : {}),
    dnsNames: alt.filter((n) => !n.includes("@")),
    emails: alt.filter((n) => n.includes("@")),
    ipAddresses: list(params.ip_sans),
    uris: list(params.uri_sans),
  };
}

/**
 * Generates a key pair (EC P-256 by default; `rsa` with 2048 bits by default) and a CSR with
 * `names`, signed by it.
 * @throws {@link FatalError} when the key or the CSR cannot be made (e.g. an IP SAN that is not an address)
 */
export async function localKeyAndCsr(o: { keyType: "ec" | "rsa"; keyBits?: number; names: CsrNames; pkcs8?: boolean; refText: string }): Promise<LocalKey> {
  const lib = await loadX509();
  let alg: (webcrypto.EcKeyGenParams & { hash: string }) | (webcrypto.RsaHashedKeyGenParams & { hash: string });
  if (o.keyType === "ec") {
    const c = CURVES[o.keyBits ?? 256];
    if (!c) throw new FatalError(`${o.refText}: key_bits ${o.keyBits} is not an EC curve size (256, 384, 521)`);
    alg = { name: "ECDSA", namedCurve: c.curve, hash: c.hash };
  } else {
    alg = { name: "RSASSA-PKCS1-v1_5", modulusLength: o.keyBits ?? 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  }
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const sans: { type: "dns" | "email" | "ip" | "url"; value: string }[] = [
    ...o.names.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...o.names.emails.map((value) => ({ type: "email" as const, value })),
    ...o.names.ipAddresses.map((value) => ({ type: "ip" as const, value })),
    ...o.names.uris.map((value) => ({ type: "url" as const, value })),
  ];
  let csrPem: string;
  try {
    const csr = await lib.Pkcs10CertificateRequestGenerator.create(
      {
        // The JSON form of the name: a common name with a comma or "=" needs no escaping.
        name: o.names.commonName !== undefined ? [{ CN: [o.names.commonName] }] : [],
        // The library is typed against the DOM's WebCrypto; node:crypto's is the same API.
        keys: keys as never,
        signingAlgorithm: alg,
        extensions: sans.length > 0 ? [new lib.SubjectAlternativeNameExtension(sans)] : [],
      },
      webcrypto as never,
    );
    csrPem = csr.toString("pem");
  } catch (err) {
    throw new FatalError(`${o.refText}: cannot build the certificate signing request (${(err as Error).name}: check common_name, alt_names, ip_sans and uri_sans)`);
  }
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const privateKey = o.pkcs8
    ? (key.export({ format: "pem", type: "pkcs8" }) as string)
    : (key.export({ format: "pem", type: o.keyType === "ec" ? "sec1" : "pkcs1" }) as string);
  return { privateKey: privateKey.trimEnd(), keyType: o.keyType, csr: csrPem };
}
