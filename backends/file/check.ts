/**
 * `emissary check --connect` for the file backend: the path's type (a regular file, not a
 * directory, FIFO, socket or device), whether this process may read it (access R_OK), and its
 * size. The file is not read.
 * @module
 */
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import type { CheckResult } from "../../src/api/index.js";

function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "UNKNOWN";
}

/** Checks the file at the absolute `path`. */
export async function checkFile(path: string, maxBytes: number): Promise<CheckResult> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return { status: "not_set", reason: `file:${path}: no such file` };
    if (code === "EACCES" || code === "EPERM") return { status: "denied", reason: `file:${path}: a directory on the way cannot be searched (${code})` };
    return { status: "invalid", reason: `file:${path}: ${code}` };
  }
  if (st.isDirectory()) return { status: "invalid", reason: `file:${path}: is a directory, not a file` };
  if (!st.isFile()) return { status: "invalid", reason: `file:${path}: not a regular file (a FIFO, socket or device)` };
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
    return { status: "denied", reason: `file:${path}: not readable by uid ${process.getuid?.() ?? "?"} (${errnoOf(err)}; mode ${mode}, owner ${st.uid}:${st.gid})` };
  }
  if (st.size > maxBytes) return { status: "invalid", reason: `file:${path}: larger than ${maxBytes} bytes` };
  if (st.size === 0) return { status: "not_set", reason: `file:${path}: the file is empty` };
  return { status: "ok", reason: `file:${path}: a readable regular file, ${st.size} bytes` };
}
