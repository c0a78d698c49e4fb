/**
 * A Consul KV backend for emissary, written against the public API only — the same API the
 * built-in backends use. Load it with `emissary run --backend-module ./consul-kv.js` (or list it
 * under `modules:` in the config file) and reference keys as `consul:app/db#password`.
 *
 * - `fetch` reads one key (`GET /v1/kv/<key>?raw`) as bytes (text when UTF-8); Consul's
 *   `X-Consul-Index` is the version.
 * - `watch` runs a blocking query per key and calls `onChange` when the key's index moves, so
 *   a change in Consul is rendered within moments instead of at the next refresh.
 * - Errors say what the loop should do: 404 → {@link SecretNotFoundError} (keep waiting),
 *   401/403 → {@link FatalError} (ACL token wrong: logged loudly, retried slowly), anything
 *   else → {@link TransientError} (back off). Messages name the key, never the token or value.
 *
 * Settings (config file `backends.consul`, else the standard Consul variables):
 * | key          | environment               | default                 |
 * |--------------|---------------------------|-------------------------|
 * | `address`    | `CONSUL_HTTP_ADDR`        | `http://127.0.0.1:8500` |
 * | `token_file` | `CONSUL_HTTP_TOKEN_FILE`  | none                    |
 * | —            | `CONSUL_HTTP_TOKEN`       | none                    |
 * | `datacenter` | —                         | the agent's             |
 *
 * A reference's long form may set `dc` to read from another datacenter.
 * @packageDocumentation
 */
import { readFileSync } from "node:fs";
import { ConfigError, FatalError, SecretNotFoundError, TransientError, textOrBytes, type Backend, type BackendFactoryContext, type Secret, type SecretRef } from "emissaryd";

/** How long one blocking query waits in Consul before returning unchanged. @defaultValue "5m" */
const BLOCKING_WAIT = "5m";
const SETTINGS = ["address", "token_file", "datacenter", "watch"] as const;

/** Options of {@link createConsulKvBackend}. */
export interface ConsulKvOptions {
  /** Agent address, with or without scheme. @defaultValue "http://127.0.0.1:8500" */
  readonly address?: string;
  /** ACL token sent as `X-Consul-Token`. */
  readonly token?: string;
  /** Datacenter for every read unless a reference sets `dc`. */
  readonly datacenter?: string;
  /** Watch keys with blocking queries. @defaultValue true */
  readonly watch?: boolean;
  /** Upper bound of the watch loop's back-off after an error, in ms. @defaultValue 30000 */
  readonly maxBackoffMs?: number;
}

function normalizeAddress(address: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(address) ? address : `http://${address}`;
  return withScheme.replace(/\/+$/, "");
}

/** `app/db config` → `app/db%20config`: every path segment encoded, slashes kept. */
function keyPath(id: string): string {
  return id.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
}

/** A network failure's code (`ECONNREFUSED`), never its message or the request it carried. */
function networkCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === "string") return cause.code;
  return err instanceof Error && err.name === "AbortError" ? "aborted" : "network error";
}

/**
 * Builds the backend from explicit options. The module's default export builds it from the
 * config file section and the environment instead.
 */
export function createConsulKvBackend(opts: ConsulKvOptions = {}): Backend {
  const base = normalizeAddress(opts.address ?? "http://127.0.0.1:8500");
  const headers: Record<string, string> = opts.token ? { "X-Consul-Token": opts.token } : {};
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const watchers = new Set<AbortController>();

  const url = (ref: SecretRef, extra: Record<string, string> = {}): string => {
    const q = new URLSearchParams({ raw: "", ...extra });
    const dc = ref.options.dc ?? opts.datacenter;
    if (dc !== undefined) q.set("dc", String(dc));
    return `${base}/v1/kv/${keyPath(ref.id)}?${q.toString()}`;
  };

  /**
   * One GET; returns the body and index, or throws a classified error. Consul KV values are bytes
   * (a keytab, a certificate bundle): the body is the text when it is UTF-8, else its bytes,
   * which emissary writes unchanged — `res.text()` would turn them into U+FFFD.
   */
  const get = async (ref: SecretRef, signal: AbortSignal, extra?: Record<string, string>): Promise<{ body: string | Uint8Array; index: string }> => {
    const where = `consul:${ref.id}`;
    let res: Response;
    try {
      res = await fetch(url(ref, extra), { headers, signal });
    } catch (err) {
      throw new TransientError(`${where}: Consul unreachable at ${base} (${networkCode(err)})`);
    }
    const index = res.headers.get("x-consul-index") ?? "";
    if (res.status === 200) return { body: textOrBytes(new Uint8Array(await res.arrayBuffer())), index };
    await res.body?.cancel();
    if (res.status === 404) throw new SecretNotFoundError(`${where}: no such key`);
    if (res.status === 401 || res.status === 403) throw new FatalError(`${where}: permission denied (HTTP ${res.status}); check the ACL token's key_prefix policy`);
    const retry = Number(res.headers.get("retry-after"));
    throw new TransientError(`${where}: Consul answered HTTP ${res.status}`, Number.isFinite(retry) && retry > 0 ? { retryAfterMs: retry * 1000 } : {});
  };

  const backend: Backend = {
    name: "consul",
    defaultRefreshMs: 5 * 60_000,

    validate(ref) {
      for (const key of Object.keys(ref.options)) {
        if (key !== "dc") throw new FatalError(`consul:${ref.id}: option "${key}" is not understood (the consul backend takes "dc")`);
      }
      if (ref.id.replace(/^\/+/, "") === "") throw new FatalError("consul: a key is required, e.g. consul:app/db");
    },

    async fetch(ref, { signal }): Promise<Secret> {
      const { body, index } = await get(ref, signal);
      return index ? { value: body, version: index } : { value: body };
    },

    ...(opts.watch === false
      ? {}
      : {
          watch(ref: SecretRef, onChange: () => void): () => void {
            const ac = new AbortController();
            watchers.add(ac);
            void (async () => {
              let index = "";
              let backoff = 1000;
              while (!ac.signal.aborted) {
                try {
                  // The first request learns the current index; later ones block until it moves.
                  const extra: Record<string, string> = index ? { index, wait: BLOCKING_WAIT } : {};
                  const next = (await get(ref, ac.signal, extra)).index;
                  if (index && next && next !== index) onChange();
                  // An index that goes backwards (a restored snapshot) restarts from scratch.
                  index = next && Number(next) >= Number(index || 0) ? next : "";
                  backoff = 1000;
                } catch (err) {
                  if (ac.signal.aborted) return;
                  if (err instanceof SecretNotFoundError) {
                    // The key does not exist yet: the core polls for it; we look again later.
                    if (index) onChange();
                    index = "";
                  }
                  await new Promise<void>((r) => {
                    const t = setTimeout(r, backoff * (0.8 + Math.random() * 0.4));
                    ac.signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
                  });
                  backoff = Math.min(backoff * 2, maxBackoff);
                }
              }
            })();
            return () => {
              ac.abort();
              watchers.delete(ac);
            };
          },
        }),

    async close() {
      for (const ac of watchers) ac.abort();
      watchers.clear();
    },
  } satisfies Backend;
  return backend;
}

/**
 * The module's default export: a factory that reads `backends.consul` from the config file
 * and the standard `CONSUL_HTTP_*` variables.
 */
export default function consulKv(ctx: BackendFactoryContext): Backend {
  const cfg = ctx.config;
  for (const key of Object.keys(cfg)) {
    if (!(SETTINGS as readonly string[]).includes(key)) {
      throw new ConfigError(`backends.consul.${key}: unknown key (known keys: ${SETTINGS.join(", ")})`, { field: `backends.consul.${key}` });
    }
  }
  const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
  const tokenFile = str(cfg.token_file) ?? str(ctx.env.CONSUL_HTTP_TOKEN_FILE);
  let token = str(ctx.env.CONSUL_HTTP_TOKEN);
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (err) {
      throw new ConfigError(`consul: cannot read the token file ${tokenFile} (${(err as { code?: string }).code ?? "error"})`, { field: "backends.consul.token_file" });
    }
  }
  const address = str(cfg.address) ?? str(ctx.env.CONSUL_HTTP_ADDR);
  const datacenter = str(cfg.datacenter);
  return createConsulKvBackend({
    ...(address !== undefined ? { address } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(datacenter !== undefined ? { datacenter } : {}),
    ...(cfg.watch === false ? { watch: false } : {}),
  });
}
