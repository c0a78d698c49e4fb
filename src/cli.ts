#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCli } from "./cli/args.js";
import { HELP } from "./cli/help.js";
import { enableCompileCache, flushCompileCacheSoon } from "./cli/compile-cache.js";
// Only flag parsing and help are loaded up front: `--version` and `--help` never pay for the
// config validator, YAML, the logger or the daemon (bench B0); ./cli/main.js has the rest.

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
  // Before the bundle in ./cli/main.js is loaded, so its compiled code comes from the cache.
  const stateDir = args.flags.stateDir ?? process.env.EMISSARY_STATE_DIR;
  const dirs = stateDir === undefined ? {} : { stateDir: stateDir.trim() === "" ? "" : resolve(stateDir) };
  if (enableCompileCache(undefined, dirs) !== undefined) flushCompileCacheSoon();
  return (await import("./cli/main.js")).runCommand(args);
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
