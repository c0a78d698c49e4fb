/**
 * `emissary refresh [REF|TEMPLATE…] [--reissue] [--json]`: asks the running daemon, through its
 * status server, to fetch those references now (SPEC "Operator control"). The daemon is found as
 * it was started: `--status-addr`, `EMISSARY_STATUS_ADDR` or the config's `status.listen`; a
 * bearer token is sent when the config names `status.control_token_file`.
 *
 * Exit codes: 0 every fetch succeeded; 1 the daemon cannot be reached, refused the request, or a
 * fetch failed; 2 a name no template uses, or no status address.
 * @module
 */
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import { formatDuration } from "../api/duration.js";
import { readFailure, readRegularFile } from "../api/safe-read.js";
import { parseListenAddress, type ResolvedConfig } from "../config/resolve.js";
import type { RefreshReport, RefreshResult } from "../observe/refresh-report.js";
import { formatTable } from "./table.js";

/** How long the CLI waits for the daemon's answer when `--timeout` is not given (fetches may take up to 2 minutes). */
export const REFRESH_CLI_TIMEOUT_MS = 150_000;

/** Options for {@link runRefresh}. */
export interface RefreshCliOptions {
  readonly config: ResolvedConfig;
  readonly names: readonly string[];
  readonly reissue: boolean;
  readonly json: boolean;
  /** @defaultValue process.cwd() */
  readonly cwd?: string;
  readonly out?: (s: string) => void;
  readonly err?: (s: string) => void;
}

/** The URL of the daemon's control endpoint for a listen address: a wildcard host means this machine's loopback. */
export function controlUrl(listen: string): URL {
  const { host } = parseListenAddress(listen);
  const h = /^\s*:/.test(listen) || host === "" || host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return new URL(`http://${h.includes(":") ? `[${h}]` : h}:${parseListenAddress(listen).port}/v1/refresh`);
}

/** A name as the daemon understands it: a template path given relative to here is made absolute. */
function daemonName(name: string, cwd: string): string {
  if (/^[a-z][a-z0-9_-]*:/.test(name)) return name; // a reference
  if (name.includes("/") && existsSync(resolve(cwd, name))) return resolve(cwd, name);
  return name;
}

function note(r: RefreshResult): string {
  const parts: string[] = [];
  if (r.result === "error") parts.push(`${r.errorClass === "not_found" ? "not set" : r.errorClass}: ${r.error ?? ""}`);
  if (r.rateLimited) parts.push("rate-limited: the answer of this reference's refresh less than a second ago");
  return parts.join("; ");
}

/** The human table of a report. */
export function formatRefreshReport(report: RefreshReport): string {
  const rows = report.results.map((r) => [r.result, r.ref, r.backend, r.templates.map((t) => basename(t)).join(", "), note(r)]);
  const n = (k: RefreshResult["result"]): number => report.results.filter((r) => r.result === k).length;
  const summary = `${report.results.length} reference(s)${report.reissue ? " (reissue)" : ""}: ${n("changed")} changed, ${n("fetched")} unchanged, ${n("error")} failed\n`;
  return (rows.length > 0 ? formatTable(["RESULT", "REFERENCE", "BACKEND", "TEMPLATES", "NOTE"], rows) : "") + summary;
}

/** `emissary refresh`. Resolves with the exit code. */
export async function runRefresh(opts: RefreshCliOptions): Promise<number> {
  const out = opts.out ?? ((s: string) => void process.stdout.write(s));
  const err = opts.err ?? ((s: string) => void process.stderr.write(s));
  const { config } = opts;
  if (!config.statusAddr) {
    err("emissary refresh: no status server address: give --status-addr, EMISSARY_STATUS_ADDR or status.listen in the config file, as the daemon was started\n");
    return 2;
  }
  const url = controlUrl(config.statusAddr);
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (config.controlTokenFile) {
    try {
      const token = (await readRegularFile(config.controlTokenFile, { maxBytes: 4096 })).toString("utf8").split(/\r?\n/, 1)[0]!.trim();
      if (token) headers.authorization = `Bearer ${token}`;
    } catch (e) {
      // Loopback needs no token: go on, and let the daemon say no if it must.
      err(`emissary refresh: cannot read the control token file ${config.controlTokenFile} (${readFailure(e)}); asking without a token\n`);
    }
  }
  const cwd = opts.cwd ?? process.cwd();
  const body = JSON.stringify({ names: opts.names.map((n) => daemonName(n, cwd)), reissue: opts.reissue });
  const timeoutMs = config.timeoutMs ?? REFRESH_CLI_TIMEOUT_MS;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (e) {
    const cause = (e as { cause?: { code?: unknown } }).cause?.code;
    const why = (e as Error).name === "TimeoutError" ? `no answer within ${formatDuration(timeoutMs)}` : typeof cause === "string" ? cause : (e as Error).name;
    err(`emissary refresh: cannot reach the daemon at ${url.origin}: ${why} (is it running, started with this --status-addr?)\n`);
    return 1;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    err(`emissary refresh: ${url.origin} answered ${res.status} with something that is not emissary's JSON\n`);
    return 1;
  }
  const answer = data as { error?: unknown; unknown?: unknown } & Partial<RefreshReport>;
  if (res.status === 200 && Array.isArray(answer.results)) {
    const report = answer as RefreshReport;
    out(opts.json ? JSON.stringify(report, null, 2) + "\n" : formatRefreshReport(report));
    return report.ok ? 0 : 1;
  }
  const reason = typeof answer.error === "string" ? answer.error : `HTTP ${res.status}`;
  if (opts.json) out(JSON.stringify({ status: res.status, ...answer }, null, 2) + "\n");
  if (res.status === 404 && Array.isArray(answer.unknown)) {
    err(`emissary refresh: ${reason}\n`);
    return 2;
  }
  err(`emissary refresh: the daemon refused (${res.status}): ${reason}\n`);
  return 1;
}
