/**
 * Owner and group names of templates (`owner: nomad`) turned into numeric ids for the writer.
 */
import { promises as fsp } from "node:fs";
import { ConfigError } from "../api/errors.js";

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Where {@link resolveOwner} looks names up. */
export interface OwnerDatabase {
  /** @defaultValue "/etc/passwd" */
  passwdFile?: string;
  /** @defaultValue "/etc/group" */
  groupFile?: string;
}

function parseId(value: string | number, what: "owner" | "group"): number | undefined {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe) {
      throw new ConfigError(`${what} ${value} is not a valid ${what === "owner" ? "uid" : "gid"}`, { field: what });
    }
    return value;
  }
  const s = value.trim();
  if (s === "") throw new ConfigError(`${what} is empty`, { field: what });
  if (/^\d+$/.test(s)) return parseId(Number(s), what);
  return undefined;
}

async function lookup(file: string, name: string, what: "owner" | "group"): Promise<number> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot look up ${what} "${name}": cannot read ${file} (${errnoOf(err) ?? "error"})`, { field: what });
  }
  // passwd: name:x:uid:gid:gecos:home:shell — group: name:x:gid:members. The id is field 3 in both.
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const fields = line.split(":");
    if (fields[0] === name && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
  }
  const kind = what === "owner" ? "user" : "group";
  throw new ConfigError(`unknown ${kind} "${name}" (not found in ${file})`, { field: what });
}

/**
 * Turns a template's `owner` / `group` into numeric ids. Numbers and numeric strings are ids;
 * names are looked up in /etc/passwd and /etc/group (Node has no getpwnam). An absent value stays
 * absent: the writer then neither changes nor compares that id.
 * @throws ConfigError naming the user or group when it is unknown or invalid.
 */
export async function resolveOwner(
  owner?: string | number,
  group?: string | number,
  db: OwnerDatabase = {},
): Promise<{ uid?: number; gid?: number }> {
  const out: { uid?: number; gid?: number } = {};
  if (owner !== undefined && owner !== null) {
    const id = parseId(owner, "owner");
    out.uid = id ?? (await lookup(db.passwdFile ?? "/etc/passwd", String(owner).trim(), "owner"));
  }
  if (group !== undefined && group !== null) {
    const id = parseId(group, "group");
    out.gid = id ?? (await lookup(db.groupFile ?? "/etc/group", String(group).trim(), "group"));
  }
  return out;
}
