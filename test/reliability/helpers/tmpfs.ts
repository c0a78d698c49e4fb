/**
 * Small tmpfs mounts for the disk fault tests: a full file system (`size=64k`) and a read-only
 * one (`remount,ro`). Mounting needs root (or CAP_SYS_ADMIN); where it is not allowed the tests
 * fall back to injected errors and say so.
 */
import { execFileSync } from "node:child_process";

/** Mounts a tmpfs of `size` (e.g. `64k`) on `dir`. Returns why it could not, or undefined on success. */
export function mountTmpfs(dir: string, size: string): string | undefined {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir], { stdio: "pipe" });
    return undefined;
  } catch (err) {
    const e = err as { stderr?: Buffer; message?: string };
    return (e.stderr?.toString().trim() || e.message || "mount failed").split("\n")[0];
  }
}

/** Remounts the tmpfs on `dir` read-only or read-write. */
export function remount(dir: string, readOnly: boolean): void {
  execFileSync("mount", ["-o", `remount,${readOnly ? "ro" : "rw"}`, dir], { stdio: "pipe" });
}

/** Unmounts `dir` (lazily, so a process still holding it does not block the test run). */
export function unmount(dir: string): void {
  try {
    execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  } catch {
    /* already gone */
  }
}
