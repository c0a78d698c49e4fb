/**
 * Everything the CLI does after flag parsing: resolve the config, make the logger, run the
 * command. `src/cli.ts` loads this module only for a real command, so `--version` and `--help`
 * never pay for it. The published `dist/src/cli/main.js` is this module bundled with its
 * dependencies into one file (scripts/bundle-cli.mjs): one file to load instead of ~170.
 * @module
 */
import { pino } from "pino";
import { ConfigError, EmissaryError } from "../api/errors.js";
import { resolveConfig } from "../config/resolve.js";
import { createLogger } from "../observe/log.js";
import { UsageError, type CliArgs } from "./args.js";

/** Runs a parsed command (not `help` or `version`). Resolves with the exit code. */
export async function runCommand(args: CliArgs): Promise<number> {
  let config;
  try {
    config = resolveConfig(args.flags, process.env, process.cwd());
  } catch (err) {
    process.stderr.write(`emissary: ${(err as Error).message}\n`);
    return 2;
  }
  // `render` prints the template on stdout, so its logs go to stderr.
  // `check --connect` prints a table, so its backends' lines go to stderr too.
  const logger =
    args.command === "render" || (args.command === "check" && (args.json || args.connect))
      ? createLogger({ ...config.log, destination: pino.destination({ dest: 2, sync: true }) })
      : createLogger(config.log);
  try {
    switch (args.command) {
      case "run":
        return await (await import("./daemon.js")).runDaemon({ config, logger, flags: args.flags });
      case "once":
        return await (await import("./once.js")).runOnce(config, logger);
      case "check":
        if (args.connect) return await (await import("./connect.js")).runConnect(config, logger, { json: args.json, read: args.read ?? false });
        return await (await import("./check.js")).runCheck(config, logger, args.json);
      case "refresh":
        return await (await import("./refresh.js")).runRefresh({ config, names: args.names ?? [], reissue: args.reissue ?? false, json: args.json });
      case "render":
        return await (await import("./render.js")).runRender(args.file!, config, logger);
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) {
      process.stderr.write(`emissary: ${err.message}\n`);
      return 2;
    }
    const msg = err instanceof EmissaryError ? err.message : `${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message ?? String(err)}`;
    process.stderr.write(`emissary: ${msg}\n`);
    return 1;
  }
  return 0;
}
