// @ts-check
/**
 * The Node.js runtimes emissary is measured under: the machine's Node (the one running the
 * benchmark) and Node 24, taken the way CI takes it — `.ci/node24.sh` installs the npm registry's
 * `node-linux-<arch>` package at a pinned version into a cache directory and runs a command with
 * it first on PATH; here that command only prints `process.execPath`. `BENCH_NODE24` names a
 * Node 24 binary instead (nothing is installed then).
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * @typedef {object} NodeRuntime
 * @property {string} key - "20", "24": the major version as asked for
 * @property {boolean} available
 * @property {string} [bin] - absolute path of the node executable
 * @property {string} [version] - `process.version` of that executable, e.g. v24.21.0
 * @property {string} [reason] - why it is not available
 */

/**
 * Major version of a `process.version` string.
 * @param {string} v - e.g. "v20.20.2"
 * @returns {number}
 */
export function majorOf(v) {
  return Number(/^v?(\d+)\./.exec(v)?.[1] ?? NaN);
}

/**
 * Parses a `--nodes` list ("20,24"): majors, in order, without duplicates.
 * @param {string} spec
 * @returns {string[]}
 */
export function parseNodes(spec) {
  /** @type {string[]} */
  const out = [];
  for (const raw of spec.split(",")) {
    const s = raw.trim().replace(/^v/, "");
    if (!s) continue;
    if (!/^\d+$/.test(s)) throw new Error(`--nodes ${spec}: expected major versions, e.g. 20,24`);
    if (!out.includes(s)) out.push(s);
  }
  if (out.length === 0) throw new Error(`--nodes ${spec}: no version given`);
  return out;
}

/**
 * Asks a node binary for its version.
 * @param {string} bin
 * @returns {Promise<string>}
 */
async function versionOf(bin) {
  return (await run(bin, ["-p", "process.version"], { timeout: 30_000 })).stdout.trim();
}

/**
 * Resolves the Node runtimes asked for. The machine's Node (this process) serves its own major;
 * Node 24 comes from `BENCH_NODE24` or `.ci/node24.sh`. Any other major is n/a with a reason.
 * @param {string} root - repository root
 * @param {string[]} majors - e.g. ["20", "24"]
 * @param {(msg: string) => void} log
 * @returns {Promise<NodeRuntime[]>}
 */
export async function nodeRuntimes(root, majors, log) {
  /** @type {NodeRuntime[]} */
  const out = [];
  for (const key of majors) {
    if (String(majorOf(process.version)) === key) {
      out.push({ key, available: true, bin: process.execPath, version: process.version });
      continue;
    }
    if (key !== "24") {
      out.push({ key, available: false, reason: `the machine's Node is ${process.version}; bench can only add Node 24 (via .ci/node24.sh)` });
      continue;
    }
    try {
      let bin = process.env.BENCH_NODE24;
      if (!bin) {
        const script = join(root, ".ci/node24.sh");
        if (!existsSync(script)) throw new Error(".ci/node24.sh is missing and BENCH_NODE24 is not set");
        log("resolving Node 24 with .ci/node24.sh (installs node-linux-<arch> into a cache directory on first use) …");
        const r = await run("bash", [script, "node", "-p", "process.execPath"], { cwd: root, timeout: 600_000 });
        bin = r.stdout.trim().split("\n").at(-1) ?? "";
      }
      const version = await versionOf(bin);
      if (majorOf(version) !== 24) throw new Error(`${bin} is ${version}, not Node 24`);
      out.push({ key, available: true, bin, version });
    } catch (err) {
      const e = /** @type {{ stderr?: string, message?: string }} */ (err);
      const line = ((e.stderr ?? "").trim().split("\n").at(-1) || e.message || String(err)).slice(0, 300);
      out.push({ key, available: false, reason: `Node 24 could not be had: ${line}` });
    }
  }
  return out;
}
