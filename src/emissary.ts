import type { Logger } from "pino";
import type { EmissaryOptions } from "./config/options.js";
import { CommandQueue } from "./output/commands.js";
import { storedTexts } from "./output/mask.js";
import { resolveConfig, type FlagValues, type ResolvedConfig } from "./config/resolve.js";
import { TypedEmitter, type EmissaryEventName, type Listener } from "./observe/events.js";
import { globToRegExp } from "./config/glob.js";
import { createLogger, safeError } from "./observe/log.js";
import { BackendRegistry } from "./sources/registry.js";
import { Runner } from "./runner.js";
import type { TemplateEntry } from "./templates/entry.js";
import { DEFAULT_REFRESH_MS, Scheduler } from "./sources/scheduler.js";
import { buildStatus, recordFetch, type EmissaryPhase, type EmissaryStatus, type FetchRecord } from "./observe/status-model.js";
import { runRefresh, type RefreshReport, type RefreshRequest } from "./observe/refresh-report.js";
import { RefreshLimiter } from "./sources/refresh-limiter.js";
import { StateDir } from "./sources/state.js";
import { SecretStore } from "./sources/store.js";
import { planReferences } from "./templates/bind.js";
import { TemplateSync } from "./templates/sync.js";
import { TemplateDirWatcher } from "./templates/template-dir.js";

export type { EmissaryOptions } from "./config/options.js";


/** Result of {@link Emissary.settled}. */
export interface SettleResult {
  /** Every template rendered and every command succeeded. */
  readonly ok: boolean;
  readonly status: EmissaryStatus;
}

/** A running (or startable) emissary. */
export interface Emissary {
  /** The configuration in effect. */
  readonly config: ResolvedConfig;
  /** Loads templates, starts fetching, rendering and watching. */
  start(): Promise<void>;
  /** Stops gracefully: in-flight writes finish, a running command gets its timeout (`force` ends it). Idempotent. */
  stop(opts?: { force?: boolean }): Promise<void>;
  /** Reloads config and every template, keeping already-fetched values. */
  reload(): Promise<void>;
  /** Subscribes to an event. */
  on<K extends EmissaryEventName>(event: K, fn: Listener<K>): Emissary;
  /** Unsubscribes. */
  off<K extends EmissaryEventName>(event: K, fn: Listener<K>): Emissary;
  /** Subscribes for one event. */
  once<K extends EmissaryEventName>(event: K, fn: Listener<K>): Emissary;
  /** A sanitized snapshot: templates, states, pending references, last errors, next fetches. No values. */
  status(): EmissaryStatus;
  /**
   * Fetches the named references — or every reference of the named templates; all when none are
   * named — now, ignoring refresh timers and backend caches (`reissue`: also re-issues
   * certificates and re-reads leased secrets). Each reference at most once a second: a refresh
   * inside that window answers with the last result, marked `rateLimited`. Resolves once every
   * fetch has settled; changed values render as usual.
   * @throws {@link UnknownNameError} for a name no template uses; {@link TransientError} while not running
   */
  refresh(req?: RefreshRequest & { source?: string }): Promise<RefreshReport>;
  /**
   * Resolves when every valid template has rendered (or failed for good) and no command is
   * queued or running: what `emissary once` waits for.
   */
  settled(): Promise<SettleResult>;
  /** Same as stop(). */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates an emissary. Nothing runs until `start()`.
 * @example
 * const e = await createEmissary({ templates: "/etc/emissary", backends: [myBackend] });
 * e.on("render", (ev) => console.log(ev.template, ev.dest));
 * await e.start();
 */
export async function createEmissary(options: EmissaryOptions = {}): Promise<Emissary> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const flags: FlagValues = options.flags ?? {
    ...(options.templates !== undefined ? { templates: options.templates } : {}),
    ...(options.pattern !== undefined ? { pattern: options.pattern } : {}),
    ...(options.config !== undefined ? { config: options.config } : {}),
    ...(options.modules ? { backendModules: [...options.modules] } : {}),
    ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
  };
  const config = options.resolved ?? resolveConfig(flags, env, cwd);
  return new EmissaryImpl(options, config, flags, env, cwd);
}

class EmissaryImpl implements Emissary {
  config: ResolvedConfig;
  readonly #logger: Logger;
  readonly #events: TypedEmitter;
  readonly #store = new SecretStore();
  readonly #commands: CommandQueue;
  readonly #runner: Runner;
  #registry!: BackendRegistry;
  #scheduler!: Scheduler;
  #state: StateDir;
  /** Reference keys the templates use now (what the state directory keeps). */
  #neededKeys: ReadonlySet<string> = new Set();
  #stateGc: Promise<void> = Promise.resolve();
  readonly #templates: TemplateSync;
  #watcher?: TemplateDirWatcher;
  #keepAlive?: NodeJS.Timeout;
  #started = false;
  #stopPromise?: Promise<void>;
  #reloading?: Promise<void>;
  #reloadAgain = false;
  #settleWaiters: (() => void)[] = [];
  #readyAnnounced = false;
  #phase: EmissaryPhase = "created";
  #startedAt?: number;
  /** Last fetch outcome per reference key, for status(). */
  readonly #fetches = new Map<string, FetchRecord>();
  readonly #limiter = new RefreshLimiter();

  constructor(
    private readonly options: EmissaryOptions,
    config: ResolvedConfig,
    private readonly flags: FlagValues,
    private readonly env: Readonly<Record<string, string | undefined>>,
    private readonly cwd: string,
  ) {
    this.config = config;
    this.#logger = options.logger ?? createLogger(config.log);
    this.#state = new StateDir({ dir: config.stateDir, logger: this.#logger });
    this.#events = new TypedEmitter(() => this.#logger);
    this.#commands = new CommandQueue({
      logger: this.#logger,
      env,
      cwd,
      // Variables read as env: secrets are secrets: a reload command does not inherit them.
      hiddenEnv: () => this.#runner.entries.flatMap((e) => [...(e.template?.secrets.values() ?? [])].filter((s) => s.ref.backend === "env").map((s) => s.ref.id)),
      // A command may print any template's secret: every value held is masked from its output.
      otherSecrets: () => [...this.#store.secrets()].flatMap(storedTexts),
      onDone: (e) => {
        this.#runner.commandDone(e.templates, {
          ok: e.ok,
          exitCode: e.exitCode,
          signal: e.signal,
          timedOut: e.timedOut,
          durationMs: e.durationMs,
          at: Date.now(),
          ...(e.error ? { error: e.error } : {}),
        });
        this.#events.emit("command", e);
      },
      onIdle: () => this.#checkSettled(),
      onWait: (w) => this.#logger.info({ templates: w.templates, command: w.command[0], until: new Date(w.until).toISOString(), reason: w.reason }, "command waiting"),
    });
    this.#runner = new Runner({
      store: this.#store,
      logger: this.#logger,
      commands: this.#commands,
      retryMs: config.defaults.retryMs,
      once: options.once ?? false,
      emit: (ev, payload) => this.#events.emit(ev, payload as never),
      afterPass: () => this.#checkSettled(),
    });
    this.#templates = new TemplateSync({
      logger: this.#logger,
      cwd,
      config: () => this.config,
      registry: () => this.#registry,
      current: () => this.#runner.entries,
      apply: (next) => this.#apply(next),
      onInvalid: (template, error) => this.#events.emit("error", { template, error }),
      pollMissingDir: options.watch === false,
    });
    this.#newScheduler();
  }

  on<K extends EmissaryEventName>(event: K, fn: Listener<K>): Emissary {
    this.#events.on(event, fn);
    return this;
  }
  off<K extends EmissaryEventName>(event: K, fn: Listener<K>): Emissary {
    this.#events.off(event, fn);
    return this;
  }
  once<K extends EmissaryEventName>(event: K, fn: Listener<K>): Emissary {
    this.#events.once(event, fn);
    return this;
  }

  #newScheduler(): void {
    this.#scheduler = new Scheduler({
      store: this.#store,
      logger: this.#logger,
      retryMs: this.config.defaults.retryMs,
      state: this.#state.refs,
      watchResolved: this.options.once !== true,
      onFetch: (o) => {
        recordFetch(this.#fetches, o.key, o.outcome, o.error);
        this.#events.emit("fetch", { backend: o.ref.backend, ref: o.key, outcome: o.outcome, changed: o.changed, durationMs: o.durationMs });
        if (o.changed) this.#runner.keyChanged(o.key);
        else if (o.outcome !== "ok") this.#checkSettled();
      },
    });
  }

  async #newRegistry(): Promise<void> {
    const registry = new BackendRegistry({
      settings: this.config.backends,
      env: this.env,
      logger: this.#logger,
      ...(this.config.configFile ? { configFile: this.config.configFile } : {}),
      ...(this.options.backends ? { custom: this.options.backends } : {}),
      modules: this.config.modules,
      state: (name) => this.#state.forBackend(name),
    });
    await registry.init();
    this.#registry = registry;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#phase = "starting";
    this.#startedAt = Date.now();
    await this.#newRegistry();
    // A ref'd timer keeps the process alive while emissary runs, even when every other timer is unref'd.
    this.#keepAlive = setInterval(() => undefined, 1 << 30);
    await this.#templates.sync();
    const s = this.status();
    this.#logger.info(
      { templatesDir: this.config.templates, pattern: this.config.pattern, templates: s.templates.length, invalid: s.templates.filter((t) => t.state === "invalid").length, backends: this.#registry.inUse() },
      "emissary started",
    );
    if (this.options.watch !== false) {
      this.#watcher = new TemplateDirWatcher({
        dir: this.config.templates,
        pattern: globToRegExp(this.config.pattern),
        logger: this.#logger,
        onChange: () => void this.#templates.sync(),
      });
      await this.#watcher.start();
      // Anything that changed between the first read and the watcher's first snapshot.
      await this.#templates.sync();
    }
    if (this.#phase === "starting") this.#phase = "running";
  }

  /**
   * Reloads are serialized and coalesced: a reload asked for while one runs becomes one more
   * whole reload after it (a SIGHUP storm is two reloads, never overlapping ones that leave
   * templates bound to a closed registry).
   */
  reload(): Promise<void> {
    if (!this.#started || this.#stopPromise) return Promise.resolve();
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      do {
        this.#reloadAgain = false;
        await this.#reloadOnce();
      } while (this.#reloadAgain && !this.#stopPromise);
    })().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reloadOnce(): Promise<void> {
    this.#logger.info("reloading configuration and templates");
    try {
      this.config = resolveConfig(this.flags, this.env, this.cwd);
    } catch (err) {
      this.#logger.error({ err: safeError(err) }, "reload failed: the configuration is invalid; keeping the running one");
      this.#events.emit("error", { error: err as Error });
      return;
    }
    // Backends are rebuilt with the new config; fetched values stay in the store, so nothing is refetched at once.
    if (this.config.stateDir !== this.#state.dir) this.#state = new StateDir({ dir: this.config.stateDir, logger: this.#logger });
    const oldScheduler = this.#scheduler;
    const oldRegistry = this.#registry;
    try {
      await this.#newRegistry();
    } catch (err) {
      this.#logger.error({ err: safeError(err) }, "reload failed: cannot create backends; keeping the running ones");
      this.#events.emit("error", { error: err as Error });
      return;
    }
    oldScheduler.stop();
    void oldRegistry.close();
    this.#newScheduler();
    await this.#templates.sync(true);
  }

  #apply(next: TemplateEntry[]): void {
    this.#runner.setTemplates(next);
    const needed = planReferences(next, (backend) => this.#registry.refreshMs(backend.name) ?? backend.defaultRefreshMs ?? DEFAULT_REFRESH_MS);
    for (const key of this.#scheduler.keys()) if (!needed.has(key)) this.#scheduler.release(key);
    for (const p of needed.values()) this.#scheduler.ensure(p.ref, p.backend, p.refreshMs, p.label);
    this.#store.retain(new Set(needed.keys()));
    this.#neededKeys = new Set(needed.keys());
    // Kept entries no template uses are deleted, but not while the template set is incomplete:
    // a missing directory or an invalid template would otherwise cost its certificates.
    if (!this.#templates.dirMissing && next.every((e) => e.state !== "invalid")) {
      this.#stateGc = this.#stateGc.then(() => this.#state.retain(this.#neededKeys)).then(
        () => undefined,
        (err: unknown) => this.#logger.warn({ err: safeError(err) }, "cleaning the state directory failed"),
      );
    }
    for (const key of this.#fetches.keys()) if (!needed.has(key)) this.#fetches.delete(key);
    this.#events.emit("reload", { templates: next.length, invalid: next.filter((e) => e.state === "invalid").length });
    this.#checkSettled();
  }

  status(): EmissaryStatus {
    const busySince = this.#runner.passStartedAt;
    return buildStatus(this.#runner.entries, this.#registry ? this.#registry.inUse() : [], this.#templates.dirMissing, {
      phase: this.#phase,
      ...(this.#startedAt !== undefined ? { startedAt: this.#startedAt } : {}),
      ...(busySince !== undefined ? { busySince } : {}),
      fetches: this.#fetches,
      timing: (key) => this.#scheduler.timing(key),
      waiting: this.#commands.waiting(),
      certificates: (key) => this.#store.get(key)?.secret.certificate,
      state: { dir: this.#state.dir, phase: this.#state.phase },
    });
  }

  refresh(req: RefreshRequest & { source?: string } = {}): Promise<RefreshReport> {
    const ctx = { entries: this.#runner.entries, dir: this.config.templates, scheduler: this.#scheduler, limiter: this.#limiter, logger: this.#logger, phase: this.#phase };
    return runRefresh({ ...ctx, ...(req.source ? { source: req.source } : {}) }, req);
  }

  #isSettled(): boolean {
    if (!this.#started || this.#runner.busy || !this.#commands.idle) return false;
    if (this.#templates.dirMissing) return false;
    return this.#runner.entries.every((e) => e.failed || e.state === "invalid" || (e.hasRendered && !e.dirty));
  }

  #checkSettled(): void {
    const s = this.#isSettled();
    if (s && !this.#readyAnnounced && this.#runner.entries.length > 0 && this.#runner.entries.every((e) => e.hasRendered)) {
      this.#readyAnnounced = true;
      this.#events.emit("ready", { templates: this.#runner.entries.length });
    }
    if (!s) return;
    const waiters = this.#settleWaiters;
    this.#settleWaiters = [];
    for (const w of waiters) w();
  }

  settled(): Promise<SettleResult> {
    const result = (): SettleResult => {
      const status = this.status();
      const ok = status.templates.every((t) => t.state === "rendered" && (t.lastCommand === undefined || t.lastCommand.ok));
      return { ok, status };
    };
    // Settle checks run after passes and commands; re-check on the next tick as well.
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.#isSettled()) resolve(result());
        else this.#settleWaiters.push(() => setImmediate(check));
      };
      setImmediate(check);
    });
  }

  stop(opts: { force?: boolean } = {}): Promise<void> {
    if (this.#stopPromise) {
      if (opts.force) void this.#commands.stop(true);
      return this.#stopPromise;
    }
    this.#phase = "stopping";
    this.#stopPromise = (async () => {
      this.#watcher?.stop();
      this.#scheduler.stop();
      // Let a reload and a template sync already under way finish before stopping the runner.
      await this.#reloading?.catch(() => undefined);
      await this.#templates.stop();
      while (this.#runner.busy) await new Promise((r) => setTimeout(r, 5));
      this.#runner.stop();
      await this.#commands.stop(opts.force ?? false);
      this.#runner.flushWriteLogs();
      await this.#registry?.close();
      await this.#stateGc;
      if (this.#keepAlive) clearInterval(this.#keepAlive);
      this.#phase = "stopped";
      this.#logger.info("emissary stopped");
    })();
    return this.#stopPromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
