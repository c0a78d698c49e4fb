/**
 * KV v2 metadata reads of the fake Vault, for `check --connect`: `GET /v1/<kv2 mount>/metadata/<path>`
 * (api-docs/secret/kv/kv-v2 "Read Secret Metadata") answers `cas_required`, `created_time`,
 * `current_version`, `custom_metadata`, `delete_version_after`, `max_versions`,
 * `oldest_version`, `updated_time` and `versions` (created_time, deletion_time, destroyed per
 * version) — never a value; 404 `{"errors": []}` when nothing was written; 403 without `read`.
 */
import type { FakeToken, FakeVaultState } from "./vault-state.js";
import { DENIED, type Reply } from "./vault-util.js";

/** The answer for `full` when it is a KV v2 metadata path, else undefined. */
export function kvMetadata(state: FakeVaultState, t: FakeToken, full: string): Reply | undefined {
  const m = state.mounts.filter((x) => x.type === "kv" && x.kvVersion === 2 && full.startsWith(x.path + "metadata/")).sort((a, b) => b.path.length - a.path.length)[0];
  if (!m) return undefined;
  if (!state.allowed(t, full, "read")) return DENIED;
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
