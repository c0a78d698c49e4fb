// @ts-check
/**
 * Renders bench/REPORT.md from a results document (bench/results/<date>.json). Pure: the
 * hand-written analysis (bench/FINDINGS.md) is passed in, not read here.
 * @module
 */
import { fmt } from "./stats.mjs";

/** Markdown table from a header and rows; cells are escaped for `|`. */
export function table(/** @type {string[]} */ header, /** @type {(string | number)[][]} */ rows) {
  const cell = (/** @type {string | number} */ c) => String(c).replace(/\|/g, "\\|").replace(/\n/g, " ");
  return [`| ${header.map(cell).join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)].join("\n");
}

/** "yes" / "no" / "n/a" for a target check. */
export function verdict(/** @type {boolean | undefined} */ ok) {
  return ok === undefined ? "n/a" : ok ? "**yes**" : "**no**";
}

/**
 * @typedef {object} TargetRow
 * @property {string} target
 * @property {string} measured
 * @property {boolean | undefined} met
 */

/**
 * Checks the issue's targets against the results. A target whose inputs are missing is n/a.
 * @param {any} results
 * @returns {TargetRow[]}
 */
export function targets(results) {
  const j = results.jobs ?? {};
  const find = (/** @type {string} */ job, /** @type {string} */ tool, /** @type {string} [backend] */ backend) =>
    (j[job]?.results ?? []).find((/** @type {any} */ r) => r.tool === tool && !r.na && !r.error && (backend === undefined || r.backend === backend));
  /** @type {TargetRow[]} */
  const rows = [];
  const e1 = find("b1", "emissary");
  const c1 = find("b1", "consul-template");
  rows.push({ target: "B1 p50 ≤ 20 ms", measured: e1 ? `${fmt(e1.latencyMs.p50)} ms` : "n/a", met: e1 ? e1.latencyMs.p50 <= 20 : undefined });
  rows.push({ target: "B1 p99 ≤ 100 ms", measured: e1 ? `${fmt(e1.latencyMs.p99)} ms` : "n/a", met: e1 ? e1.latencyMs.p99 <= 100 : undefined });
  const ratio = e1 && c1 ? c1.latencyMs.p50 / e1.latencyMs.p50 : undefined;
  rows.push({ target: "B1 ≥ 20× faster than consul-template (p50)", measured: ratio ? `${fmt(ratio, 1)}× (${fmt(c1.latencyMs.p50)} ms vs ${fmt(e1.latencyMs.p50)} ms)` : "n/a", met: ratio ? ratio >= 20 : undefined });
  const e2 = find("b2", "emissary");
  rows.push({ target: `B2 cold start (${j.b2?.params?.templates ?? "?"} templates) ≤ 1 s`, measured: e2 ? `${fmt(e2.wallS)} s` : "n/a", met: e2 ? e2.wallS <= 1 : undefined });
  const e3 = find("b3", "emissary");
  const c3 = find("b3", "consul-template");
  rows.push({ target: "B3 RSS ≤ 50 MB (file backend)", measured: e3 ? `${fmt(e3.rssMB)} MB at the end (max ${fmt(e3.maxRssMB)} MB)` : "n/a", met: e3 ? e3.rssMB <= 50 : undefined });
  rows.push({
    target: "B3 idle CPU ≤ consul-template's",
    measured: e3 && c3 ? `${fmt(e3.cpuS)} s vs ${fmt(c3.cpuS)} s in ${fmt(e3.windowS, 0)} s` : "n/a",
    met: e3 && c3 ? e3.cpuS <= c3.cpuS : undefined,
  });
  for (const backend of ["vault", "awssm"]) {
    const e4 = find("b4", "emissary", backend);
    if (!e4) {
      rows.push({ target: `B4 one request per unique secret per refresh (${backend})`, measured: "n/a", met: undefined });
      continue;
    }
    const [lo, hi] = e4.expectedPerSecret;
    const okCount = e4.requestsPerSecretMin >= lo && e4.requestsPerSecretMax <= hi && e4.duplicates === 0;
    const extra = backend === "vault" ? e4.byKind?.mounts ?? 0 : 0;
    rows.push({
      target: `B4 one request per unique secret per refresh (${backend})`,
      measured:
        `${e4.requestsPerSecretMin}–${e4.requestsPerSecretMax} ${backend === "vault" ? "reads" : "requests"} per secret (expected ${lo === hi ? lo : `${lo}–${hi}`}), ${e4.duplicates} duplicates` +
        (extra ? `; plus ${extra} mount preflight(s)` : ""),
      met: okCount && extra <= 1,
    });
  }
  const e5 = find("b5", "emissary");
  rows.push({
    target: "B5 peak ≤ 2× mean requests/s (1 s buckets)",
    measured: e5 ? `peak ${fmt(e5.rps.peak)}/s, mean ${fmt(e5.rps.mean)}/s (${fmt(e5.rps.ratio)}×)${e5.rps10s ? `; 10 s buckets: ${fmt(e5.rps10s.ratio)}×` : ""}` : "n/a",
    met: e5 ? e5.rps.ratio <= 2 : undefined,
  });
  return rows;
}

/** Reasons already printed under "Machine and tools", shortened to a reference in the job tables. */
let toolReasons = new Set();

/** The reason of an n/a entry: a tool-level reason is referenced, not repeated. */
function naText(/** @type {any} */ r) {
  if (r.error) return `failed: ${r.error}`;
  return toolReasons.has(r.na) ? "n/a: not installable (see Machine and tools)" : `n/a: ${r.na}`;
}

/** Rows of n/a entries: tool and reason. */
function naRows(/** @type {any[]} */ rs, /** @type {number} */ width) {
  return rs.filter((r) => r.na || r.error).map((r) => [r.tool + (r.backend ? ` (${r.backend})` : ""), ...Array(Math.max(0, width - 2)).fill("n/a"), naText(r)]);
}

/**
 * Renders the whole report.
 * @param {any} results
 * @param {{ chart?: string, findings?: string }} [o] - chart path relative to REPORT.md; hand-written analysis
 * @returns {string}
 */
export function renderReport(results, o = {}) {
  const j = results.jobs ?? {};
  const m = results.machine ?? {};
  toolReasons = new Set(Object.values(results.tools ?? {}).filter((/** @type {any} */ t) => !t.available && t.reason).map((/** @type {any} */ t) => t.reason));
  const out = [];
  out.push("# Benchmarks: emissary side by side with consul-template and the original emissary", "");
  out.push(
    `Generated by \`npm run bench\` (bench/run.mjs, profile \`${results.profile ?? "quick"}\`) from [${results.file ?? `results/${results.date}.json`}](${results.file ?? `results/${results.date}.json`}). ` +
      "Every number below was measured in that run on the machine described here; where a tool could not run a job the table says n/a and why.",
    "",
  );
  out.push(`> **Shared machine.** ${m.shared ?? ""} The load average before and after each job is listed under "Runs".`, "");

  out.push("## Machine and tools", "");
  const tools = Object.values(results.tools ?? {});
  out.push(
    table(
      ["", ""],
      [
        ["CPU", `${m.cpus} × ${m.cpuModel}`],
        ["Memory", `${m.memGB} GB`],
        ["Kernel", m.kernel ?? ""],
        ["Node.js", m.node ?? ""],
        ["Go", m.go ?? ""],
        ...tools.map((/** @type {any} */ t) => [t.name, t.available ? t.version : `not available: ${t.reason}`]),
      ],
    ),
    "",
  );

  out.push("## Targets (issue 8 — goals, never asserted in tests)", "");
  out.push(table(["Target", "Measured", "Met"], targets(results).map((r) => [r.target, r.measured, verdict(r.met)])), "");

  if (o.chart) out.push(`![Benchmark chart](${o.chart})`, "");

  if (j.b1) {
    const p = j.b1.params ?? {};
    out.push("## B1 propagation", "");
    out.push(
      `${p.changes} changes of one file secret (atomic rename), each after a random pause of 0–${p.gapMs} ms (the same for every tool, so a poller is met at every phase of its cycle). ` +
        "Latency: from the rename until the reload command (`cp dest done`) has copied the new destination — detected, rendered, written atomically, command finished. " +
        "emissary: `file:` reference (inotify). consul-template: `{{ file \"…\" }}` (it stats the file every 2 s).",
      "",
    );
    const rs = j.b1.results ?? [];
    const ok = rs.filter((/** @type {any} */ r) => !r.na && !r.error);
    out.push(
      table(
        ["Tool", "Samples", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms", "Notes"],
        [
          ...ok.map((/** @type {any} */ r) => [r.tool, r.latencyMs.n, fmt(r.latencyMs.p50), fmt(r.latencyMs.p90), fmt(r.latencyMs.p99), fmt(r.latencyMs.max), fmt(r.latencyMs.mean), `${r.failures} lost, ${r.viaPoll} seen by the 250 ms safety poll`]),
          ...naRows(rs, 8),
        ],
      ),
      "",
    );
  }

  if (j.b2) {
    const p = j.b2.params ?? {};
    out.push("## B2 cold start", "");
    out.push(
      `${p.templates} templates over ${p.secrets} file secrets, no destination present. One-shot mode (\`emissary once\`, \`consul-template -once\`) under GNU time: wall time from exec to exit, peak RSS. ` +
        `${p.runs} runs each; median wall time, largest peak RSS. Every destination is checked after every run.`,
      "",
    );
    const rs = j.b2.results ?? [];
    out.push(
      table(
        ["Tool", "Wall s (median)", "Peak RSS MB", "CPU s (median)", "Runs OK", "All runs (wall s)"],
        [
          ...rs.filter((/** @type {any} */ r) => !r.na && !r.error).map((/** @type {any} */ r) => [r.tool, fmt(r.wallS), fmt(r.peakRssMB, 1), fmt(r.cpuS), `${r.okRuns}/${r.samples.length}`, r.samples.map((/** @type {any} */ s) => fmt(s.wallS)).join(", ")]),
          ...naRows(rs, 6),
        ],
      ),
      "",
    );
  }

  if (j.b3) {
    const p = j.b3.params ?? {};
    out.push("## B3 idle", "");
    out.push(
      `${p.templates} templates over ${p.templates} file secrets; once every file is written (plus 5 s), nothing changes for ${p.seconds} s. ` +
        "CPU: user + system seconds of the process (all threads) over that window, from /proc/<pid>/stat (10 ms ticks). RSS: at the end, and the highest of the per-second samples.",
      "",
    );
    const rs = j.b3.results ?? [];
    out.push(
      table(
        ["Tool", "Idle window s", "CPU s", "CPU %", "RSS MB (end)", "RSS MB (max sampled)", "CPU s before the window (start-up)"],
        [
          ...rs.filter((/** @type {any} */ r) => !r.na && !r.error).map((/** @type {any} */ r) => [r.tool, fmt(r.windowS, 0), fmt(r.cpuS), fmt(r.cpuPercent, 3), fmt(r.rssMB, 1), fmt(r.maxRssMB, 1), fmt(r.cpuAtStartS)]),
          ...naRows(rs, 7),
        ],
      ),
      "",
    );
  }

  if (j.b4) {
    const p = j.b4.params ?? {};
    out.push("## B4 backend calls", "");
    out.push(
      `${p.templates} templates over ${p.secrets} secrets (each template names ${p.referencesPerTemplate} different secrets, so each secret is used by ${(p.templates * p.referencesPerTemplate) / p.secrets} templates), ` +
        `counted at the server for ${p.seconds} s from start, refresh ${p.refresh} for every tool. Vault: emissary and consul-template against one counting Vault API (KV v2), told apart by token; ` +
        "consul-template re-reads a lease-less KV v2 secret after `default_lease_duration` × 0.85–0.95, so that is set to the refresh. AWS: emissary against a counting Secrets Manager fake. " +
        "\"Expected\" is one request per secret at start plus one per refresh that fits in the window (given each tool's jitter); a duplicate is two requests for one secret less than half a refresh apart.",
      "",
    );
    const rs = j.b4.results ?? [];
    out.push(
      table(
        ["Tool (backend)", "Requests", "By kind", "Per secret (min–max)", "Expected per secret", "Duplicates", "First pass s", "Notes"],
        [
          ...rs
            .filter((/** @type {any} */ r) => !r.na && !r.error)
            .map((/** @type {any} */ r) => [
              `${r.tool} (${r.backend})`,
              r.requests,
              Object.entries(r.byKind).map(([k, v]) => `${k} ${v}`).join(", "),
              `${r.requestsPerSecretMin}–${r.requestsPerSecretMax}`,
              r.expectedPerSecret[0] === r.expectedPerSecret[1] ? r.expectedPerSecret[0] : `${r.expectedPerSecret[0]}–${r.expectedPerSecret[1]}`,
              r.duplicates,
              fmt(r.firstPassS, 1),
              `${r.firstPassRequests} requests in the first half refresh`,
            ]),
          ...rs.filter((/** @type {any} */ r) => r.na || r.error).map((/** @type {any} */ r) => [`${r.tool} (${r.backend})`, "n/a", "", "", "", "", "", `${naText(r)}${r.fromSource ? ` — ${r.fromSource.note}` : ""}`]),
        ],
      ),
      "",
    );
  }

  if (j.b5) {
    const p = j.b5.params ?? {};
    out.push("## B5 fleet", "");
    out.push(
      `${p.agents} agents — each a real \`createEmissary\` instance (scheduler, store, runner, writer, awssm backend with its own SDK client), all in one Node process — start at uniformly random moments within ${p.bootSeconds} s ` +
        `against one AWS Secrets Manager fake. Each has ${p.templatesPerAgent} templates over ${p.secretsPerAgent} secrets (the same names fleet-wide) and \`refresh: ${p.refresh}\`. ` +
        "When every agent has written its files, one secret used by every template is rotated; convergence is the time until every agent has rewritten both files. " +
        "Rates are counted at the fake in 1 s buckets (and, less noisy at these rates, 10 s buckets), from the first boot to full convergence.",
      "",
    );
    const rs = j.b5.results ?? [];
    const ok = rs.filter((/** @type {any} */ r) => !r.na && !r.error);
    out.push(
      table(
        ["Tool", "Requests", "Per agent", "Peak/s", "Mean/s", "Peak ÷ mean", "Same, 10 s buckets", "Boot window peak/s (mean)", "After boot peak/s (mean)", "Converge p50 s", "Converge max s", "Agents process"],
        [
          ...ok.map((/** @type {any} */ r) => [
            r.tool,
            `${r.requests} (${Object.entries(r.byOp).map(([k, v]) => `${k} ${v}`).join(", ")})`,
            fmt(r.requestsPerAgent),
            fmt(r.rps.peak),
            fmt(r.rps.mean),
            fmt(r.rps.ratio),
            r.rps10s ? `${fmt(r.rps10s.peak)}/s ÷ ${fmt(r.rps10s.mean)}/s = ${fmt(r.rps10s.ratio)}` : "n/a",
            `${fmt(r.rpsBoot.peak)} (${fmt(r.rpsBoot.mean)})`,
            `${fmt(r.rpsAfterBoot.peak)} (${fmt(r.rpsAfterBoot.mean)})`,
            fmt(r.convergeS.p50, 1),
            fmt(r.convergeS.max, 1),
            `max RSS ${r.agentProcess.maxRssMB} MB, ${r.agentProcess.cpuS} CPU s`,
          ]),
          ...naRows(rs, 12),
        ],
      ),
      "",
      "consul-template has no Secrets Manager source, and the original Go emissary is not installable (see Machine and tools), so B5 has emissary only.",
      "",
    );
  }

  out.push("## Runs", "");
  out.push(
    table(
      ["Job", "Profile", "Parameters", "Started (UTC)", "Took s", "Load avg before → after"],
      Object.entries(j).map(([id, job]) => [/** @type {any} */ (job).title ?? id, job.profile, JSON.stringify(job.params ?? {}), String(job.ranAt ?? "").replace("T", " ").slice(0, 19), job.wallS, `${job.loadAvgBefore} → ${job.loadAvgAfter}`]),
    ),
    "",
  );
  if (results.profiles) {
    const pr = results.profiles;
    out.push(
      "Profiles — `quick` is what `npm run bench` runs by default, `full` (`node bench/run.mjs --profile full`) is the issue's workload; any parameter can be changed with `--set b3.seconds=300`:",
      "",
      table(
        ["Job", "quick", "full"],
        Object.keys(pr.full ?? {}).map((id) => [id.toUpperCase(), JSON.stringify(pr.quick?.[id] ?? {}), JSON.stringify(pr.full?.[id] ?? {})]),
      ),
      "",
    );
  }
  if (o.findings) out.push(o.findings.trim(), "");
  return out.join("\n");
}
