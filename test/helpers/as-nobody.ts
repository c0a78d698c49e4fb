import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { pathToFileURL } from "node:url";
import { dirname, join } from "node:path";
import { ROOT } from "./e2e.js";

/** uid/gid of the unprivileged user the permission tests drop to when the suite runs as root. */
export const NOBODY = 65534;

/** file:// URL of a built module under dist/ (npm test builds first). */
export function distUrl(rel: string): string {
  return pathToFileURL(join(ROOT, "dist", rel)).href;
}

/** True when others may execute `file` and traverse every directory above it. */
function executableByOthers(file: string): boolean {
  if ((statSync(file).mode & 0o001) === 0) return false;
  for (let d = dirname(file); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

let nodeForNobody: string | undefined;
/**
 * This Node binary, or a copy of it others can run: CI's Node 24 lives under /root (0700),
 * which uid 65534 cannot enter.
 */
function nobodyNode(): string {
  if (nodeForNobody) return nodeForNobody;
  if (executableByOthers(process.execPath)) return (nodeForNobody = process.execPath);
  const dir = mkdtempSync(join(tmpdir(), "emissary-node-"));
  chmodSync(dir, 0o755);
  const copy = join(dir, "node");
  copyFileSync(process.execPath, copy);
  chmodSync(copy, 0o755);
  return (nodeForNobody = copy);
}

/**
 * Runs an ES module snippet as uid/gid 65534, so permission failures (EACCES) that root would
 * sail through can be tested on a CI machine that runs as root. The snippet prints its result
 * as JSON on stdout; the parsed value is returned.
 */
export function runAsNobody(code: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const p = spawn(nobodyNode(), ["--input-type=module", "-e", code], { uid: NOBODY, gid: NOBODY, cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (c: Buffer) => (out += String(c)));
    p.stderr.on("data", (c: Buffer) => (err += String(c)));
    p.on("error", reject);
    p.on("close", (status) => {
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? ""));
      } catch {
        reject(new Error(`child exited ${status}: ${out}\n${err}`));
      }
    });
  });
}
