import { readFailure, readRegularFileSync } from "../api/safe-read.js";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import { createRequire } from "node:module";
import { ConfigError } from "../api/errors.js";
import { parseDuration } from "../api/duration.js";
import { globToRegExp } from "./glob.js";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../api/log.js";
import { parseMode } from "./mode.js";

/**
 * zod through `require`, not `import`: its entry re-exports ~50 locale modules, and Node's ESM
 * loader opens every file of a module graph at once — under a small descriptor limit
 * (`ulimit -n 64`, seen in minimal containers) that fails with EMFILE before emissary starts.
 * CommonJS loading reads one file at a time.
 */
const { z } = createRequire(import.meta.url)("zod") as typeof import("zod");

/** Per-backend settings: the core's `refresh`, and the rest handed to the backend factory. */
export interface BackendSettings {
  /** Re-fetch interval for resolved secrets of this backend. */
  readonly refreshMs?: number;
  /** The remaining keys of `backends.<name>`, for the backend to validate. */
  readonly config: Readonly<Record<string, unknown>>;
}

/** One validated, frozen configuration: flags > environment > config file > defaults. */
export interface ResolvedConfig {
  /** Absolute template directory. @defaultValue the working directory */
  readonly templates: string;
  /** Glob of template file names (not recursive). @defaultValue "*.tpl" */
  readonly pattern: string;
  /** Absolute config file path, when one was given. */
  readonly configFile?: string;
  /** @defaultValue 0 */
  readonly startupDelayMs: number;
  /** `once`/`render` give up after this. @defaultValue undefined (wait forever) */
  readonly timeoutMs?: number;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  /**
   * Absolute directory where issued certificates and leases are kept across restarts; `""` = off.
   * @defaultValue {@link DEFAULT_STATE_DIR}
   */
  readonly stateDir: string;
  /** `HOST:PORT` of the status server; undefined = off. */
  readonly statusAddr?: string;
  /**
   * Absolute path of `status.control_token_file`: the bearer token control requests
   * (`POST /v1/refresh`) must carry when the status server listens on a non-loopback address.
   */
  readonly controlTokenFile?: string;
  readonly defaults: {
    /** @defaultValue 0o600 */
    readonly mode: number;
    /** @defaultValue 30000 */
    readonly commandTimeoutMs: number;
    /** Retry interval for secrets not yet set. @defaultValue 10000 (the original's interval) */
    readonly retryMs: number;
    /** `defaults.splay`: random wait before each command run, up to this. @defaultValue 0 */
    readonly splayMs: number;
    /** `defaults.min_interval`: shortest time between two starts of a command. @defaultValue 0 */
    readonly minIntervalMs: number;
  };
  readonly backends: Readonly<Record<string, BackendSettings>>;
  /** Absolute paths of backend modules to load. */
  readonly modules: readonly string[];
}

/** Values from command-line flags (undefined = not given). */
export interface FlagValues {
  templates?: string;
  pattern?: string;
  config?: string;
  startupDelay?: string;
  logLevel?: string;
  logFormat?: string;
  statusAddr?: string;
  backendModules?: string[];
  timeout?: string;
  /** `--state-dir`; `""` turns the state directory off. */
  stateDir?: string;
}

/** Where issued certificates and leases are kept when nothing says otherwise. */
export const DEFAULT_STATE_DIR = "/var/lib/emissary";

const duration = z.union([z.string(), z.number()]);
const fileSchema = z
  .object({
    templates: z.string().min(1).optional(),
    pattern: z.string().min(1).optional(),
    startup_delay: duration.optional(),
    timeout: duration.optional(),
    state_dir: z.string().optional(),
    log: z.object({ level: z.enum(LOG_LEVELS).optional(), format: z.enum(LOG_FORMATS).optional() }).strict().optional(),
    status: z.object({ listen: z.string().min(1).optional(), control_token_file: z.string().min(1).optional() }).strict().optional(),
    defaults: z
      .object({
        mode: z.union([z.string(), z.number()]).optional(),
        command_timeout: duration.optional(),
        retry: duration.optional(),
        splay: duration.optional(),
        min_interval: duration.optional(),
      })
      .strict()
      .optional(),
    backends: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).optional(),
    modules: z.array(z.string().min(1)).optional(),
  })
  .strict();

type FileConfig = import("zod").infer<typeof fileSchema>;

function issuePath(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

/** Largest config file read (it is a page of YAML; `/dev/zero` or a huge file is refused). */
const CONFIG_MAX_BYTES = 1024 * 1024;

/** Reads and validates the YAML config file. Unknown keys are errors naming the key. */
export function readConfigFile(file: string): FileConfig {
  let text: string;
  try {
    text = readRegularFileSync(file, { maxBytes: CONFIG_MAX_BYTES }).toString("utf8");
  } catch (err) {
    throw new ConfigError(`${file}: cannot read config file (${readFailure(err)})`, { file });
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new ConfigError(`${file}${pos ? `:${pos.line}:${pos.col}` : ""}: invalid YAML: ${e.message.split("\n")[0]}`, { file });
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    // toJS() throws for an alias without its anchor, or too many aliases (a "billion laughs").
    throw new ConfigError(`${file}: invalid YAML: ${(err as Error).message}`, { file });
  }
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    let field = issuePath(issue.path);
    let reason = issue.message;
    if (issue.code === "unrecognized_keys") {
      const key = (issue as { keys: string[] }).keys[0]!;
      field = field ? `${field}.${key}` : key;
      reason = "unknown key";
    }
    const line = lineOf(doc, issue.path, issue.code === "unrecognized_keys" ? (issue as { keys: string[] }).keys[0] : undefined, text);
    throw new ConfigError(`${file}${line ? `:${line}` : ""}: ${field || "(top level)"}: ${reason}`, { file, field });
  }
  const mode = parsed.data.defaults?.mode;
  if (mode !== undefined) {
    try {
      parseMode(mode, String(mode));
    } catch (err) {
      // Checked here, where the line is known; resolveConfig parses it again.
      const line = lineOf(doc, ["defaults", "mode"], undefined, text);
      const reason = (err as { reason?: string }).reason ?? (err as Error).message;
      throw new ConfigError(`${file}${line ? `:${line}` : ""}: defaults.mode: ${reason}`, { file, field: "defaults.mode" });
    }
  }
  return parsed.data;
}

function lineOf(doc: ReturnType<typeof parseDocument>, path: readonly PropertyKey[], key: string | undefined, text: string): number | undefined {
  const full = key === undefined ? path : [...path, key];
  try {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let node: any = doc.contents;
    let range: [number, number, number] | undefined;
    for (const seg of full) {
      if (!node?.items) break;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const pair = node.items.find((p: any) => (p.key?.value ?? p.key) === seg || String(p.key?.value) === String(seg));
      if (!pair) break;
      range = pair.key?.range;
      node = pair.value;
    }
    if (!range) return undefined;
    return text.slice(0, range[0]).split("\n").length;
  } catch {
    return undefined;
  }
}

function dur(value: string | number | undefined, field: string, file?: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  try {
    return typeof value === "number" ? parseDuration(`${value}s`) : parseDuration(value);
  } catch (err) {
    throw new ConfigError(`${file ? file + ": " : ""}${field}: ${(err as Error).message}`, { field, ...(file ? { file } : {}) });
  }
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], field: string): T | undefined {
  if (value === undefined || value === "") return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(`${field}: "${value}" is not one of ${allowed.join(", ")}`, { field });
  return value as T;
}

/** Validates `HOST:PORT` of the status address. */
export function parseListenAddress(addr: string, field = "--status-addr"): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${field}: "${addr}" is not HOST:PORT (e.g. 127.0.0.1:9750)`, { field });
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/**
 * Builds the {@link ResolvedConfig}: flags win over environment variables, which win over the
 * config file, which wins over defaults.
 * @throws {@link ConfigError} naming the flag, variable or key at fault.
 */
export function resolveConfig(flags: FlagValues, env: Readonly<Record<string, string | undefined>>, cwd: string): ResolvedConfig {
  const configPath = flags.config ?? nonEmpty(env.EMISSARY_CONFIG);
  const configFile = configPath ? resolve(cwd, configPath) : undefined;
  const file: FileConfig = configFile ? readConfigFile(configFile) : {};
  const fileDir = configFile ? dirname(configFile) : cwd;

  const templatesRaw = flags.templates ?? nonEmpty(env.EMISSARY_TPL_DIR);
  const templates = templatesRaw ? resolve(cwd, templatesRaw) : file.templates ? resolve(fileDir, file.templates) : cwd;
  const pattern = flags.pattern ?? nonEmpty(env.EMISSARY_TPL_PATTERN) ?? file.pattern ?? "*.tpl";
  try {
    globToRegExp(pattern);
  } catch (err) {
    // Caught here, a bad glob is a usage error (exit 2) instead of a crash at the first directory scan.
    const field = flags.pattern ? "--pattern" : env.EMISSARY_TPL_PATTERN ? "EMISSARY_TPL_PATTERN" : "pattern";
    throw new ConfigError(`${field}: ${(err as Error).message}`, { field, ...(configFile && field === "pattern" ? { file: configFile } : {}) });
  }

  const startupDelayMs =
    dur(flags.startupDelay, "--startup-delay") ?? dur(nonEmpty(env.EMISSARY_STARTUP_DELAY), "EMISSARY_STARTUP_DELAY") ?? dur(file.startup_delay, "startup_delay", configFile) ?? 0;
  const timeoutMs = dur(flags.timeout, "--timeout") ?? dur(nonEmpty(env.EMISSARY_TIMEOUT), "EMISSARY_TIMEOUT") ?? dur(file.timeout, "timeout", configFile);

  const level =
    oneOf(flags.logLevel, LOG_LEVELS, "--log-level") ?? oneOf(nonEmpty(env.EMISSARY_LOG_LEVEL), LOG_LEVELS, "EMISSARY_LOG_LEVEL") ?? file.log?.level ?? "info";
  const format =
    oneOf(flags.logFormat, LOG_FORMATS, "--log-format") ?? oneOf(nonEmpty(env.EMISSARY_LOG_FORMAT), LOG_FORMATS, "EMISSARY_LOG_FORMAT") ?? file.log?.format ?? "json";

  // An empty value means off, so the environment variable counts when it is set at all.
  const stateRaw = flags.stateDir ?? env.EMISSARY_STATE_DIR;
  const stateDir =
    stateRaw !== undefined ? (stateRaw.trim() === "" ? "" : resolve(cwd, stateRaw)) : file.state_dir !== undefined ? (file.state_dir.trim() === "" ? "" : resolve(fileDir, file.state_dir)) : DEFAULT_STATE_DIR;

  const statusAddr = flags.statusAddr ?? nonEmpty(env.EMISSARY_STATUS_ADDR) ?? file.status?.listen;
  if (statusAddr) parseListenAddress(statusAddr, flags.statusAddr ? "--status-addr" : env.EMISSARY_STATUS_ADDR ? "EMISSARY_STATUS_ADDR" : "status.listen");

  let mode = 0o600;
  if (file.defaults?.mode !== undefined) {
    try {
      mode = parseMode(file.defaults.mode, String(file.defaults.mode));
    } catch (err) {
      throw new ConfigError(`${configFile}: defaults.mode: ${(err as { reason?: string }).reason ?? (err as Error).message}`, { field: "defaults.mode", ...(configFile ? { file: configFile } : {}) });
    }
  }
  const commandTimeoutMs = dur(file.defaults?.command_timeout, "defaults.command_timeout", configFile) ?? 30_000;
  const retryMs = dur(file.defaults?.retry, "defaults.retry", configFile) ?? 10_000;
  const splayMs = dur(file.defaults?.splay, "defaults.splay", configFile) ?? 0;
  const minIntervalMs = dur(file.defaults?.min_interval, "defaults.min_interval", configFile) ?? 0;
  const tokenFile = file.status?.control_token_file;
  const controlTokenFile = tokenFile !== undefined ? resolve(fileDir, tokenFile) : undefined;

  const backends: Record<string, BackendSettings> = {};
  for (const [name, section] of Object.entries(file.backends ?? {})) {
    const { refresh, ...rest } = section ?? {};
    const refreshMs = dur(refresh as string | number | undefined, `backends.${name}.refresh`, configFile);
    backends[name] = Object.freeze({ ...(refreshMs !== undefined ? { refreshMs } : {}), config: Object.freeze(rest) });
  }

  const modules: string[] = [];
  for (const m of file.modules ?? []) modules.push(isAbsolute(m) ? m : resolve(fileDir, m));
  const envModules = nonEmpty(env.EMISSARY_BACKEND_MODULES)?.split(",").map((s) => s.trim()).filter(Boolean) ?? [];
  for (const m of flags.backendModules && flags.backendModules.length > 0 ? flags.backendModules : envModules) modules.push(resolve(cwd, m));

  return Object.freeze({
    templates,
    pattern,
    ...(configFile ? { configFile } : {}),
    startupDelayMs,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    log: Object.freeze({ level, format }),
    stateDir,
    ...(statusAddr ? { statusAddr } : {}),
    ...(controlTokenFile ? { controlTokenFile } : {}),
    defaults: Object.freeze({ mode, commandTimeoutMs, retryMs, splayMs, minIntervalMs }),
    backends: Object.freeze(backends),
    modules: Object.freeze([...new Set(modules)]),
  });
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}
