import { pathToFileURL } from "node:url";
import type { Logger } from "pino";
import type { Backend, BackendFactory, StateAccess } from "../api/backend.js";
import type { BackendSettings } from "../config/resolve.js";
import { ConfigError } from "../api/errors.js";
import { warnWritableByOthers, type TrustedFile } from "../config/permissions.js";
import { safeError } from "../api/log.js";

type BuiltinLoader = () => Promise<{ default: BackendFactory }>;

/** Built-in backends, loaded on first use so a file-only deployment never loads an SDK. */
const BUILTINS: Readonly<Record<string, BuiltinLoader>> = {
  file: () => import("../../backends/file.js"),
  env: () => import("../../backends/env.js"),
  http: () => import("../../backends/http.js"),
  awssm: () => import("../../backends/awssm.js"),
  ssm: () => import("../../backends/ssm.js"),
  vault: () => import("../../backends/vault.js"),
};
const BUILTIN_ALIASES: Readonly<Record<string, string>> = { insecure: "http" };

/** Options for {@link BackendRegistry}. */
export interface RegistryOptions {
  readonly settings: Readonly<Record<string, BackendSettings>>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  readonly configFile?: string;
  /** Backends passed by a library caller. */
  readonly custom?: readonly (Backend | BackendFactory)[];
  /** Absolute paths of `--backend-module` files. */
  readonly modules?: readonly string[];
  /** The state directory's entries of one backend (by its name; `custom` before a custom one has a name). */
  readonly state?: (backend: string) => StateAccess;
}

/**
 * Knows every backend by name and alias, builds built-ins lazily with their config section,
 * and closes them in reverse order of creation.
 */
export class BackendRegistry {
  readonly #opts: RegistryOptions;
  readonly #ready = new Map<string, Backend>();
  readonly #pending = new Map<string, Promise<Backend>>();
  readonly #aliases = new Map<string, string>(Object.entries(BUILTIN_ALIASES));
  readonly #created: Backend[] = [];

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
  }

  /** Loads custom backends and modules, and builds every backend that has a config section (to validate it). */
  async init(): Promise<void> {
    await this.#warnPermissions();
    for (const item of this.#opts.custom ?? []) this.#add(await this.#build(item, "custom backend"));
    for (const path of this.#opts.modules ?? []) {
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      } catch (err) {
        throw new ConfigError(`backend module ${path}: cannot load it: ${safeError(err).message}`, { file: path });
      }
      const exported = (mod.default ?? mod.backend) as Backend | BackendFactory | undefined;
      if (!exported) throw new ConfigError(`backend module ${path}: has no default export (a Backend or a factory returning one)`, { file: path });
      this.#add(await this.#build(exported, `backend module ${path}`, path));
    }
    for (const name of Object.keys(this.#opts.settings)) {
      if (!this.has(name)) {
        throw new ConfigError(`${this.#opts.configFile ?? "config"}: backends.${name}: unknown backend (known: ${this.names().join(", ")})`, {
          field: `backends.${name}`,
          ...(this.#opts.configFile ? { file: this.#opts.configFile } : {}),
        });
      }
      await this.get(name);
    }
  }

  /**
   * Warns when others can write the config file or a backend module (or the directory holding
   * it): both decide what emissary runs, usually as root. Checked before any module is loaded.
   */
  async #warnPermissions(): Promise<void> {
    const files: TrustedFile[] = [];
    if (this.#opts.configFile) {
      files.push({ path: this.#opts.configFile, what: "the config file", risk: "chooses the backends, modules and templates emissary uses" });
    }
    for (const path of this.#opts.modules ?? []) {
      files.push({ path, what: "a backend module", risk: "runs code inside emissary, as its user" });
    }
    await warnWritableByOthers(files, this.#opts.logger);
  }

  /** Canonical name for a name or alias, or undefined when unknown. */
  canonical(name: string): string | undefined {
    if (this.#ready.has(name) || name in BUILTINS) return name;
    return this.#aliases.get(name);
  }

  /** True when `name` (or alias) is a known backend. */
  has(name: string): boolean {
    return this.canonical(name) !== undefined;
  }

  /** Every known backend name. */
  names(): string[] {
    return [...new Set([...Object.keys(BUILTINS), ...this.#ready.keys()])].sort();
  }

  /** Names of the backends built so far (those in use). */
  inUse(): string[] {
    return this.#created.map((b) => b.name);
  }

  /** The `refresh` from the backend's config section, if any. */
  refreshMs(name: string): number | undefined {
    return this.#opts.settings[name]?.refreshMs;
  }

  /** Returns the backend, building a built-in on first use. */
  async get(name: string): Promise<Backend> {
    const canonical = this.canonical(name);
    if (!canonical) throw new ConfigError(`unknown backend "${name}" (known: ${this.names().join(", ")})`);
    const ready = this.#ready.get(canonical);
    if (ready) return ready;
    let p = this.#pending.get(canonical);
    if (!p) {
      p = (async () => {
        const loader = BUILTINS[canonical]!;
        const mod = await loader();
        const backend = await this.#build(mod.default, `backend ${canonical}`, undefined, canonical);
        this.#add(backend);
        return backend;
      })();
      this.#pending.set(canonical, p);
      p.catch(() => this.#pending.delete(canonical));
    }
    return p;
  }

  /** Closes every backend, newest first. Never throws. */
  async close(): Promise<void> {
    for (const b of [...this.#created].reverse()) {
      try {
        await b.close?.();
      } catch (err) {
        this.#opts.logger.warn({ backend: b.name, err: safeError(err) }, "closing backend failed");
      }
    }
    this.#created.length = 0;
    this.#ready.clear();
    this.#pending.clear();
  }

  #add(b: Backend): void {
    if (this.#ready.has(b.name) && this.#ready.get(b.name) !== b) this.#opts.logger.warn({ backend: b.name }, "a custom backend replaces one of the same name");
    this.#ready.set(b.name, b);
    for (const a of b.aliases ?? []) this.#aliases.set(a, b.name);
    this.#created.push(b);
  }

  async #build(item: Backend | BackendFactory, what: string, file?: string, configName?: string): Promise<Backend> {
    let backend: Backend;
    if (typeof item === "function") {
      const name = configName;
      const section = name ? this.#opts.settings[name]?.config : undefined;
      try {
        backend = await item({
          config: section ?? {},
          env: this.#opts.env,
          logger: this.#opts.logger.child({ backend: name ?? "custom" }),
          ...(this.#opts.configFile ? { configFile: this.#opts.configFile } : {}),
          ...(this.#opts.state ? { state: this.#opts.state(name ?? "custom") } : {}),
        });
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        // A ConfigError of another copy of emissaryd (a module importing the package while the
        // CLI runs its bundle) is matched by its code, as every error of the backend contract is.
        if ((err as { code?: unknown } | null)?.code === "CONFIG") {
          const { file: f, field } = err as { file?: unknown; field?: unknown };
          throw new ConfigError(safeError(err).message, { ...(typeof f === "string" ? { file: f } : {}), ...(typeof field === "string" ? { field } : {}) });
        }
        throw new ConfigError(`${what}: cannot create it: ${safeError(err).message}`, file ? { file } : {});
      }
    } else {
      backend = item;
    }
    if (!backend || typeof backend.name !== "string" || typeof backend.fetch !== "function") {
      throw new ConfigError(`${what}: is not a Backend ({ name, fetch })`, file ? { file } : {});
    }
    if (!/^[a-z][a-z0-9_-]*$/.test(backend.name)) throw new ConfigError(`${what}: bad backend name "${backend.name}" (lower case letters, digits, - and _)`);
    return backend;
  }
}
