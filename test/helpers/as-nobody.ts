import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { ROOT } from "./e2e.js";

/** uid/gid of the unprivileged user the permission tests drop to when the suite runs as root. */
export const NOBODY = 65534;

/** file:// URL of a built module under dist/ (npm test builds first). */
export function distUrl(rel: string): string {
  return pathToFileURL(join(ROOT, "dist", rel)).href;
}

/**
 * Runs an ES module snippet as uid/gid 65534, so permission failures (EACCES) that root would
 * sail through can be tested on a CI machine that runs as root. The snippet prints its result
 * as JSON on stdout; the parsed value is returned.
 */
export function runAsNobody(code: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", code], { uid: NOBODY, gid: NOBODY, cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
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
