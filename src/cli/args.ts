import { parseArgs } from "node:util";
import type { FlagValues } from "../config/resolve.js";

/** Parsed command line. */
export interface CliArgs {
  readonly command: "run" | "once" | "check" | "render" | "refresh" | "help" | "version";
  readonly file?: string;
  readonly flags: FlagValues;
  readonly json: boolean;
  /** `refresh`: the references and templates named (none: everything). */
  readonly names?: readonly string[];
  /** `refresh --reissue`. */
  readonly reissue?: boolean;
  /** `check --connect`. */
  readonly connect?: boolean;
  /** `check --connect --read`. */
  readonly read?: boolean;
}

/** A usage error (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const COMMANDS = new Set(["run", "once", "check", "render", "refresh"]);

/** Parses argv (without node and script). @throws {@link UsageError} */
export function parseCli(argv: readonly string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        templates: { type: "string" },
        pattern: { type: "string" },
        config: { type: "string" },
        "startup-delay": { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        "status-addr": { type: "string" },
        "backend-module": { type: "string", multiple: true },
        timeout: { type: "string" },
        "state-dir": { type: "string" },
        json: { type: "boolean" },
        connect: { type: "boolean" },
        read: { type: "boolean" },
        reissue: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  const flags: FlagValues = {
    ...(v.templates !== undefined ? { templates: v.templates } : {}),
    ...(v.pattern !== undefined ? { pattern: v.pattern } : {}),
    ...(v.config !== undefined ? { config: v.config } : {}),
    ...(v["startup-delay"] !== undefined ? { startupDelay: v["startup-delay"] } : {}),
    ...(v["log-level"] !== undefined ? { logLevel: v["log-level"] } : {}),
    ...(v["log-format"] !== undefined ? { logFormat: v["log-format"] } : {}),
    ...(v["status-addr"] !== undefined ? { statusAddr: v["status-addr"] } : {}),
    ...(v["backend-module"] !== undefined ? { backendModules: v["backend-module"] } : {}),
    ...(v.timeout !== undefined ? { timeout: v.timeout } : {}),
    ...(v["state-dir"] !== undefined ? { stateDir: v["state-dir"] } : {}),
  };
  if (v.help) return { command: "help", flags, json: false };
  if (v.version) return { command: "version", flags, json: false };
  const [cmd = "run", ...rest] = positionals;
  if (!COMMANDS.has(cmd)) throw new UsageError(`unknown command "${cmd}" (run, once, check, render FILE, refresh [NAME…])`);
  if (v.reissue && cmd !== "refresh") throw new UsageError("--reissue goes with refresh");
  if (v.connect && cmd !== "check") throw new UsageError("--connect goes with check");
  if (v.read && !(cmd === "check" && v.connect)) throw new UsageError("--read goes with check --connect");
  if (cmd === "render") {
    if (rest.length !== 1) throw new UsageError("render takes exactly one template FILE");
    return { command: "render", file: rest[0]!, flags, json: !!v.json };
  }
  if (cmd === "refresh") return { command: "refresh", flags, json: !!v.json, names: rest, reissue: !!v.reissue };
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (v.json && cmd !== "check") throw new UsageError("--json goes with check and refresh");
  return { command: cmd as CliArgs["command"], flags, json: !!v.json, ...(cmd === "check" ? { connect: !!v.connect, read: !!v.read } : {}) };
}
