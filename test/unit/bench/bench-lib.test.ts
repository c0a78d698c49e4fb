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
import { chartPanels, esc, niceMax, renderChart } from "../../../bench/lib/svg.mjs";

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
    expect(byName("B2").met).toBe(false);
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
    expect(md).toContain("| emissary | 3 | 15.0 | 30.0 | 40.0 | 40.0 | 20.0 |");
    expect(md).toContain("n/a: renders once & exits \\| no watch");
    expect(md).toContain("## B4 backend calls");
    expect(md).toContain("600 per pass");
    // A tool-level reason is printed once, under Machine and tools, and referenced in job tables.
    expect(md.split("not on the proxy <403>").length - 1).toBe(1);
    expect(md).toContain("n/a: not installable (see Machine and tools) — 600 per pass");
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
