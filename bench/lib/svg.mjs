// @ts-check
/**
 * A small, dependency-free SVG chart: stacked panels of horizontal bars (linear or log scale)
 * and an optional line panel (requests per second over time). Pure string building, so it can be
 * unit-tested and needs no network chart library.
 * @module
 */

/** Colour per tool; anything else is grey. */
export const TOOL_COLORS = Object.freeze({ emissary: "#2b6cb0", "consul-template": "#dd6b20", "emissary (original, Go)": "#38a169" });

/**
 * @typedef {object} Bar
 * @property {string} label
 * @property {number} value - must be > 0 on a log scale
 * @property {string} [tool] - picks the colour
 * @property {string} [text] - printed after the bar instead of the value
 */

/**
 * @typedef {object} BarPanel
 * @property {"bars"} kind
 * @property {string} title
 * @property {string} unit
 * @property {"linear" | "log"} [scale] - @defaultValue "linear"
 * @property {Bar[]} bars
 */

/**
 * @typedef {object} LinePanel
 * @property {"line"} kind
 * @property {string} title
 * @property {string} unit - of the y axis
 * @property {number[]} values - one per x step
 * @property {string} xUnit - e.g. "s"
 * @property {{ x: number, label: string }[]} [marks] - vertical markers
 */

/** Escapes text for SVG. */
export function esc(/** @type {string} */ s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

/**
 * A round upper bound for a linear axis: 1, 2 or 5 × 10^k, ≥ max.
 * @param {number} max
 * @returns {number}
 */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** Short number for labels. */
function short(/** @type {number} */ v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1).replace(/\.0$/, "");
  return String(+v.toFixed(2));
}

const W = 760;
const LABEL_W = 190;
const PLOT_W = 440;
const BAR_H = 16;
const GAP = 6;

/**
 * @param {BarPanel} p
 * @param {number} y0
 * @returns {{ svg: string, height: number }}
 */
function barPanel(p, y0) {
  const bars = p.bars.filter((b) => Number.isFinite(b.value) && (p.scale !== "log" || b.value > 0));
  const out = [`<text x="10" y="${y0 + 16}" class="title">${esc(p.title)}</text>`];
  const top = y0 + 28;
  const maxV = Math.max(...bars.map((b) => b.value), 0);
  /** @type {(v: number) => number} */
  let xOf;
  /** @type {{ v: number, label: string }[]} */
  const ticks = [];
  if (p.scale === "log" && bars.length > 0) {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...bars.map((b) => b.value))));
    const hi = 10 ** Math.max(Math.ceil(Math.log10(maxV)), Math.log10(lo) + 1);
    xOf = (v) => (PLOT_W * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
    for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push({ v, label: short(v) });
  } else {
    const hi = niceMax(maxV);
    xOf = (v) => (PLOT_W * v) / hi;
    for (let k = 0; k <= 4; k++) ticks.push({ v: (hi * k) / 4, label: short((hi * k) / 4) });
  }
  const height = 28 + bars.length * (BAR_H + GAP) + 22;
  for (const t of ticks) {
    const x = LABEL_W + xOf(t.v);
    out.push(`<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${top + bars.length * (BAR_H + GAP)}" class="grid"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${top + bars.length * (BAR_H + GAP) + 12}" class="tick">${esc(t.label)}</text>`);
  }
  bars.forEach((b, k) => {
    const y = top + k * (BAR_H + GAP);
    const w = Math.max(1, xOf(b.value));
    const color = (b.tool && /** @type {Record<string, string>} */ (TOOL_COLORS)[b.tool]) || "#718096";
    out.push(`<text x="${LABEL_W - 8}" y="${y + BAR_H - 4}" class="label">${esc(b.label)}</text>`);
    out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"><title>${esc(`${b.label}: ${b.text ?? short(b.value)} ${p.unit}`)}</title></rect>`);
    out.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + BAR_H - 4}" class="value">${esc(b.text ?? `${short(b.value)} ${p.unit}`)}</text>`);
  });
  if (bars.length === 0) out.push(`<text x="${LABEL_W}" y="${top + 12}" class="value">no data</text>`);
  out.push(`<text x="${LABEL_W + PLOT_W + 12}" y="${top + bars.length * (BAR_H + GAP) + 12}" class="unit">${esc(p.unit)}${p.scale === "log" ? " (log)" : ""}</text>`);
  return { svg: out.join("\n"), height };
}

/**
 * @param {LinePanel} p
 * @param {number} y0
 * @returns {{ svg: string, height: number }}
 */
function linePanel(p, y0) {
  const H = 120;
  const top = y0 + 28;
  const out = [`<text x="10" y="${y0 + 16}" class="title">${esc(p.title)}</text>`];
  const n = p.values.length;
  const hi = niceMax(Math.max(...p.values, 0));
  const xOf = (/** @type {number} */ i) => LABEL_W + (n > 1 ? (PLOT_W * i) / (n - 1) : 0);
  const yOf = (/** @type {number} */ v) => top + H - (H * v) / hi;
  for (let k = 0; k <= 4; k++) {
    const v = (hi * k) / 4;
    out.push(`<line x1="${LABEL_W}" y1="${yOf(v).toFixed(1)}" x2="${LABEL_W + PLOT_W}" y2="${yOf(v).toFixed(1)}" class="grid"/>`);
    out.push(`<text x="${LABEL_W - 8}" y="${(yOf(v) + 4).toFixed(1)}" class="label">${esc(short(v))}</text>`);
  }
  if (n > 1) {
    const pts = p.values.map((v, i) => `${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${pts}" fill="none" stroke="${TOOL_COLORS.emissary}" stroke-width="1.5"/>`);
    const step = niceMax(n / 6);
    for (let i = 0; i < n; i += step) out.push(`<text x="${xOf(i).toFixed(1)}" y="${top + H + 14}" class="tick">${i}${esc(p.xUnit)}</text>`);
  }
  (p.marks ?? []).forEach((m, k) => {
    if (m.x < 0 || m.x >= n) return;
    out.push(`<line x1="${xOf(m.x).toFixed(1)}" y1="${top}" x2="${xOf(m.x).toFixed(1)}" y2="${top + H}" class="mark"/>`);
    // Staggered, so marks close together keep readable labels.
    out.push(`<text x="${(xOf(m.x) + 4).toFixed(1)}" y="${top + 10 + 12 * k}" class="marktext">${esc(m.label)}</text>`);
  });
  out.push(`<text x="${LABEL_W + PLOT_W + 12}" y="${top + H + 14}" class="unit">${esc(p.unit)}</text>`);
  return { svg: out.join("\n"), height: 28 + H + 26 };
}

/**
 * Renders panels stacked vertically into one SVG document.
 * @param {(BarPanel | LinePanel)[]} panels
 * @param {{ title?: string, subtitle?: string }} [o]
 * @returns {string}
 */
export function renderChart(panels, o = {}) {
  const parts = [];
  let y = 10;
  if (o.title) {
    parts.push(`<text x="10" y="${y + 18}" class="h1">${esc(o.title)}</text>`);
    y += 26;
  }
  if (o.subtitle) {
    parts.push(`<text x="10" y="${y + 12}" class="sub">${esc(o.subtitle)}</text>`);
    y += 20;
  }
  for (const p of panels) {
    const r = p.kind === "line" ? linePanel(p, y) : barPanel(p, y);
    parts.push(r.svg);
    y += r.height + 10;
  }
  const style = [
    "text { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size: 11px; fill: #1a202c; }",
    ".h1 { font-size: 16px; font-weight: 600; } .sub { fill: #4a5568; } .title { font-size: 13px; font-weight: 600; }",
    ".label { text-anchor: end; } .tick { text-anchor: middle; fill: #718096; font-size: 10px; } .unit { fill: #718096; }",
    ".value { fill: #2d3748; } .grid { stroke: #e2e8f0; stroke-width: 1; } .mark { stroke: #c53030; stroke-dasharray: 4 3; } .marktext { fill: #c53030; font-size: 10px; }",
  ].join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" role="img">`,
    `<style>\n${style}\n</style>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}

/**
 * A short bar label for a result: the tool (shortened), its Node major, and B0's command.
 * @param {any} r
 * @returns {string}
 */
export function shortLabel(r) {
  const tool = r.tool === "emissary (original, Go)" ? "original Go" : r.tool;
  const node = r.node ? ` n${String(r.node).replace(/^v/, "").split(".")[0]}` : "";
  const what = r.what === "idle node" ? " idle" : r.what === "node -e 0" ? " -e 0" : r.what ? ` ${r.what}` : "";
  return `${tool}${node}${what}`;
}

/**
 * Builds the report's chart panels from a results document (what bench/run.mjs writes).
 * Only measured numbers are drawn; n/a entries are left out.
 * @param {any} results
 * @returns {(BarPanel | LinePanel)[]}
 */
export function chartPanels(results) {
  /** @type {(BarPanel | LinePanel)[]} */
  const panels = [];
  const jobs = results.jobs ?? {};
  const measured = (/** @type {any} */ job) => (job?.results ?? []).filter((/** @type {any} */ r) => !r.na && !r.error);
  const b0 = measured(jobs.b0).filter((/** @type {any} */ r) => r.tool !== "/bin/true");
  if (b0.length) {
    panels.push({
      kind: "bars",
      title: "B0 start-up: exec to exit, median",
      unit: "ms",
      scale: "log",
      bars: b0.map((/** @type {any} */ r) => ({ label: shortLabel(r), value: r.wallMs.p50, tool: r.tool })),
    });
  }
  const b1 = measured(jobs.b1);
  if (b1.length) {
    panels.push({
      kind: "bars",
      title: "B1 propagation: file secret changed → file rewritten and command finished",
      unit: "ms",
      scale: "log",
      bars: b1.flatMap((/** @type {any} */ r) => [
        { label: `${shortLabel(r)} p50`, value: r.latencyMs.p50, tool: r.tool },
        { label: `${shortLabel(r)} p99`, value: r.latencyMs.p99, tool: r.tool },
      ]),
    });
  }
  const b2 = measured(jobs.b2);
  if (b2.length) {
    const n = jobs.b2.params?.templates;
    panels.push({ kind: "bars", title: `B2 cold start: ${n} templates, wall time (median)`, unit: "s", bars: b2.map((/** @type {any} */ r) => ({ label: shortLabel(r), value: r.wallS, tool: r.tool })) });
    panels.push({ kind: "bars", title: `B2 cold start: ${n} templates, peak RSS`, unit: "MB", bars: b2.map((/** @type {any} */ r) => ({ label: shortLabel(r), value: r.peakRssMB, tool: r.tool })) });
  }
  const b3 = measured(jobs.b3);
  if (b3.length) {
    const p = jobs.b3.params ?? {};
    panels.push({
      kind: "bars",
      title: `B3 idle: ${p.templates} templates, CPU used in ${p.seconds} s`,
      unit: "CPU s",
      bars: b3.map((/** @type {any} */ r) => ({ label: shortLabel(r), value: r.cpuS, tool: r.tool })),
    });
    panels.push({ kind: "bars", title: `B3 idle: RSS at the end`, unit: "MB", bars: b3.map((/** @type {any} */ r) => ({ label: shortLabel(r), value: r.rssMB, tool: r.tool })) });
  }
  const b4 = measured(jobs.b4);
  if (b4.length) {
    const p = jobs.b4.params ?? {};
    panels.push({
      kind: "bars",
      title: `B4 backend requests: ${p.templates} templates over ${p.secrets} secrets, ${p.seconds} s, refresh ${p.refresh}`,
      unit: "requests",
      bars: b4.map((/** @type {any} */ r) => ({ label: `${shortLabel(r)} (${r.backend})`, value: r.requests, tool: r.tool })),
    });
  }
  const b5 = measured(jobs.b5)[0];
  if (b5?.series?.length) {
    const p = jobs.b5.params ?? {};
    panels.push({
      kind: "line",
      title: `B5 fleet: ${p.agents} agents booting within ${p.bootSeconds} s, refresh ${p.refresh} — requests/s at the AWS fake`,
      unit: "requests/s",
      xUnit: "s",
      values: b5.series,
      marks: [
        { x: p.bootSeconds, label: "boot window ends" },
        ...(b5.rotatedAtS !== undefined ? [{ x: Math.round(b5.rotatedAtS), label: "rotation" }] : []),
      ],
    });
  }
  return panels;
}
