// @ts-check
/**
 * The tools compared: emissary (this repository, built; under each Node runtime), consul-template
 * (installed from the Go module proxy at a pinned version into bench/.work/bin) and the original
 * Go emissary (only when `EMISSARY_ORIGINAL_BIN` names a binary built by hand).
 * @module
 */
import { execFile } from "node:child_process";
import { constants, existsSync, mkdirSync, readFileSync } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Pinned peer versions. Change them here; the report prints them. */
export const PEERS = Object.freeze({
  consulTemplate: { module: "github.com/hashicorp/consul-template", version: "v0.41.1" },
  // The original's go.mod names itself github.com/the-maldridge/emissary; it lives at resinstack/emissary.
  originalEmissary: { module: "github.com/resinstack/emissary", altModule: "github.com/the-maldridge/emissary", version: "latest" },
});

/**
 * @typedef {object} ToolInfo
 * @property {string} name - display name
 * @property {boolean} available
 * @property {string} [version]
 * @property {string} [bin] - executable path
 * @property {string} [reason] - why it is not available
 * @property {string} [node] - emissary only: the node executable that runs `bin`
 * @property {string} [nodeVersion] - emissary only: that node's `process.version`
 * @property {string} [nodeKey] - emissary only: the Node major asked for ("20", "24")
 */

/**
 * The built emissary CLI of this checkout, once per Node runtime (B0–B3 run it under each; B4
 * and B5 under the first, the Node running the benchmark).
 * @param {string} root - repository root
 * @param {readonly import("./runtimes.mjs").NodeRuntime[]} [runtimes] - @defaultValue this process's Node only
 * @returns {ToolInfo[]}
 */
export function emissaryTools(root, runtimes = [{ key: String(process.versions.node.split(".")[0]), available: true, bin: process.execPath, version: process.version }]) {
  const bin = join(root, "dist/src/cli.js");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  return runtimes.map((rt) => {
    const base = { name: "emissary", nodeKey: rt.key, ...(rt.version ? { nodeVersion: rt.version } : {}) };
    if (!rt.available) return { ...base, available: false, reason: `node ${rt.key}: ${rt.reason}` };
    if (!existsSync(bin)) return { ...base, available: false, reason: "dist/src/cli.js is missing: run `npx tsc -p .`" };
    return { ...base, available: true, version: `${pkg.version} (node ${rt.version})`, bin, node: rt.bin };
  });
}

/**
 * The built emissary CLI under this process's Node (kept for callers that want one).
 * @param {string} root - repository root
 * @returns {ToolInfo}
 */
export function emissaryTool(root) {
  return emissaryTools(root)[0];
}

/**
 * Whether a Go toolchain is on PATH.
 * @returns {Promise<string | undefined>} `go version` output, or undefined
 */
export async function goVersion() {
  try {
    return (await run("go", ["version"], { timeout: 30_000 })).stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * Installs consul-template at the pinned version (unless already there) with GOBIN=binDir.
 * @param {string} binDir - bench/.work/bin
 * @param {(msg: string) => void} log
 * @returns {Promise<ToolInfo>}
 */
export async function consulTemplateTool(binDir, log) {
  const { module, version } = PEERS.consulTemplate;
  const bin = join(binDir, "consul-template");
  const name = "consul-template";
  if (!existsSync(bin)) {
    if (!(await goVersion())) return { name, available: false, reason: "no Go toolchain on PATH to `go install` it" };
    mkdirSync(binDir, { recursive: true });
    log(`installing ${module}@${version} into ${binDir} …`);
    try {
      await run("nice", ["-n", "10", "go", "install", `${module}@${version}`], { env: { ...process.env, GOBIN: binDir }, timeout: 900_000 });
    } catch (err) {
      return { name, available: false, reason: `go install failed: ${firstLine(err)}` };
    }
  }
  try {
    const out = await run(bin, ["-version"], { timeout: 30_000 });
    const v = (out.stdout + out.stderr).trim().split("\n")[0];
    if (!v.includes(version)) return { name, available: false, reason: `${bin} reports "${v}", expected ${version}; delete it to reinstall` };
    return { name, available: true, version: v, bin };
  } catch (err) {
    return { name, available: false, reason: `cannot run ${bin}: ${firstLine(err)}` };
  }
}

/** Environment variable naming a locally built original Go emissary binary. */
export const ORIGINAL_BIN_ENV = "EMISSARY_ORIGINAL_BIN";

/**
 * The original Go emissary. It is not on the Go module proxy (its module path is refused), so
 * bench cannot install it: it is measured only when `EMISSARY_ORIGINAL_BIN` names a binary built
 * by hand (from github.com/resinstack/emissary, outside this repository — never committed). Its
 * build information (`go version -m`) is reported as its version. Without the variable, the
 * proxy is asked once so the reason printed is a measured fact.
 * @param {string} binDir
 * @param {(msg: string) => void} log
 * @returns {Promise<ToolInfo>}
 */
export async function originalEmissaryTool(binDir, log) {
  const name = "emissary (original, Go)";
  const bin = process.env[ORIGINAL_BIN_ENV];
  if (bin) {
    try {
      await access(bin, constants.X_OK);
    } catch {
      return { name, available: false, reason: `${ORIGINAL_BIN_ENV}=${bin} is not an executable file` };
    }
    let version = "built by hand";
    try {
      const out = (await run("go", ["version", "-m", bin], { timeout: 30_000 })).stdout;
      const go = /^[^:]+:\s*(go\S+)/.exec(out)?.[1];
      const mod = /^\s*mod\s+(\S+)\s+(\S+)/m.exec(out);
      const rev = /^\s*build\s+vcs\.revision=(\S+)/m.exec(out)?.[1];
      version = `${mod ? `${mod[1]} ${mod[2]}` : "unknown module"}${rev ? ` @ ${rev.slice(0, 12)}` : ""}, built with ${go ?? "unknown Go"} (${ORIGINAL_BIN_ENV})`;
    } catch {
      /* not a Go binary with build info, or no Go: still runnable */
    }
    log(`original emissary: ${bin} (${version})`);
    return { name, available: true, version, bin };
  }
  if (!(await goVersion())) return { name, available: false, reason: `${ORIGINAL_BIN_ENV} is not set, and there is no Go toolchain on PATH` };
  const reasons = [];
  for (const mod of [PEERS.originalEmissary.module, PEERS.originalEmissary.altModule]) {
    try {
      const out = await run("go", ["list", "-m", "-versions", mod], { timeout: 120_000, cwd: binDir });
      log(`${mod}: ${out.stdout.trim()}`);
      reasons.push(`${mod} is listed on the proxy (${out.stdout.trim()}) but bench does not install it`);
    } catch (err) {
      const line = firstLine(err);
      const status = /\b(4\d\d [A-Za-z ]+|5\d\d [A-Za-z ]+)/.exec(line)?.[1]?.trim();
      reasons.push(`${mod} → ${status ?? line}`);
    }
  }
  return { name, available: false, reason: `${ORIGINAL_BIN_ENV} is not set, and it is not on the Go module proxy (\`go list -m -versions\`: ${reasons.join("; ")})` };
}

/**
 * First meaningful line of an error from execFile (its stderr, else its message).
 * @param {unknown} err
 * @returns {string}
 */
function firstLine(err) {
  const e = /** @type {{ stderr?: string, message?: string }} */ (err);
  const text = (e.stderr && e.stderr.trim()) || e.message || String(err);
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => /403|404|not available|error|failed|cannot/i.test(l)) ?? lines[0] ?? "unknown error").slice(0, 300);
}

/**
 * The `node` field a job puts on an emissary result (the Node version that ran it), or nothing
 * for the Go tools.
 * @param {ToolInfo} tool
 * @returns {{ node?: string }}
 */
export function nodeOf(tool) {
  return tool.name === "emissary" ? { node: tool.nodeVersion ?? `node ${tool.nodeKey ?? "?"}` } : {};
}
