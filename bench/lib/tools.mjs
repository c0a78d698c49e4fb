// @ts-check
/**
 * The tools compared: emissary (this repository, built), consul-template and the original Go
 * emissary, both installed from the Go module proxy at pinned versions into bench/.work/bin.
 * @module
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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
 */

/**
 * The built emissary CLI of this checkout.
 * @param {string} root - repository root
 * @returns {ToolInfo}
 */
export function emissaryTool(root) {
  const bin = join(root, "dist/src/cli.js");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  if (!existsSync(bin)) return { name: "emissary", available: false, reason: "dist/src/cli.js is missing: run `npx tsc -p .`" };
  return { name: "emissary", available: true, version: `${pkg.version} (node ${process.version})`, bin };
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

/**
 * Looks for the original Go emissary on the module proxy (`go list -m -versions`), and installs
 * it when it is there.
 * @param {string} binDir
 * @param {(msg: string) => void} log
 * @returns {Promise<ToolInfo>}
 */
export async function originalEmissaryTool(binDir, log) {
  const name = "emissary (original, Go)";
  if (!(await goVersion())) return { name, available: false, reason: "no Go toolchain on PATH" };
  const reasons = [];
  for (const mod of [PEERS.originalEmissary.module, PEERS.originalEmissary.altModule]) {
    try {
      const out = await run("go", ["list", "-m", "-versions", mod], { timeout: 120_000, cwd: binDir });
      log(`${mod}: ${out.stdout.trim()}`);
      // It would still have to build; the benchmark jobs do not drive it yet, so stop here.
      return { name, available: false, reason: `${mod} is listed on the proxy (${out.stdout.trim()}) but no bench job drives it yet` };
    } catch (err) {
      const line = firstLine(err);
      const status = /\b(4\d\d [A-Za-z ]+|5\d\d [A-Za-z ]+)/.exec(line)?.[1]?.trim();
      reasons.push(`${mod} → ${status ?? line}`);
    }
  }
  return { name, available: false, reason: `not on the Go module proxy (\`go list -m -versions\`: ${reasons.join("; ")})` };
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
