/**
 * The benchmark's pure helpers (bench/lib): percentiles and rates, the duplicate-request check
 * behind B4's target, the target verdicts and the report/chart rendering. The benchmark itself is
 * not part of `npm test`; these checks keep its arithmetic honest.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
// @ts-ignore -- plain ESM with JSDoc types; the tsconfig does not include bench/
import { bucketCounts, duplicateRequests, fmt, mean, median, peakAndMean, percentile, summarize } from "../../../bench/lib/stats.mjs";
// @ts-ignore -- see above
import { renderReport, table, targets } from "../../../bench/lib/report.mjs";
// @ts-ignore -- see above
import { chartPanels, esc, niceMax, renderChart, shortLabel } from "../../../bench/lib/svg.mjs";
// @ts-ignore -- see above
import { b0Ratios, fmtRatio, nodeColumns, perMin, ratio, targetTable } from "../../../bench/lib/targets.mjs";
// @ts-ignore -- see above
import { majorOf, parseNodes } from "../../../bench/lib/runtimes.mjs";
// @ts-ignore -- see above
import { categoryOf, shortUrl, summarizeProfile } from "../../../bench/lib/cpuprofile.mjs";
// @ts-ignore -- see above
import { emissaryTools, nodeOf, originalEmissaryTool, ORIGINAL_BIN_ENV } from "../../../bench/lib/tools.mjs";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

describe("percentile (nearest rank)", () => {
  it("matches hand-computed values", () => {
    const v = [15, 20, 35, 40, 50];
    expect(percentile(v, 0)).toBe(15);
    expect(percentile(v, 30)).toBe(20);
    expect(percentile(v, 40)).toBe(20);
    expect(percentile(v, 50)).toBe(35);
    expect(percentile(v, 100)).toBe(50);
    expect(median([3, 1, 2])).toBe(2);
    // p99 of 100 samples is the 99th smallest, not the maximum.
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 50)).toBe(50);
  });

  it("is NaN for no samples and rejects p outside [0, 100]", () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it("always returns a measured value, monotonic in p, and does not reorder the input", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (vals, a, b) => {
        const copy = [...vals];
        const pa = percentile(vals, Math.min(a, b));
        const pb = percentile(vals, Math.max(a, b));
        expect(vals).toContain(pa);
        expect(pa).toBeLessThanOrEqual(pb);
        expect(vals).toEqual(copy);
      }),
    );
  });

  it("summarize rounds and counts", () => {
    expect(summarize([1.234, 2.345, 3.456])).toEqual({ n: 3, min: 1.23, p50: 2.35, p90: 3.46, p99: 3.46, max: 3.46, mean: 2.35 });
    expect(mean([])).toBeNaN();
    expect(summarize([]).n).toBe(0);
  });
});

describe("request rates", () => {
  it("buckets events per second and ignores events outside the window", () => {
    const ts = [1000, 1500, 1999, 2000, 3999, 4000, 500];
    expect(bucketCounts(ts, { startMs: 1000, endMs: 4000 })).toEqual([3, 1, 1]);
    // Only whole buckets: a partial last bucket and its events are dropped.
    expect(bucketCounts([1000, 3100], { startMs: 1000, endMs: 3900 })).toEqual([1, 0]);
    expect(bucketCounts([1000, 12_000], { startMs: 1000, endMs: 16_000, bucketMs: 10_000 })).toEqual([1]);
    expect(bucketCounts([1], { startMs: 5, endMs: 5 })).toEqual([]);
  });

  it("peak and mean in requests per second, with their ratio", () => {
    expect(peakAndMean([10, 20, 30])).toEqual({ peak: 30, mean: 20, ratio: 1.5, buckets: 3 });
    expect(peakAndMean([5, 5], 500)).toEqual({ peak: 10, mean: 10, ratio: 1, buckets: 2 });
    expect(peakAndMean([0, 0]).ratio).toBeNaN();
    expect(peakAndMean([]).buckets).toBe(0);
  });
});

describe("duplicateRequests (B4's one-request-per-refresh check)", () => {
  it("counts reads of one secret closer than the gap, per key", () => {
    const byKey = new Map([
      ["a", [0, 30_000, 60_000]],
      ["b", [0, 100, 30_000]],
      ["c", [0]],
    ]);
    expect(duplicateRequests(byKey, 15_000)).toEqual({ keys: 3, requests: 7, duplicates: 1, perKeyMin: 1, perKeyMax: 3 });
    expect(duplicateRequests({ x: [5, 1] }, 10)).toMatchObject({ duplicates: 1 });
    expect(duplicateRequests(new Map(), 10)).toEqual({ keys: 0, requests: 0, duplicates: 0, perKeyMin: 0, perKeyMax: 0 });
  });
});

describe("formatting", () => {
  it("fmt picks decimals by size and says n/a for missing numbers", () => {
    expect(fmt(1234.5)).toBe("1235");
    expect(fmt(12.34)).toBe("12.3");
    expect(fmt(1.234)).toBe("1.23");
    expect(fmt(1.234, 0)).toBe("1");
    expect(fmt(Number.NaN)).toBe("n/a");
    expect(fmt(undefined)).toBe("n/a");
  });

  it("markdown tables escape pipes", () => {
    expect(table(["a", "b"], [["x|y", 2]])).toBe("| a | b |\n|---|---|\n| x\\|y | 2 |");
  });

  it("niceMax rounds up to 1, 2 or 5 × 10^k", () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(3.2)).toBe(5);
    expect(niceMax(120)).toBe(200);
    expect(niceMax(1000)).toBe(1000);
    expect(niceMax(501)).toBe(1000);
  });
});

/** A results document shaped like bench/run.mjs writes it. */
function sampleResults(): Record<string, unknown> {
  return {
    date: "2030-01-02",
    machine: { cpus: 2, cpuModel: "Test CPU", memGB: 8, kernel: "6.1", node: "v20.19.0", go: "go1.22", shared: "Shared." },
    tools: {
      emissary: { name: "emissary", available: true, version: "0.1.0" },
      consulTemplate: { name: "consul-template", available: true, version: "v0.41.1" },
      original: { name: "emissary (original, Go)", available: false, reason: "not on the proxy <403>" },
    },
    jobs: {
      b1: {
        title: "B1 propagation",
        profile: "quick",
        params: { changes: 3, gapMs: 2000 },
        results: [
          { tool: "emissary", latencyMs: { n: 3, min: 10, p50: 15, p90: 30, p99: 40, max: 40, mean: 20 }, viaPoll: 0, failures: 0 },
          { tool: "consul-template", latencyMs: { n: 3, min: 900, p50: 1000, p90: 1900, p99: 2000, max: 2000, mean: 1200 }, viaPoll: 0, failures: 0 },
          { tool: "emissary (original, Go)", na: "renders once & exits | no watch" },
        ],
      },
      b2: { title: "B2 cold start", profile: "quick", params: { templates: 1000, secrets: 1000, runs: 1 }, results: [{ tool: "emissary", wallS: 1.5, peakRssMB: 100, cpuS: 2, okRuns: 1, samples: [{ wallS: 1.5 }] }] },
      b4: {
        title: "B4 backend calls",
        profile: "quick",
        params: { templates: 300, secrets: 100, seconds: 120, refresh: "30s", referencesPerTemplate: 2 },
        results: [
          { tool: "emissary", backend: "vault", requests: 600, byKind: { mounts: 100, read: 500 }, requestsPerSecretMin: 5, requestsPerSecretMax: 5, expectedPerSecret: [4, 5], duplicates: 0, firstPassS: 2, firstPassRequests: 200 },
          { tool: "emissary", backend: "awssm", requests: 405, byKind: { BatchGetSecretValue: 5, DescribeSecret: 400 }, requestsPerSecretMin: 5, requestsPerSecretMax: 5, expectedPerSecret: [4, 5], duplicates: 0, firstPassS: 2, firstPassRequests: 5 },
          { tool: "emissary (original, Go)", backend: "awssm", na: "not on the proxy <403>", fromSource: { requestsPerPass: 600, note: "600 per pass" } },
        ],
      },
      b5: {
        title: "B5 fleet",
        profile: "quick",
        params: { agents: 10, bootSeconds: 3, refresh: "30s", secretsPerAgent: 3, templatesPerAgent: 2 },
        results: [
          {
            tool: "emissary",
            requests: 30,
            byOp: { DescribeSecret: 30 },
            requestsPerAgent: 3,
            rps: { peak: 10, mean: 4, ratio: 2.5, buckets: 5 },
            rpsBoot: { peak: 10, mean: 5, ratio: 2, buckets: 3 },
            rpsAfterBoot: { peak: 4, mean: 3, ratio: 1.33, buckets: 2 },
            series: [10, 5, 4, 3, 3],
            rotatedAtS: 4,
            convergeS: { n: 10, min: 1, p50: 10, p90: 20, p99: 30, max: 31, mean: 12 },
            agentProcess: { maxRssMB: 100, cpuS: 2 },
          },
        ],
      },
    },
  };
}

describe("targets", () => {
  it("judges each target from the measured numbers and says n/a where a job did not run", () => {
    const rows = targets(sampleResults()) as { target: string; measured: string; met: boolean | undefined }[];
    const byName = (s: string) => rows.find((r) => r.target.startsWith(s))!;
    expect(byName("B1 p50").met).toBe(true);
    expect(byName("B1 p99").met).toBe(true);
    expect(byName("B1 ≥ 20×")).toMatchObject({ met: true, measured: expect.stringContaining("66.7×") });
    // No consul-template in this B2: the ratio targets are n/a, the absolute one is judged.
    expect(byName("B2 cold start (1000 templates) wall")).toMatchObject({ met: undefined, measured: "n/a" });
    expect(byName("B2 cold start ≤ 1 s").met).toBe(false);
    // Older documents have no `node` on results: they count as the machine's Node.
    expect(rows.every((r: { node?: string }) => r.node === "v20.19.0")).toBe(true);
    expect(byName("B3 RSS")).toMatchObject({ met: undefined, measured: "n/a" });
    // 100 mount preflights on top of the reads: not "exactly one request per secret".
    expect(byName("B4 one request per unique secret per refresh (vault)")).toMatchObject({ met: false, measured: expect.stringContaining("100 mount preflight") });
    expect(byName("B4 one request per unique secret per refresh (awssm)").met).toBe(true);
    expect(byName("B5").met).toBe(false);
  });
});

describe("renderReport", () => {
  it("has the machine, every job's table, n/a rows with their reason, and the chart link", () => {
    const md = renderReport(sampleResults(), { chart: "chart.svg", findings: "## Analysis\nhand-written" }) as string;
    expect(md).toContain("| CPU | 2 × Test CPU |");
    expect(md).toContain("not available: not on the proxy <403>");
    expect(md).toContain("| emissary |  | 3 | 15.0 | 30.0 | 40.0 | 40.0 | 20.0 |");
    expect(md).toContain("n/a: renders once & exits \\| no watch");
    expect(md).toContain("## B4 backend calls");
    expect(md).toContain("600 per pass");
    // A tool-level reason is printed once, under Machine and tools, and referenced in job tables.
    expect(md.split("not on the proxy <403>").length - 1).toBe(1);
    expect(md).toContain("n/a: not available (see Machine and tools) — 600 per pass");
    expect(md).toContain("![Benchmark chart](chart.svg)");
    expect(md).toContain("## B5 fleet");
    expect(md.trimEnd().endsWith("hand-written")).toBe(true);
    expect(md).not.toContain("## B3 idle");
  });
});

describe("SVG chart", () => {
  it("draws one bar per measured value, escapes text, and leaves n/a entries out", () => {
    const svg = renderChart(chartPanels(sampleResults()), { title: "A <b> & c" }) as string;
    expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("A &lt;b&gt; &amp; c");
    // B1: p50 and p99 for two tools; B2 wall + RSS for one; B4 two; total rects = 4 + 2 + 2 bars + the background.
    expect(svg.match(/<rect /g)?.length).toBe(1 + 4 + 1 + 1 + 2);
    expect(svg).not.toContain("original");
    expect(svg).toContain("<polyline");
    expect(svg).toContain("rotation");
    expect(esc(`"'`)).toBe("&quot;&#39;");
  });

  it("log scale puts 10× apart values one decade apart", () => {
    const svg = renderChart([
      { kind: "bars", title: "t", unit: "ms", scale: "log", bars: [ { label: "a", value: 10 }, { label: "b", value: 100 } ] },
    ]) as string;
    const widths = [...svg.matchAll(/<rect x="\d+" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(2);
    // Axis 10..100 spans the whole plot: a is the minimum (1 px), b the full width.
    expect(widths[0]).toBe(1);
    expect(widths[1]).toBeCloseTo(440, 0);
  });
});

/** A results document with two Node runtimes, B0, B2 and B3 against their floors and consul-template. */
function twoNodeResults(): Record<string, any> {
  const w = (p50: number) => ({ n: 5, min: p50 - 1, p50, p90: p50 + 1, p99: p50 + 2, max: p50 + 2, mean: p50 });
  return {
    date: "2030-01-03",
    machine: { cpus: 2, cpuModel: "Test CPU", memGB: 8, kernel: "6.1", node: "v20.1.0", go: "go1.26", shared: "Shared.", envRemoved: ["NODE_EXTRA_CA_CERTS"] },
    nodes: [
      { key: "20", available: true, version: "v20.1.0" },
      { key: "24", available: true, version: "v24.2.0" },
    ],
    tools: {
      emissary: { name: "emissary", available: true, version: "0.1.0 (node v20.1.0)", node: "v20.1.0" },
      "emissary-node24": { name: "emissary", available: true, version: "0.1.0 (node v24.2.0)", node: "v24.2.0" },
      consulTemplate: { name: "consul-template", available: true, version: "v0.41.1" },
      original: { name: "emissary (original, Go)", available: true, version: "built by hand" },
    },
    jobs: {
      b0: {
        title: "B0 start-up",
        profile: "quick",
        params: { runs: 5, warmup: 1 },
        results: [
          { tool: "/bin/true", what: "true", wallMs: w(5), peakRssMB: 1, cpuMs: 0, okRuns: 5, runs: 5 },
          { tool: "node", what: "node -e 0", node: "v20.1.0", wallMs: w(40), peakRssMB: 38, cpuMs: 30, okRuns: 5, runs: 5 },
          { tool: "emissary", what: "--version", node: "v20.1.0", wallMs: w(60), peakRssMB: 50, cpuMs: 50, okRuns: 5, runs: 5 },
          { tool: "emissary", what: "--help", node: "v20.1.0", wallMs: w(59), peakRssMB: 50, cpuMs: 50, okRuns: 5, runs: 5 },
          { tool: "emissary", what: "once", node: "v20.1.0", wallMs: w(100), peakRssMB: 60, cpuMs: 90, okRuns: 5, runs: 5 },
          { tool: "node", what: "node -e 0", node: "v24.2.0", wallMs: w(50), peakRssMB: 42, cpuMs: 30, okRuns: 5, runs: 5 },
          { tool: "emissary", what: "--version", node: "v24.2.0", wallMs: w(70), peakRssMB: 50, cpuMs: 50, okRuns: 5, runs: 5 },
          // One run of --help under Node 24 failed: not judged.
          { tool: "emissary", what: "--help", node: "v24.2.0", wallMs: w(70), peakRssMB: 50, cpuMs: 50, okRuns: 4, runs: 5, error: "1 of 5 runs failed" },
          { tool: "emissary", what: "once", node: "v24.2.0", wallMs: w(90), peakRssMB: 70, cpuMs: 80, okRuns: 5, runs: 5 },
          { tool: "consul-template", what: "once", wallMs: w(20), peakRssMB: 14, cpuMs: 10, okRuns: 5, runs: 5 },
          { tool: "emissary (original, Go)", what: "once", wallMs: w(25), peakRssMB: 14, cpuMs: 10, okRuns: 5, runs: 5 },
        ],
      },
      b2: {
        title: "B2 cold start",
        profile: "quick",
        params: { templates: 1000, secrets: 1000, runs: 1 },
        results: [
          { tool: "emissary", node: "v20.1.0", wallS: 0.9, peakRssMB: 60, cpuS: 1, okRuns: 1, samples: [{ wallS: 0.9 }] },
          { tool: "emissary", node: "v24.2.0", wallS: 1.2, peakRssMB: 57, cpuS: 1, okRuns: 1, samples: [{ wallS: 1.2 }] },
          { tool: "consul-template", wallS: 1.0, peakRssMB: 30, cpuS: 1, okRuns: 1, samples: [{ wallS: 1.0 }] },
          { tool: "node", what: "node -e 0", node: "v20.1.0", wallS: 0.04, peakRssMB: 38, cpuS: 0.03, okRuns: 1, samples: [{ wallS: 0.04 }] },
        ],
      },
      b3: {
        title: "B3 idle",
        profile: "quick",
        params: { templates: 100, secrets: 100, seconds: 60 },
        results: [
          { tool: "emissary", node: "v20.1.0", windowS: 60, cpuS: 0.1, cpuSPerMin: 0.1, rssMB: 47, maxRssMB: 50, cpuAtStartS: 0.5 },
          { tool: "emissary", node: "v24.2.0", windowS: 60, cpuS: 0.3, rssMB: 60, maxRssMB: 61, cpuAtStartS: 0.5 },
          { tool: "consul-template", windowS: 60, cpuS: 0.2, cpuSPerMin: 0.2, rssMB: 20, maxRssMB: 20, cpuAtStartS: 0.1 },
          { tool: "node", what: "idle node", node: "v20.1.0", windowS: 60, cpuS: 0, rssMB: 40, maxRssMB: 40, cpuAtStartS: 0.03 },
          { tool: "node", what: "idle node", node: "v24.2.0", windowS: 60, cpuS: 0, rssMB: 44, maxRssMB: 44, cpuAtStartS: 0.03 },
        ],
      },
    },
  };
}

describe("ratios and Node columns", () => {
  it("ratio is undefined for missing, non-finite or non-positive denominators", () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(undefined, 2)).toBeUndefined();
    expect(ratio(1, 0)).toBeUndefined();
    expect(ratio(Number.NaN, 1)).toBeUndefined();
    expect(fmtRatio(2.345)).toBe("2.35×");
    expect(fmtRatio(undefined)).toBe("n/a");
  });

  it("takes the Node columns from the run's runtimes, else from the results, else the machine", () => {
    expect(nodeColumns(twoNodeResults())).toEqual(["v20.1.0", "v24.2.0"]);
    const noList = { ...twoNodeResults(), nodes: undefined };
    expect(nodeColumns(noList)).toEqual(["v20.1.0", "v24.2.0"]);
    expect(nodeColumns(sampleResults())).toEqual(["v20.19.0"]);
    // A runtime that could not be had gets no column.
    expect(nodeColumns({ ...twoNodeResults(), nodes: [{ key: "20", available: true, version: "v20.1.0" }, { key: "24", available: false, reason: "offline" }] })).toEqual(["v20.1.0"]);
  });

  it("B0 ratios are to node -e 0 of the same Node, and for once to consul-template's and the original's once", () => {
    const doc = twoNodeResults();
    const once24 = doc.jobs.b0.results.find((r: any) => r.what === "once" && r.node === "v24.2.0");
    expect(b0Ratios(doc, once24)).toEqual({ vsNode: 90 / 50, vsConsulTemplate: 90 / 20, vsOriginal: 90 / 25 });
    const version20 = doc.jobs.b0.results.find((r: any) => r.what === "--version" && r.node === "v20.1.0");
    expect(b0Ratios(doc, version20)).toEqual({ vsNode: 60 / 40 });
    const ct = doc.jobs.b0.results.find((r: any) => r.tool === "consul-template");
    expect(b0Ratios(doc, ct)).toEqual({ vsOriginal: 20 / 25 });
  });

  it("judges every ratio target per Node, with a failed or missing input as n/a", () => {
    const { nodes, rows } = targetTable(twoNodeResults());
    expect(nodes).toEqual(["v20.1.0", "v24.2.0"]);
    const row = (prefix: string) => rows.find((r: { target: string }) => r.target.startsWith(prefix))!.cells;
    // once: 100/40 = 2.5× (missed), 90/50 = 1.8× (met).
    expect(row("B0 `emissary once`").map((c: any) => c.met)).toEqual([false, true]);
    expect(row("B0 `emissary once`")[1].measured).toBe("1.80× (90.0 ms vs 50.0 ms)");
    // --version: exactly 1.5× is met; 70/50 = 1.4× met.
    expect(row("B0 `emissary --version`").map((c: any) => c.met)).toEqual([true, true]);
    // --help under 24 had a failed run: n/a, not judged from partial numbers.
    expect(row("B0 `emissary --help`").map((c: any) => c.met)).toEqual([true, undefined]);
    // B2 against consul-template: 0.9 s ≤ 1.0 s met, 1.2 s missed; RSS 60/30 = 2× met, 57/30 met.
    expect(row("B2 cold start (1000 templates) wall").map((c: any) => c.met)).toEqual([true, false]);
    expect(row("B2 peak RSS").map((c: any) => c.met)).toEqual([true, true]);
    // B3: RSS 47/40 = 1.175× met; 60/44 = 1.36× missed. CPU 0.1 ≤ 0.2 met, 0.3 missed.
    expect(row("B3 RSS ≤ 1.25×").map((c: any) => c.met)).toEqual([true, false]);
    expect(row("B3 idle CPU").map((c: any) => c.met)).toEqual([true, false]);
    expect(row("B3 idle CPU")[1].measured).toContain("0.30 vs 0.20 CPU s/min");
    // B4 and B5 ran under neither here; their single column is the bench's Node, the other is "not run".
    expect(row("B5")).toEqual([{ measured: "n/a", met: undefined }, undefined]);
  });

  it("perMin falls back to cpuS over the window for older documents", () => {
    expect(perMin({ cpuS: 0.5, windowS: 30 })).toBe(1);
    expect(perMin({ cpuSPerMin: 0.2, cpuS: 9, windowS: 1 })).toBe(0.2);
  });

  it("renders Node columns, the B0 table with its ratios, and the removed environment", () => {
    const md = renderReport({ ...twoNodeResults(), note: "Baseline: before the work." }) as string;
    expect(md).toContain("> **Baseline: before the work.**");
    expect(md).toContain("| Target | node 20.1.0: measured | met | node 24.2.0: measured | met |");
    expect(md).toContain("## B0 start-up");
    expect(md).toContain("| emissary | 24.2.0 | once | 90.0 | 91.0 | 89.0 | 1.80× | 4.50× | 3.60× | 70.0 | 80 | 5/5 |");
    expect(md).toContain("| emissary | 24.2.0 | n/a |");
    expect(md).toContain("failed: 1 of 5 runs failed");
    // B2: ratio to consul-template and to the same Node's floor (Node 24 has none in this document).
    expect(md).toContain("| emissary | 20.1.0 | 0.90 | 60.0 | 1.00 | 0.90× | 2.00× | 22.50× | 1.58× |");
    expect(md).toContain("| emissary | 24.2.0 | 1.20 | 57.0 | 1.00 | 1.20× | 1.90× | n/a | n/a |");
    // B3: CPU per minute, CPU × consul-template, RSS × idle node.
    expect(md).toContain("| emissary | 20.1.0 | 60 | 0.10 | 0.100 | 0.50× | 47.0 | 1.18× |");
    expect(md).toContain("| idle node | 24.2.0 | 60 |");
    expect(md).toContain("`NODE_EXTRA_CA_CERTS`");
    expect(md).toContain("| B5 peak ≤ 2× mean requests/s (1 s buckets; issue 8) | n/a | n/a | not run under this Node | – |");
  });

  it("short chart labels name the Node major and B0's command", () => {
    expect(shortLabel({ tool: "emissary", node: "v24.2.0", what: "once" })).toBe("emissary n24 once");
    expect(shortLabel({ tool: "node", node: "v20.1.0", what: "idle node" })).toBe("node n20 idle");
    expect(shortLabel({ tool: "node", node: "v24.2.0", what: "node -e 0" })).toBe("node n24 -e 0");
    expect(shortLabel({ tool: "emissary (original, Go)", what: "once" })).toBe("original Go once");
    const svg = renderChart(chartPanels(twoNodeResults())) as string;
    expect(svg).toContain("B0 start-up");
    expect(svg).toContain("emissary n20 --version");
    expect(svg).not.toContain("/bin/true");
  });
});

describe("Node runtimes", () => {
  it("parses --nodes and process.version majors", () => {
    expect(parseNodes("20, 24,20")).toEqual(["20", "24"]);
    expect(parseNodes("v24")).toEqual(["24"]);
    expect(() => parseNodes("20,latest")).toThrow(/major versions/);
    expect(() => parseNodes(" , ")).toThrow(/no version/);
    expect(majorOf("v24.21.0")).toBe(24);
    expect(majorOf("nonsense")).toBeNaN();
  });
});

describe("CPU profile summary (bench/profile.mjs)", () => {
  const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber, columnNumber: 0 });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)", ""), children: [2, 3, 4, 5, 6, 7] },
      { id: 2, callFrame: frame("write", "file:///r/node_modules/pino/lib/proto.js", 9) },
      { id: 3, callFrame: frame("parse", "file:///r/node_modules/@aws-sdk/client-secrets-manager/dist-cjs/index.js", 99) },
      { id: 4, callFrame: frame("render", "file:///r/dist/src/template/render.js", 4) },
      { id: 5, callFrame: frame("(garbage collector)", "") },
      { id: 6, callFrame: frame("(idle)", "") },
      { id: 7, callFrame: frame("compileSourceTextModule", "node:internal/modules/esm/utils", 1) },
    ],
    startTime: 0,
    endTime: 10_000,
    // µs: one sample each 1 ms; the first five in the first 5 ms, the rest after.
    samples: [2, 2, 3, 7, 5, 6, 6, 6, 4, 6],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
  };

  it("puts frames in categories: packages (scoped whole), emissary, the module loader, V8 pseudo-frames", () => {
    expect(categoryOf(frame("x", "file:///a/node_modules/pino-pretty/index.js"))).toBe("pkg:pino-pretty");
    expect(categoryOf(frame("x", "file:///a/node_modules/@smithy/core/dist-cjs/x.js"))).toBe("pkg:@smithy/core");
    expect(categoryOf(frame("x", "file:///a/node_modules/x/node_modules/y/i.js"))).toBe("pkg:y");
    expect(categoryOf(frame("x", "file:///w/dist/backends/file.js"))).toBe("emissary");
    expect(categoryOf(frame("x", "node:internal/modules/cjs/loader"))).toBe("node:modules");
    expect(categoryOf(frame("x", "node:fs"))).toBe("node");
    expect(categoryOf(frame("(garbage collector)", ""))).toBe("gc");
    expect(categoryOf(frame("(program)", ""))).toBe("program");
    expect(shortUrl("file:///a/node_modules/pino/lib/proto.js")).toBe("pino/lib/proto.js");
    expect(shortUrl("file:///w/dist/src/cli.js")).toBe("dist/src/cli.js");
  });

  it("adds self time per category and function, whole or in a window", () => {
    const all = summarizeProfile(profile);
    expect(all.totalMs).toBe(10);
    expect(all.byCategory[0]).toEqual({ category: "idle", ms: 4, share: 0.4 });
    expect(all.byCategory.find((c: any) => c.category === "pkg:pino")).toEqual({ category: "pkg:pino", ms: 2, share: 0.2 });
    expect(all.topFunctions[1]).toEqual({ fn: "write pino/lib/proto.js:10", category: "pkg:pino", ms: 2 });
    // Samples at t = 1..4 ms (the delta before a sample ends at its time): pino ×2, aws, loader.
    const start = summarizeProfile(profile, { toMs: 5 });
    expect(start.totalMs).toBe(4);
    expect(start.byCategory.map((c: any) => c.category).sort()).toEqual(["node:modules", "pkg:@aws-sdk/client-secrets-manager", "pkg:pino"]);
    const late = summarizeProfile(profile, { fromMs: 5, top: 2 });
    expect(late.totalMs).toBe(6);
    expect(late.windowMs).toBe(5);
    expect(late.topFunctions).toHaveLength(2);
    expect(late.byCategory.find((c: any) => c.category === "emissary")?.ms).toBe(1);
  });
});

describe("tools (bench/lib/tools.mjs)", () => {
  it("takes the original Go emissary only from EMISSARY_ORIGINAL_BIN, and says why a path is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-tools-"));
    const saved = process.env[ORIGINAL_BIN_ENV];
    try {
      const notExec = join(dir, "emissary-original");
      writeFileSync(notExec, "not a program");
      chmodSync(notExec, 0o644);
      process.env[ORIGINAL_BIN_ENV] = notExec;
      expect(await originalEmissaryTool(dir, () => {})).toEqual({ name: "emissary (original, Go)", available: false, reason: `${ORIGINAL_BIN_ENV}=${notExec} is not an executable file` });
      const exec = join(dir, "emissary-original-exec");
      writeFileSync(exec, "#!/bin/sh\nexit 0\n");
      chmodSync(exec, 0o755);
      process.env[ORIGINAL_BIN_ENV] = exec;
      // Not a Go binary: no build information, still runnable.
      expect(await originalEmissaryTool(dir, () => {})).toMatchObject({ available: true, bin: exec, version: "built by hand" });
    } finally {
      if (saved === undefined) delete process.env[ORIGINAL_BIN_ENV];
      else process.env[ORIGINAL_BIN_ENV] = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes one emissary per Node runtime, n/a with the runtime's reason where it is missing", () => {
    const root = fileURLToPath(new URL("../../..", import.meta.url));
    const tools = emissaryTools(root, [
      { key: "20", available: true, bin: "/usr/bin/node-20", version: "v20.1.0" },
      { key: "24", available: false, reason: "offline" },
    ]);
    expect(tools[0]).toMatchObject({ name: "emissary", nodeKey: "20", nodeVersion: "v20.1.0", node: "/usr/bin/node-20" });
    expect(tools[0].available).toBe(true);
    expect(tools[1]).toMatchObject({ name: "emissary", available: false, reason: "node 24: offline" });
    expect(nodeOf(tools[0])).toEqual({ node: "v20.1.0" });
    expect(nodeOf(tools[1])).toEqual({ node: "node 24" });
    expect(nodeOf({ name: "consul-template", available: true })).toEqual({});
  });
});
