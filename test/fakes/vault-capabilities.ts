/**
 * Two more read-only endpoints of the fake Vault, for `check --connect`:
 *
 * - `POST /v1/sys/capabilities-self {paths: [...]}` (api-docs/system/capabilities-self): the
 *   token's capabilities on each path, as `data[path]`, copied to the top level as Vault does;
 *   with one path also `capabilities` (Vault's backward-compatible key). A root token has
 *   `["root"]`, a path no policy grants `["deny"]`.
 * - `GET /v1/<kv2 mount>/metadata/<path>` (api-docs/secret/kv/kv-v2 "Read Secret Metadata"):
 *   `current_version`, `oldest_version`, `created_time`, `updated_time`, `max_versions`,
 *   `cas_required`, `delete_version_after`, `custom_metadata` and `versions` (created_time,
 *   deletion_time, destroyed per version); 404 `{"errors": []}` when nothing was written.
 *
 * Policies of the fake are path globs granting read (`secret/*`), or `GLOB=cap,cap` granting
 * exactly those capabilities (`pki/issue/*=update`).
 */
import type { FakeToken, FakeVaultState, Reply } from "./vault-state.js";

/** The capabilities a fake token has on a full path (namespace included). */
export function capabilitiesOf(t: FakeToken, full: string): string[] {
  if (t.policies.includes("root")) return ["root"];
  const caps = new Set<string>();
  for (const p of t.policies) {
    const [glob, list] = p.includes("=") ? [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1).split(",")] : [p, ["read", "list"]];
    const hit = glob.endsWith("*") ? full.startsWith(glob.slice(0, -1)) : full === glob;
    if (hit) for (const c of list) caps.add(c.trim());
  }
  return caps.size > 0 ? [...caps].sort() : ["deny"];
}

/** `POST sys/capabilities-self`. */
export function capabilitiesSelf(state: FakeVaultState, t: FakeToken, ns: string, body: Record<string, unknown>): Reply {
  const raw = body.paths ?? body.path;
  const paths = Array.isArray(raw) ? raw.filter((p): p is string => typeof p === "string") : typeof raw === "string" ? [raw] : [];
  if (paths.length === 0) return { status: 400, body: { errors: ["missing required 'paths' parameter"] } };
  const data: Record<string, string[]> = {};
  for (const p of paths) data[p] = capabilitiesOf(t, (ns ? `${ns}/` : "") + p.replace(/^\/+/, ""));
  if (paths.length === 1) data.capabilities = data[paths[0]!]!;
  return { status: 200, body: { ...data, ...state.envelope({ data }) } };
}

/** `GET <mount>/metadata/<path>` of a KV v2 mount, or undefined when `full` is not such a path. */
export function kvMetadata(state: FakeVaultState, t: FakeToken, full: string): Reply | undefined {
  const m = state.mounts.filter((x) => x.type === "kv" && x.kvVersion === 2 && full.startsWith(x.path + "metadata/")).sort((a, b) => b.path.length - a.path.length)[0];
  if (!m) return undefined;
  const caps = capabilitiesOf(t, full);
  if (!caps.includes("root") && !caps.includes("read")) return { status: 403, body: { errors: ["1 error occurred:\n\t* permission denied\n\n"] } };
  const e = state.kv2.get(m.path + full.slice(m.path.length + "metadata/".length));
  if (!e) return { status: 404, body: { errors: [] } };
  const versions: Record<string, { created_time: string; deletion_time: string; destroyed: boolean }> = {};
  for (const [n, v] of e.versions) versions[String(n)] = { created_time: v.created, deletion_time: v.deletionTime, destroyed: v.destroyed };
  const times = [...e.versions.values()].map((v) => v.created);
  return {
    status: 200,
    body: state.envelope({
      data: {
        cas_required: false,
        created_time: times[0],
        current_version: e.current,
        custom_metadata: null,
        delete_version_after: "0s",
        max_versions: 0,
        oldest_version: Math.min(...e.versions.keys()),
        updated_time: times[times.length - 1],
        versions,
      },
    }),
  };
}
