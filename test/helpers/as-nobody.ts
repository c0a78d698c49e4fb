import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { pathToFileURL } from "node:url";
import { dirname, join } from "node:path";
import { ROOT } from "./e2e.js";

/** uid/gid of the unprivileged user the permission tests drop to when the suite runs as root. */
export const NOBODY = 65534;

/** True when others may traverse every directory from `dir` up to `/`. */
function reachableByOthers(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

/** True when others may execute `file` and traverse every directory above it. */
function executableByOthers(file: string): boolean {
  return (statSync(file).mode & 0o001) !== 0 && reachableByOthers(dirname(file));
}

/** Temporary directories this process made for uid 65534, removed when it exits. */
const made: string[] = [];
process.on("exit", () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A new temporary directory with 0755 parents (os.tmpdir() must be reachable, as /tmp is). */
function publicTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  made.push(dir);
  if (!reachableByOthers(dir)) throw new Error(`${tmpdir()} is not reachable by other users: set TMPDIR to a directory that is (e.g. /tmp)`);
  return dir;
}

/** Copies a file others can read (a hard link when it already is readable and on the same file system). */
function placeFile(from: string, to: string): void {
  const mode = statSync(from).mode;
  if ((mode & 0o004) !== 0) {
    try {
      linkSync(from, to);
      return;
    } catch {
      /* another file system, or links not allowed: copy */
    }
  }
  copyFileSync(from, to);
  chmodSync(to, (mode & 0o111) !== 0 ? 0o755 : 0o644);
}

/** Copies a directory tree, every directory 0755 and every file readable by others. */
function placeTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  chmodSync(to, 0o755);
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) placeTree(src, dst);
    else if (e.isFile()) placeFile(src, dst);
    else if (e.isSymbolicLink()) {
      // node_modules/.bin links and the like: follow them to what they name.
      const st = statSync(src, { throwIfNoEntry: false });
      if (st?.isDirectory()) placeTree(src, dst);
      else if (st?.isFile()) placeFile(src, dst);
    }
  }
}

/**
 * A copy of what modules under `root`/dist need at run time, where uid 65534 can read it:
 * package.json (for "type": "module"), dist/, and the production dependencies the lockfile lists
 * (node_modules/<name>, nested ones included), under a fresh temporary directory with 0755
 * parents. Returns the copy's root. For a checkout under a private directory (mktemp -d, /root),
 * which uid 65534 cannot enter.
 */
export function stageForNobody(root: string): string {
  const to = publicTempDir("emissary-nobody-root-");
  placeFile(join(root, "package.json"), join(to, "package.json"));
  placeTree(join(root, "dist"), join(to, "dist"));
  const lockfile = join(root, "package-lock.json");
  const lock = existsSync(lockfile) ? (JSON.parse(readFileSync(lockfile, "utf8")) as { packages?: Record<string, { dev?: boolean; link?: boolean }> }) : { packages: {} };
  // Top-level packages only: copying node_modules/a copies node_modules/a/node_modules too.
  const tops = Object.entries(lock.packages ?? {})
    .filter(([p, v]) => p.startsWith("node_modules/") && !p.slice("node_modules/".length).includes("/node_modules/") && !v.dev && !v.link)
    .map(([p]) => p);
  for (const p of tops) if (existsSync(join(root, p))) placeTree(join(root, p), join(to, p));
  return to;
}

let nobodyRoot: string | undefined;
/** ROOT when uid 65534 can reach its dist/ and node_modules/, else a copy it can. */
function rootForNobody(): string {
  if (nobodyRoot) return nobodyRoot;
  const readable = (p: string): boolean => (statSync(p).mode & 0o004) !== 0;
  const inPlace =
    reachableByOthers(join(ROOT, "dist", "src")) &&
    reachableByOthers(join(ROOT, "node_modules")) &&
    readable(join(ROOT, "package.json")) &&
    readable(join(ROOT, "dist", "src", "index.js"));
  return (nobodyRoot = inPlace ? ROOT : stageForNobody(ROOT));
}

/**
 * file:// URL of a built module under dist/ (npm test builds first) that uid 65534 can import:
 * in the checkout when others can reach it, else in a copy ({@link stageForNobody}).
 */
export function distUrl(rel: string): string {
  return pathToFileURL(join(rootForNobody(), "dist", rel)).href;
}

let nodeForNobody: string | undefined;
/**
 * This Node binary, or a copy of it others can run: CI's Node 24 lives under /root (0700),
 * which uid 65534 cannot enter.
 */
function nobodyNode(): string {
  if (nodeForNobody) return nodeForNobody;
  if (executableByOthers(process.execPath)) return (nodeForNobody = process.execPath);
  const dir = publicTempDir("emissary-node-");
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
