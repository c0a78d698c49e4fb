// @ts-check
/**
 * The issue's targets, judged from a results document (bench/results/<date>.json), per Node
 * runtime, and the ratios behind them. Pure: no I/O, so test/unit/bench-lib.test.ts checks it.
 *
 * A result's `node` field says which Node ran emissary; documents written before runs had Node
 * columns have none, and their results count as the machine's Node (`machine.node`).
 * @module
 */
import { fmt } from "./stats.mjs";

/**
 * @typedef {object} TargetRow
 * @property {string} target
 * @property {string} node - the Node version the measurement is for (the bench's Node for peer-only targets)
 * @property {string} measured
 * @property {boolean | undefined} met - undefined: not measured
 */

/**
 * `a / b`, or undefined when either is missing, not finite, or b is not positive.
 * @param {number | undefined} a
 * @param {number | undefined} b
 * @returns {number | undefined}
 */
export function ratio(a, b) {
  if (typeof a !== "number" || typeof b !== "number" || !Number.isFinite(a) || !Number.isFinite(b) || !(b > 0)) return undefined;
  return a / b;
}

/**
 * A ratio for a table: "2.31×", or "n/a".
 * @param {number | undefined} r
 * @returns {string}
 */
export function fmtRatio(r) {
  return r === undefined || !Number.isFinite(r) ? "n/a" : `${r.toFixed(2)}×`;
}

/**
 * The Node versions a document has columns for, in order: the runtimes the run asked for and
 * could get (`nodes`), else every `node` seen on a result, else the machine's Node.
 * @param {any} results
 * @returns {string[]}
 */
export function nodeColumns(results) {
  const listed = (results.nodes ?? []).filter((/** @type {any} */ n) => n.available && n.version).map((/** @type {any} */ n) => String(n.version));
  if (listed.length) return listed;
  /** @type {string[]} */
  const seen = [];
  for (const job of Object.values(results.jobs ?? {})) {
    for (const r of /** @type {any} */ (job).results ?? []) if (r.node && !seen.includes(r.node)) seen.push(r.node);
  }
  if (seen.length) return seen;
  return [String(results.machine?.node ?? "node")];
}

/**
 * A finder over one document: the measured (not n/a, not failed) result of a job for a tool,
 * optionally for one Node, one `what` (B0's command) and one backend.
 * @param {any} results
 */
export function finder(results) {
  const jobs = results.jobs ?? {};
  const bench = String(results.machine?.node ?? "");
  /**
   * @param {string} job
   * @param {string} tool
   * @param {{ node?: string, what?: string, backend?: string }} [o]
   * @returns {any}
   */
  return (job, tool, o = {}) =>
    (jobs[job]?.results ?? []).find(
      (/** @type {any} */ r) =>
        r.tool === tool &&
        !r.na &&
        !r.error &&
        (o.node === undefined || (r.node ?? bench) === o.node) &&
        (o.what === undefined || r.what === o.what) &&
        (o.backend === undefined || r.backend === o.backend),
    );
}

/**
 * Ratios of one B0 result: to `node -e 0` of the same Node, to `consul-template -once` and to
 * the original emissary's one-template run (both for `once` rows only). Medians (p50).
 * @param {any} results
 * @param {any} r - a B0 result
 * @returns {{ vsNode?: number, vsConsulTemplate?: number, vsOriginal?: number }}
 */
export function b0Ratios(results, r) {
  const find = finder(results);
  const floor = r.node ? find("b0", "node", { node: r.node, what: "node -e 0" }) : undefined;
  const isOnce = r.what === "once";
  const ct = isOnce ? find("b0", "consul-template", { what: "once" }) : undefined;
  const orig = isOnce ? find("b0", "emissary (original, Go)", { what: "once" }) : undefined;
  /** @type {{ vsNode?: number, vsConsulTemplate?: number, vsOriginal?: number }} */
  const out = {};
  const p50 = r.wallMs?.p50;
  if (floor && r.tool !== "node") out.vsNode = ratio(p50, floor.wallMs.p50);
  if (ct && r.tool !== "consul-template") out.vsConsulTemplate = ratio(p50, ct.wallMs.p50);
  if (orig && r.tool !== "emissary (original, Go)") out.vsOriginal = ratio(p50, orig.wallMs.p50);
  return out;
}

/**
 * Checks the issue's targets against the results, one row per target and Node. A target whose
 * inputs are missing is n/a (met: undefined).
 * @param {any} results
 * @returns {TargetRow[]}
 */
export function targets(results) {
  const j = results.jobs ?? {};
  const find = finder(results);
  const nodes = nodeColumns(results);
  const bench = String(results.machine?.node ?? nodes[0]);
  /** @type {TargetRow[]} */
  const rows = [];
  const push = (/** @type {string} */ target, /** @type {string} */ node, /** @type {string} */ measured, /** @type {boolean | undefined} */ met) => rows.push({ target, node, measured, met });

  for (const node of nodes) {
    const floor = find("b0", "node", { node, what: "node -e 0" });
    for (const [what, limit] of /** @type {[string, number][]} */ ([["once", 2], ["--version", 1.5], ["--help", 1.5]])) {
      const e = find("b0", "emissary", { node, what });
      const r = e && floor ? ratio(e.wallMs.p50, floor.wallMs.p50) : undefined;
      push(
        `B0 \`emissary ${what === "once" ? "once` (one template)" : `${what}\``} ≤ ${limit}× \`node -e 0\``,
        node,
        r !== undefined ? `${fmtRatio(r)} (${fmt(e.wallMs.p50)} ms vs ${fmt(floor.wallMs.p50)} ms)` : "n/a",
        r !== undefined ? r <= limit : undefined,
      );
    }
  }
  for (const node of nodes) {
    const e1 = find("b1", "emissary", { node });
    const c1 = find("b1", "consul-template");
    push("B1 p50 ≤ 20 ms", node, e1 ? `${fmt(e1.latencyMs.p50)} ms` : "n/a", e1 ? e1.latencyMs.p50 <= 20 : undefined);
    push("B1 p99 ≤ 100 ms", node, e1 ? `${fmt(e1.latencyMs.p99)} ms` : "n/a", e1 ? e1.latencyMs.p99 <= 100 : undefined);
    const r = e1 && c1 ? ratio(c1.latencyMs.p50, e1.latencyMs.p50) : undefined;
    push("B1 ≥ 20× faster than consul-template (p50; issue 8)", node, r !== undefined ? `${fmt(r, 1)}× (${fmt(c1.latencyMs.p50)} ms vs ${fmt(e1.latencyMs.p50)} ms)` : "n/a", r !== undefined ? r >= 20 : undefined);
  }
  const n2 = j.b2?.params?.templates ?? "?";
  for (const node of nodes) {
    const e2 = find("b2", "emissary", { node });
    const c2 = find("b2", "consul-template");
    const rw = e2 && c2 ? ratio(e2.wallS, c2.wallS) : undefined;
    const rm = e2 && c2 ? ratio(e2.peakRssMB, c2.peakRssMB) : undefined;
    push(`B2 cold start (${n2} templates) wall ≤ 1.0× \`consul-template -once\``, node, rw !== undefined ? `${fmtRatio(rw)} (${fmt(e2.wallS)} s vs ${fmt(c2.wallS)} s)` : "n/a", rw !== undefined ? rw <= 1 : undefined);
    push(`B2 peak RSS ≤ 2× consul-template's`, node, rm !== undefined ? `${fmtRatio(rm)} (${fmt(e2.peakRssMB)} MB vs ${fmt(c2.peakRssMB)} MB)` : "n/a", rm !== undefined ? rm <= 2 : undefined);
    push(`B2 cold start ≤ 1 s (issue 8)`, node, e2 ? `${fmt(e2.wallS)} s` : "n/a", e2 ? e2.wallS <= 1 : undefined);
  }
  for (const node of nodes) {
    const e3 = find("b3", "emissary", { node });
    const n3 = find("b3", "node", { node });
    const c3 = find("b3", "consul-template");
    const rr = e3 && n3 ? ratio(e3.rssMB, n3.rssMB) : undefined;
    push("B3 RSS ≤ 1.25× an idle `node` process", node, rr !== undefined ? `${fmtRatio(rr)} (${fmt(e3.rssMB)} MB vs ${fmt(n3.rssMB)} MB)` : "n/a", rr !== undefined ? rr <= 1.25 : undefined);
    push("B3 RSS ≤ 50 MB (issue 8)", node, e3 ? `${fmt(e3.rssMB)} MB at the end (max ${fmt(e3.maxRssMB)} MB)` : "n/a", e3 ? e3.rssMB <= 50 : undefined);
    push(
      "B3 idle CPU ≤ consul-template's",
      node,
      e3 && c3 ? `${fmt(perMin(e3))} vs ${fmt(perMin(c3))} CPU s/min (${fmt(e3.cpuS)} s vs ${fmt(c3.cpuS)} s in ${fmt(e3.windowS, 0)} s)` : "n/a",
      e3 && c3 ? e3.cpuS <= c3.cpuS : undefined,
    );
  }
  // B4 and B5 run under one Node (the bench's); their rows go in that column only.
  for (const backend of ["vault", "awssm"]) {
    const target = `B4 one request per unique secret per refresh (${backend})`;
    const e4 = find("b4", "emissary", { backend });
    if (!e4) {
      push(target, bench, "n/a", undefined);
      continue;
    }
    const [lo, hi] = e4.expectedPerSecret;
    const okCount = e4.requestsPerSecretMin >= lo && e4.requestsPerSecretMax <= hi && e4.duplicates === 0;
    const extra = backend === "vault" ? e4.byKind?.mounts ?? 0 : 0;
    push(
      target,
      e4.node ?? bench,
      `${e4.requestsPerSecretMin}–${e4.requestsPerSecretMax} ${backend === "vault" ? "reads" : "requests"} per secret (expected ${lo === hi ? lo : `${lo}–${hi}`}), ${e4.duplicates} duplicates` +
        (extra ? `; plus ${extra} mount preflight(s)` : ""),
      okCount && extra <= 1,
    );
  }
  const e5 = find("b5", "emissary");
  push(
    "B5 peak ≤ 2× mean requests/s (1 s buckets; issue 8)",
    e5?.node ?? bench,
    e5 ? `peak ${fmt(e5.rps.peak)}/s, mean ${fmt(e5.rps.mean)}/s (${fmt(e5.rps.ratio)}×)${e5.rps10s ? `; 10 s buckets: ${fmt(e5.rps10s.ratio)}×` : ""}` : "n/a",
    e5 ? e5.rps.ratio <= 2 : undefined,
  );
  return rows;
}

/**
 * CPU seconds per minute of an idle-window result (older documents have no `cpuSPerMin`).
 * @param {any} r
 * @returns {number | undefined}
 */
export function perMin(r) {
  if (typeof r.cpuSPerMin === "number") return r.cpuSPerMin;
  return ratio(60 * r.cpuS, r.windowS);
}

/**
 * The targets as a pivot: one line per target, one measured/met pair per Node column. A target
 * not measured under a Node (B4 and B5 run under one) says so in that column.
 * @param {any} results
 * @returns {{ nodes: string[], rows: { target: string, cells: ({ measured: string, met: boolean | undefined } | undefined)[] }[] }}
 */
export function targetTable(results) {
  const nodes = nodeColumns(results);
  const all = targets(results);
  /** @type {{ target: string, cells: ({ measured: string, met: boolean | undefined } | undefined)[] }[]} */
  const rows = [];
  for (const t of all) {
    let row = rows.find((r) => r.target === t.target);
    if (!row) {
      row = { target: t.target, cells: nodes.map(() => undefined) };
      rows.push(row);
    }
    const i = nodes.indexOf(t.node);
    if (i >= 0) row.cells[i] = { measured: t.measured, met: t.met };
  }
  return { nodes, rows };
}
