/**
 * Writes: a reference with `params` is a `POST` of the params as JSON, as `vault write` does, for
 * any engine (`pki/issue/<role>`, `pki/sign/<role>`, `aws/sts/<role>`, `ssh/sign/<role>`, …).
 *
 * - A response with `certificate` is an issuance ({@link Issued}): held until its renewal point,
 *   kept in the state directory, restored after a restart or a reload instead of issued anew.
 * - A response with a lease (dynamic credentials) goes through the lease table, as a leased read.
 * - Anything else is written again at each refresh.
 *
 * `private_key: local` (only `<pki>/sign/<role>`): a key and a CSR are made here ({@link localKeyAndCsr}).
 * A write to a KV mount is refused: it would overwrite the secret.
 */
import type { FetchContext, Secret, SecretRef } from "../../src/api/index.js";
import { FatalError, SecretNotFoundError, WouldIssueError, canonicalParams, contentVersion, refKey as refKeyOf } from "../../src/api/index.js";
import { encodePath, statusError, vaultErrors } from "./client.js";
import { localKeyAndCsr, namesFromParams } from "./csr.js";
import { normalizePath } from "./mounts.js";
import { DEFAULT_RENEW_AT, hasCertificate, issuedSecret, makeIssued, parseKeptIssue, type Issued, type KeptIssue } from "./pki.js";
import { leaseOf, type LeasedFetcher } from "./read.js";
import type { VaultSession } from "./session.js";

/** Long-form options of a write. */
export const WRITE_OPTIONS = ["params", "renew_at", "private_key", "key_type", "key_bits"] as const;

/** Paths `private_key: local` works with: the PKI engine's sign endpoints. */
const SIGN_PATH = /(^|\/)(sign\/[^/]+|sign-verbatim(\/[^/]+)?)$/;

/**
 * Checks a write's options without fetching.
 * @throws {@link FatalError} naming the reference
 */
export function validateWrite(ref: SecretRef): void {
  const refText = `vault:${ref.id}`;
  const path = normalizePath(ref.id);
  if (ref.options.version !== undefined) throw new FatalError(`${refText}: option "version" is for reads (KV v2); a reference with params is a write`);
  const renewAt = ref.options.renew_at;
  if (renewAt !== undefined && (typeof renewAt !== "number" || renewAt < 0.5 || renewAt > 0.95)) throw new FatalError(`${refText}: renew_at must be a number from 0.5 to 0.95`);
  if (ref.options.private_key !== undefined) {
    if (ref.options.private_key !== "local") throw new FatalError(`${refText}: private_key must be "local"`);
    if (!SIGN_PATH.test(path)) {
      throw new FatalError(`${refText}: private_key: local is only for a PKI sign path (pki/sign/<role>): here Vault would not sign a CSR; use pki/sign/<role>, or drop private_key to let pki/issue make the key`);
    }
  } else if (ref.options.key_type !== undefined || ref.options.key_bits !== undefined) {
    throw new FatalError(`${refText}: key_type and key_bits (beside params) go with private_key: local`);
  }
}

/** Issues, holds and restores the results of writes. */
export class Issuer {
  readonly #s: VaultSession;
  readonly #leased: LeasedFetcher;
  readonly #random: () => number;
  readonly #issued = new Map<string, Issued>();
  /** Keys whose kept issuance was looked at already. */
  readonly #restoreTried = new Set<string>();

  constructor(session: VaultSession, leased: LeasedFetcher, random: () => number = Math.random) {
    this.#s = session;
    this.#leased = leased;
    this.#random = random;
  }

  /** Issuances held now (for tests and debugging). */
  get size(): number {
    return this.#issued.size;
  }

  /** Forgets every issuance held in memory. */
  clear(): void {
    this.#issued.clear();
    this.#restoreTried.clear();
  }

  async fetch(ref: SecretRef, key: string, ctx: FetchContext): Promise<Secret> {
    const refText = `vault:${ref.id}`;
    const now = this.#s.now();
    // `emissary refresh --reissue`: a new certificate now, whatever is held or kept.
    let held = ctx.reissue ? undefined : this.#issued.get(key);
    // The state entry is read once: it may be a certificate, or a lease the lease table restores.
    let raw: unknown;
    if (!held && !ctx.reissue && !this.#restoreTried.has(key)) {
      this.#restoreTried.add(key);
      raw = ctx.state?.enabled ? await ctx.state.get(key) : undefined;
      held = await this.#restore(ref, refText, ctx, now, raw);
    }
    // `render` may use a kept certificate past its renewal point while it is valid: it cannot issue.
    if (held && (now < held.renewAt || (ctx.issue === false && now < held.notAfter))) return issuedSecret(held, now);
    // A certificate past its renewal point, or a write that is not a certificate (perhaps leased).
    return this.#leased.fetch(key, refText, ctx, async () => {
      if (ctx.issue === false) throw new WouldIssueError(refText);
      const r = await this.#write(ref, refText, ctx);
      if (!hasCertificate(r.data)) {
        this.#issued.delete(key);
        const value = JSON.stringify(r.data);
        const secret: Secret = { value, version: contentVersion(value), ...(typeof r.data === "object" ? { data: r.data } : {}) };
        return { secret, ...(r.lease ? { lease: r.lease } : {}), gen: r.gen, token: r.token };
      }
      const issuedAt = this.#s.now();
      const renewAtFraction = typeof ref.options.renew_at === "number" ? ref.options.renew_at : DEFAULT_RENEW_AT;
      // Checked here, before the value reaches the store: a key that does not match is never written.
      const issued = makeIssued({ data: r.data, refText, issuedAt, renewAtFraction, u: 2 * this.#random() - 1, now: issuedAt });
      this.#issued.set(key, issued);
      this.#s.logger.info(
        { ref: refText, serialNumber: issued.serialNumber, notAfter: new Date(issued.notAfter).toISOString(), renewAt: new Date(issued.renewAt).toISOString(), localKey: ref.options.private_key === "local" },
        "vault: certificate issued",
      );
      // Called even when the state directory is off: it says so once.
      if (ctx.state) {
        const kept: KeptIssue = { kind: "issued", params: canonicalParams(ref.params ?? {}), issuedAt, renewAt: issued.renewAt, data: issued.data };
        await ctx.state.set(key, kept);
      }
      return { secret: issuedSecret(issued, this.#s.now()), gen: r.gen, token: r.token, keepsState: true };
    }, async () => raw);
  }

  /** A kept issuance (state directory), or the value the core already holds (a reload), when it is still good. */
  async #restore(ref: SecretRef, refText: string, ctx: FetchContext, now: number, raw: unknown): Promise<Issued | undefined> {
    const candidates: { from: string; kept: KeptIssue }[] = [];
    const prev = ctx.previous;
    if (prev?.certificate && hasCertificate(prev.data)) {
      candidates.push({ from: "the value held before the reload", kept: { kind: "issued", params: canonicalParams(ref.params ?? {}), issuedAt: prev.certificate.issuedAt, renewAt: prev.certificate.renewAt, data: prev.data } });
    }
    const kept = parseKeptIssue(raw);
    if (kept) candidates.push({ from: "the state directory", kept });
    else if (raw !== undefined && (raw as { kind?: unknown } | null)?.kind !== "lease") this.#s.logger.warn({ ref: refText }, "vault: the kept entry is not an issued certificate; issuing anew");
    for (const { from, kept } of candidates) {
      if (kept.params !== canonicalParams(ref.params ?? {})) continue;
      let issued: Issued;
      try {
        issued = makeIssued({ data: kept.data as KeptIssue["data"] & { certificate: string }, refText, issuedAt: kept.issuedAt, renewAtFraction: DEFAULT_RENEW_AT, u: 0, renewAt: kept.renewAt, now });
      } catch (err) {
        this.#s.logger.warn({ ref: refText, reason: (err as Error).message, from }, "vault: the kept certificate cannot be used; issuing anew");
        continue;
      }
      this.#issued.set(refKeyOf(ref), issued);
      if (now >= issued.renewAt) {
        this.#s.logger.info({ ref: refText, from, renewAt: new Date(issued.renewAt).toISOString() }, "vault: the kept certificate is past its renewal point; issuing anew");
        return issued;
      }
      this.#s.logger.info({ ref: refText, from, serialNumber: issued.serialNumber, renewAt: new Date(issued.renewAt).toISOString() }, "vault: using the kept certificate");
      return issued;
    }
    return undefined;
  }

  /** Sends the write; returns the response's data. */
  async #write(ref: SecretRef, refText: string, ctx: FetchContext): Promise<{ data: unknown; lease?: ReturnType<typeof leaseOf>; gen: number; token: string }> {
    const path = normalizePath(ref.id);
    const mount = await this.#s.mountOf(path, refText, ctx.signal);
    if (mount.type === "kv") throw new FatalError(`${refText}: params make this a write, and a write to the KV mount ${mount.path} would overwrite the secret; remove params to read it`);
    const body: Record<string, unknown> = { ...(ref.params ?? {}) };
    let localKey: { privateKey: string; keyType: string } | undefined;
    if (ref.options.private_key === "local") {
      if (mount.type !== "pki" && mount.type !== "unknown") throw new FatalError(`${refText}: private_key: local needs a PKI mount; ${mount.path} is a ${mount.type} mount`);
      const keyType = ref.options.key_type === "rsa" ? "rsa" : "ec";
      const k = await localKeyAndCsr({
        keyType,
        ...(typeof ref.options.key_bits === "number" ? { keyBits: ref.options.key_bits } : {}),
        names: namesFromParams(ref.params ?? {}),
        pkcs8: ref.params?.private_key_format === "pkcs8",
        refText,
      });
      body.csr = k.csr;
      localKey = k;
    }
    const { res, gen, token } = await this.#s.authed({ method: "POST", path: encodePath(path), body, signal: ctx.signal });
    if (res.status === 200 || res.status === 204) {
      const data = res.body?.data;
      if (data === null || data === undefined) throw new SecretNotFoundError(`${refText}: the write returned no data`);
      const lease = leaseOf(res);
      // A ttl above the role's max is capped with a warning, not refused: say so (never the data).
      this.#s.warnings.report({ key: refKeyOf(ref), refText, path, body: res.body, localKey: localKey !== undefined });
      if (localKey && data && typeof data === "object") {
        // The key never left this machine: templates get it beside what Vault signed.
        return { data: { ...(data as Record<string, unknown>), private_key: localKey.privateKey, private_key_type: localKey.keyType }, ...(lease ? { lease } : {}), gen, token };
      }
      return { data, ...(lease ? { lease } : {}), gen, token };
    }
    if (res.status === 400) {
      const detail = vaultErrors(res.body, this.#s.tokens.redact);
      throw Object.assign(new FatalError(`${refText}: Vault refused the write to ${path} (400)${detail ? `: ${detail}` : ""}`), { status: 400 });
    }
    if (res.status === 403) throw Object.assign(new FatalError(`${refText}: permission denied writing ${path} (the policy needs "update" on it)`), { status: 403 });
    throw statusError(res, `${refText}: vault POST ${path}`, this.#s.tokens.redact);
  }
}
