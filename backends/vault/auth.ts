/**
 * The Vault token: where it comes from, keeping it alive, and getting a new one.
 *
 * - `token`: `VAULT_TOKEN` or the config; looked up once (`auth/token/lookup-self`) to learn its
 *   TTL, then renewed at about 2/3 of it.
 * - `token_file`: a Vault Agent sink; the file is checked on every use and re-read when it changes.
 *   Not renewed unless `renew: true` (the agent renews its own token).
 * - `approle` / `aws` / `jwt` / `cert`: a login; the token is renewed at about 2/3 of its TTL,
 *   renewal is retried with backoff, and when it fails (or the token nears its max TTL) emissary
 *   logs in again.
 *
 * A 403 on a token that has worked before may mean it was revoked: the token is looked up and,
 * when it is dead, emissary logs in again once and retries; further forced logins back off (1s
 * doubling to 5m). A new token changes nothing else (leases made under the old token are re-read:
 * Vault revokes them with it). A login token is kept in the state directory once leases are.
 *
 * The token and the AppRole ids never reach a log line or an error message: every Vault error
 * string is passed through {@link TokenManager.redact}.
 */
import { FatalError, TransientError, clearLongTimeout, formatDuration, safeError, setLongTimeout, type LongTimeout, type Logger, type StateAccess } from "../../src/api/index.js";
import type { AwsCredentialSource } from "./aws-iam.js";
import { VaultClient, vaultErrors, type VaultResponse } from "./client.js";
import type { VaultAuthConfig, VaultSettings } from "./config.js";
import { keepToken, restoreToken } from "./kept-token.js";
import { login, secretIdEntry, tokenFileId, type LoginAuth } from "./login.js";
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, RENEW_ATTEMPTS, backoff, knownSecrets, num, renewOutcome, type State } from "./token-state.js";

/** A token handed to a request, with its generation (it changes with every new token). */
export interface TokenLease {
  readonly token: string;
  readonly gen: number;
}

/** Options for {@link TokenManager}. */
export interface TokenManagerOptions {
  readonly client: VaultClient;
  readonly auth: VaultAuthConfig;
  /** The backend's settings (a `cert` login with its own client certificate gets its own client). */
  readonly settings?: VaultSettings;
  /** The backend's state entries (an unwrapped AppRole secret_id). */
  readonly state?: StateAccess;
  readonly logger: Logger;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Clock. @defaultValue Date.now */
  readonly now?: () => number;
  /** AWS credentials for `aws` auth. @defaultValue env keys, then the AWS SDK chain */
  readonly awsCredentials?: AwsCredentialSource;
}

/** Owns the token of one vault backend. */
export class TokenManager {
  readonly #o: TokenManagerOptions;
  readonly #now: () => number;
  readonly #secrets = new Set<string>();
  #state?: State;
  #pending?: Promise<State>;
  #timer?: LongTimeout;
  #closed = false;
  #gen = 0;
  #renewFailures = 0;
  #loginFailures = 0;
  #forcedAt = 0;
  #forcedDelayMs = BACKOFF_BASE_MS;
  readonly #unwrapped: { fingerprint?: string; secretId?: string } = {};
  /** The token is kept in the state directory (leases made under it are kept there). */
  #keeping = false;
  #keptGen = -1;
  #certClient?: VaultClient;

  constructor(opts: TokenManagerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    const a = opts.auth;
    for (const secret of knownSecrets(a, opts.env)) this.#secrets.add(secret);
    // A secret_id unwrapped under an earlier configuration is not left behind.
    if (a.method === "approle" && !a.secretIdWrapped) void opts.state?.delete(secretIdEntry(a.mount));
    if (a.method === "cert" && a.clientCert && opts.settings) this.#certClient = new VaultClient({ settings: { ...opts.settings, clientCert: a.clientCert, clientKey: a.clientKey! }, redact: this.redact });
  }

  /** True for methods that can get a new token by themselves. */
  get canLogin(): boolean {
    return !(this.#o.auth.method === "token" || this.#o.auth.method === "token_file");
  }

  /** Generation of the current token (-1 before the first). */
  get generation(): number {
    return this.#state?.gen ?? -1;
  }

  /** The pending renewal/login timer, for tests (it is always unref'd). */
  get timer(): LongTimeout | undefined {
    return this.#timer;
  }

  /** Replaces every known secret (tokens, AppRole ids, AWS keys) in `text` by `[redacted]`. */
  readonly redact = (text: string): string => {
    let out = text;
    for (const s of this.#secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join("[redacted]");
    return out;
  };

  /** The token to use now: logs in or reads the token file first when needed. */
  async getToken(): Promise<TokenLease> {
    if (this.#closed) throw new TransientError("vault: the backend is closed");
    if (this.#o.auth.method === "token_file") return this.#lease(await this.#checkFile(false));
    const s = this.#state;
    if (s && !(this.canLogin && this.#expired(s))) return this.#lease(s);
    return this.#lease(await this.#acquire(s ? "the token expired" : "first use"));
  }

  /** Keeps the login token in the state directory from now on (leases kept there live only under it). */
  async keep(): Promise<void> {
    const s = this.#state;
    if (!this.canLogin || !s || !this.#o.state) return;
    this.#keeping = true;
    if (this.#keptGen === s.gen) return;
    this.#keptGen = s.gen;
    await keepToken(this.#o.state, this.#o.auth as LoginAuth, s);
  }

  /** Marks the token of generation `gen` as working (a request with it succeeded). */
  markWorked(gen: number): void {
    const s = this.#state;
    if (s && s.gen === gen && !s.worked) {
      s.worked = true;
      this.#forcedDelayMs = BACKOFF_BASE_MS;
    }
  }

  /**
   * A request with the token of generation `gen` got 403. Returns true when there is now a
   * different token worth one retry; false when the 403 stands (a policy denial, or a login
   * already forced too recently).
   * @throws the login's error when logging in again fails
   */
  async onForbidden(gen: number): Promise<boolean> {
    if (this.#closed) return false;
    if (this.#o.auth.method === "token_file") return (await this.#checkFile(true)).gen !== gen;
    const s = this.#state;
    if (s && s.gen !== gen) return true;
    if (this.#pending) {
      await this.#pending.catch(() => undefined);
      return this.generation !== gen;
    }
    if (!this.canLogin || !s || !s.worked || this.#now() < this.#forcedAt + this.#forcedDelayMs) return false;
    if (await this.#isAlive(s.token)) return false;
    if (this.#state !== s) return this.generation !== gen;
    this.#forcedAt = this.#now();
    this.#forcedDelayMs = Math.min(BACKOFF_CAP_MS, this.#forcedDelayMs * 2);
    this.#o.logger.warn({ method: this.#o.auth.method }, "vault: the token was revoked or has expired; logging in again");
    await this.#acquire("the token was revoked");
    return true;
  }

  /** Stops renewing. The token is not revoked: a Vault Agent or another emissary may share it. */
  close(): void {
    this.#closed = true;
    clearLongTimeout(this.#timer);
    this.#timer = undefined;
    this.#certClient?.close();
  }

  #lease(s: State): TokenLease {
    return { token: s.token, gen: s.gen };
  }

  #expired(s: State): boolean {
    return !!s.ttlMs && this.#now() >= s.obtainedAt + s.ttlMs - 1000;
  }

  #acquire(reason: string): Promise<State> {
    if (!this.#pending) {
      const p = this.#obtain(reason);
      this.#pending = p;
      const clear = (): void => {
        if (this.#pending === p) this.#pending = undefined;
      };
      p.then(clear, clear);
    }
    return this.#pending;
  }

  async #obtain(reason: string): Promise<State> {
    const a = this.#o.auth;
    if (a.method === "token") {
      if (!a.token) throw new FatalError("vault: no token: set VAULT_TOKEN, or backends.vault.auth (method token, token_file, approle or aws)");
      const s = this.#newState(a.token);
      if (a.renew) await this.#lookupAndPlan(s);
      this.#o.logger.info({ method: "token", source: a.source, ttl: this.#ttlLabel(s), renewable: s.renewable }, "vault: using a token");
      return s;
    }
    if (a.method === "token_file") return this.#checkFile(true);
    // After a restart: the token kept in the state directory, while Vault says it is alive.
    const k = reason === "first use" ? await restoreToken(this.#o.state, a as LoginAuth, this.#o.client, this.#now()) : undefined;
    if (k) {
      const s = Object.assign(this.#newState(k.token), { ttlMs: k.ttlMs, initialTtlMs: k.initialTtlMs, renewable: k.renewable, worked: true });
      this.#keeping = true;
      this.#o.logger.info({ method: a.method, ttl: this.#ttlLabel(s), renewable: s.renewable }, "vault: using the token kept in the state directory");
      this.#planNext(s);
      return s;
    }
    return this.#login(reason);
  }

  #newState(token: string): State {
    this.#secrets.add(token);
    const s: State = { token, gen: ++this.#gen, renewable: false, obtainedAt: this.#now(), worked: false };
    this.#state = s;
    this.#renewFailures = 0;
    return s;
  }

  #ttlLabel(s: State): string {
    return s.ttlMs === undefined ? "unknown" : s.ttlMs === 0 ? "never expires" : formatDuration(s.ttlMs);
  }

  async #login(reason: string): Promise<State> {
    const a = this.#o.auth;
    if (!this.canLogin) throw new FatalError(`vault: auth method ${a.method} cannot log in`);
    const r = await login(a as LoginAuth, {
      client: this.#o.client,
      env: this.#o.env,
      redact: this.redact,
      remember: (secret) => this.#secrets.add(secret),
      unwrapped: this.#unwrapped,
      ...(this.#certClient ? { certClient: this.#certClient } : {}),
      ...(this.#o.state ? { state: this.#o.state } : {}),
      ...(this.#o.awsCredentials ? { awsCredentials: this.#o.awsCredentials } : {}),
    });
    const s = this.#newState(r.token);
    s.ttlMs = r.ttlS === undefined ? undefined : r.ttlS * 1000;
    s.initialTtlMs = s.ttlMs;
    s.renewable = r.renewable;
    this.#loginFailures = 0;
    this.#o.logger.info({ method: a.method, mount: (a as LoginAuth).mount, reason, ttl: this.#ttlLabel(s), renewable: s.renewable }, "vault: logged in");
    this.#planNext(s);
    if (this.#keeping) await keepToken(this.#o.state, a as LoginAuth, s);
    return s;
  }

  async #checkFile(force: boolean): Promise<State> {
    const a = this.#o.auth;
    if (a.method !== "token_file") throw new FatalError("vault: not a token file");
    const file = await tokenFileId(a.path);
    const cur = this.#state;
    if (cur && cur.fileId === file.id && !force) return cur;
    const token = await file.read();
    const id = file.id;
    if (token === "") throw new TransientError(`vault: token file ${a.path} is empty`);
    if (this.#state && this.#state.token === token) {
      this.#state.fileId = id;
      return this.#state;
    }
    const s = this.#newState(token);
    s.fileId = id;
    this.#o.logger.info({ method: "token_file", file: a.path, first: !cur }, cur ? "vault: the token file changed; using the new token" : "vault: read the token file");
    if (a.renew) await this.#lookupAndPlan(s);
    return s;
  }

  /**
   * Learns the token's TTL. Best effort: a token without lookup-self permission still reads.
   * @returns false when the lookup should be tried again later (Vault unreachable, 5xx, 429)
   */
  async #lookup(s: State): Promise<boolean> {
    let res: VaultResponse;
    try {
      res = await this.#o.client.request({ method: "GET", path: "auth/token/lookup-self", token: s.token });
    } catch (err) {
      this.#o.logger.warn({ err: safeError(err) }, "vault: cannot look up the token yet; will try again");
      return false;
    }
    if (res.status !== 200) {
      const retry = res.status === 412 || res.status === 429 || res.status >= 500;
      this.#o.logger.warn(
        { status: res.status, reason: vaultErrors(res.body, this.redact) },
        res.status === 403
          ? "vault: token lookup denied (the token is invalid, or its policy lacks auth/token/lookup-self); it is not renewed"
          : retry
            ? "vault: cannot look up the token yet; will try again"
            : "vault: cannot look up the token; its TTL is unknown and it is not renewed",
      );
      return !retry;
    }
    s.worked = true;
    const d = (res.body?.data ?? {}) as { ttl?: unknown; creation_ttl?: unknown; renewable?: unknown };
    const ttl = num(d.ttl);
    s.ttlMs = ttl === undefined ? undefined : ttl * 1000;
    const created = num(d.creation_ttl);
    s.initialTtlMs = created !== undefined && created > 0 ? created * 1000 : s.ttlMs;
    s.renewable = d.renewable === true;
    s.obtainedAt = this.#now();
    return true;
  }

  /** Looks the token up, then plans its renewal; a failed lookup is retried with backoff. */
  async #lookupAndPlan(s: State, attempt = 0): Promise<void> {
    if (this.#state !== s || this.#closed) return;
    if (await this.#lookup(s)) this.#planNext(s);
    else if (this.#state === s) this.#schedule(() => this.#lookupAndPlan(s, attempt + 1), backoff(attempt));
  }

  async #isAlive(token: string): Promise<boolean> {
    try {
      const res = await this.#o.client.request({ method: "GET", path: "auth/token/lookup-self", token });
      return res.status !== 403;
    } catch {
      return true;
    }
  }

  #schedule(fn: () => Promise<void>, delayMs: number): void {
    clearLongTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    // A long timer: a token TTL can pass Node's 24.8-day limit.
    const t = setLongTimeout(() => {
      if (this.#timer === t) this.#timer = undefined;
      fn().catch((err: unknown) => this.#o.logger.warn({ err: safeError(err) }, "vault: token upkeep failed"));
    }, Math.max(0, delayMs), { unref: true });
    this.#timer = t;
  }

  /** After a new token or a renewal: when to renew, or to log in again. */
  #planNext(s: State): void {
    if (this.#state !== s) return;
    if (!s.ttlMs) {
      clearLongTimeout(this.#timer);
      this.#timer = undefined;
      return;
    }
    const delay = s.ttlMs * (2 / 3) * (0.9 + 0.1 * Math.random());
    // A capped renewal means the max TTL ends with this TTL: a login method logs in again before.
    const nearMax = s.capped === true || (s.initialTtlMs !== undefined && s.ttlMs < s.initialTtlMs / 3);
    if (s.capped && !this.canLogin) return;
    if (this.#o.auth.renew && s.renewable && !(nearMax && this.canLogin)) this.#schedule(() => this.#renew(s), delay);
    else if (this.canLogin) this.#schedule(() => this.#relogin(nearMax ? "the token is near its max TTL" : "the token is not renewable"), delay);
  }

  async #renew(s: State): Promise<void> {
    if (this.#state !== s || this.#closed) return;
    const incrementS = Math.max(1, Math.round((s.initialTtlMs ?? s.ttlMs ?? 0) / 1000));
    let res: VaultResponse;
    try {
      res = await this.#o.client.request({ method: "POST", path: "auth/token/renew-self", body: { increment: `${incrementS}s` }, token: s.token });
    } catch (err) {
      return this.#renewFailed(s, err, false);
    }
    if (this.#state !== s) return;
    const r = renewOutcome(res, incrementS, this.redact);
    if (r.kind === "failed") return this.#renewFailed(s, r.err, r.permanent);
    if (r.kind === "at-max") {
      // The token is ending: log in again now, not retry on it.
      if (this.canLogin) return this.#relogin("the token reached its max TTL");
      this.#o.logger.error({ method: this.#o.auth.method }, "vault: the token reached its max TTL and will expire; give emissary a new token");
      return;
    }
    if (r.capped && !s.capped && !this.canLogin) {
      // Renewing again cannot extend it: say once, while there is time, when it ends.
      this.#o.logger.error({ method: this.#o.auth.method, expiresAt: new Date(this.#now() + r.ttlS * 1000).toISOString() }, "vault: the token is at its max TTL and cannot be renewed past it; give emissary a new token before it expires");
    }
    Object.assign(s, { ttlMs: r.ttlS * 1000, renewable: r.renewable, obtainedAt: this.#now(), worked: true, capped: r.capped });
    this.#renewFailures = 0;
    this.#o.logger.debug({ ttl: this.#ttlLabel(s) }, "vault: token renewed");
    this.#planNext(s);
    if (this.#keeping) await keepToken(this.#o.state, this.#o.auth as LoginAuth, s);
  }

  async #renewFailed(s: State, err: unknown, permanent: boolean): Promise<void> {
    if (this.#state !== s || this.#closed) return;
    this.#renewFailures++;
    const remaining = s.ttlMs ? s.obtainedAt + s.ttlMs - this.#now() : 0;
    this.#o.logger.warn({ err: safeError(err), attempt: this.#renewFailures, permanent }, "vault: token renewal failed");
    if (this.canLogin && (permanent || this.#renewFailures >= RENEW_ATTEMPTS || remaining < 0.1 * (s.ttlMs ?? 0))) {
      return this.#relogin("token renewal failed");
    }
    if (permanent || remaining <= 0) {
      if (this.#o.auth.method !== "token_file") this.#o.logger.error({ method: this.#o.auth.method }, "vault: the token cannot be renewed and will expire; give emissary a new token");
      return;
    }
    this.#schedule(() => this.#renew(s), Math.min(backoff(this.#renewFailures - 1), Math.max(BACKOFF_BASE_MS, remaining / 3)));
  }

  async #relogin(reason: string): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#acquire(reason);
    } catch (err) {
      this.#loginFailures++;
      const delay = backoff(this.#loginFailures - 1);
      this.#o.logger.warn({ err: safeError(err), attempt: this.#loginFailures, retryInMs: delay }, "vault: logging in again failed");
      this.#schedule(() => this.#relogin(reason), delay);
    }
  }
}
