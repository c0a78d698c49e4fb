#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseCli, UsageError } from "./cli/args.js";
import { HELP } from "./cli/help.js";
// Only flag parsing and help are loaded up front: `--version` and `--help` never pay for the
// config validator, YAML, the logger or the daemon (bench B0).

/** The package version, read from package.json next to dist/. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as { version: string };
  return pkg.version;
}

/** CLI entry point. Resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseCli(argv);
  } catch (err) {
    process.stderr.write(`emissary: ${(err as Error).message}\nRun "emissary --help" for usage.\n`);
    return 2;
  }
  if (args.command === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.command === "version") {
    process.stdout.write(`emissary ${version()}\n`);
    return 0;
  }
  const [{ resolveConfig }, { ConfigError, EmissaryError }, { createLogger }, { pino }] = await Promise.all([
    import("./config/resolve.js"),
    import("./api/errors.js"),
    import("./observe/log.js"),
    import("pino"),
  ]);
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
        return await (await import("./cli/daemon.js")).runDaemon({ config, logger, flags: args.flags });
      case "once":
        return await (await import("./cli/once.js")).runOnce(config, logger);
      case "check":
        if (args.connect) return await (await import("./cli/connect.js")).runConnect(config, logger, { json: args.json, read: args.read ?? false });
        return await (await import("./cli/check.js")).runCheck(config, logger, args.json);
      case "refresh":
        return await (await import("./cli/refresh.js")).runRefresh({ config, names: args.names ?? [], reissue: args.reissue ?? false, json: args.json });
      case "render":
        return await (await import("./cli/render.js")).runRender(args.file!, config, logger);
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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Leftover handles (a hung command's pipes, SDK sockets) must not keep a finished CLI alive.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    process.stderr.write(`emissary: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
