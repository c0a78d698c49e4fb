// @ts-check
/**
 * Summarizes a V8 CPU profile (the `.cpuprofile` JSON that `node --cpu-prof` writes): self time
 * per category — each npm package, emissary's own code, Node's module loader, other Node
 * internals, garbage collection, idle — and the functions with the most self time. A time window
 * can be chosen, so a daemon's start-up and its idle minutes are told apart. Pure: no I/O.
 * @module
 */

/**
 * @typedef {object} ProfileNode
 * @property {number} id
 * @property {{ functionName: string, url: string, lineNumber: number, columnNumber?: number }} callFrame
 * @property {number[]} [children]
 */

/**
 * @typedef {object} CpuProfile
 * @property {ProfileNode[]} nodes
 * @property {number} startTime - µs
 * @property {number} endTime - µs
 * @property {number[]} samples - node id per sample
 * @property {number[]} timeDeltas - µs before each sample
 */

/**
 * The category of a call frame: `pkg:<name>` for node_modules (scoped names kept whole),
 * `emissary` for this repository's dist/, `node:modules` for Node's module loader, `node` for
 * other Node internals, and V8's pseudo-frames by name.
 * @param {{ functionName: string, url: string }} frame
 * @returns {string}
 */
export function categoryOf(frame) {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === "(garbage collector)") return "gc";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(program)") return "program";
    if (functionName === "(root)") return "root";
    return "native";
  }
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return `pkg:${rest[0].startsWith("@") ? `${rest[0]}/${rest[1] ?? ""}` : rest[0]}`;
  }
  if (url.startsWith("node:internal/modules/") || url.startsWith("node:internal/vm")) return "node:modules";
  if (url.startsWith("node:")) return "node";
  if (/\/dist\/(src|backends)\//.test(url)) return "emissary";
  return "other";
}

/**
 * Self time per category and the top functions, over samples whose time falls in
 * [fromMs, toMs) after the profile's start.
 * @param {CpuProfile} profile
 * @param {{ fromMs?: number, toMs?: number, top?: number }} [o] - @defaultValue the whole profile, top 15
 * @returns {{ totalMs: number, windowMs: number, byCategory: { category: string, ms: number, share: number }[], topFunctions: { fn: string, category: string, ms: number }[] }}
 */
export function summarizeProfile(profile, o = {}) {
  /** @type {Map<number, ProfileNode>} */
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const from = (o.fromMs ?? 0) * 1000;
  const to = o.toMs === undefined ? Infinity : o.toMs * 1000;
  /** @type {Map<string, number>} */
  const cat = new Map();
  /** @type {Map<string, { category: string, us: number }>} */
  const fns = new Map();
  let t = 0;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t >= to) continue;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    const c = categoryOf(node.callFrame);
    // A sample's time is the gap to the next sample; the delta before it is the usual approximation.
    cat.set(c, (cat.get(c) ?? 0) + dt);
    total += dt;
    const f = node.callFrame;
    const key = `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
    const e = fns.get(key) ?? { category: c, us: 0 };
    e.us += dt;
    fns.set(key, e);
  }
  const windowUs = Math.min(to, profile.endTime - profile.startTime) - from;
  return {
    totalMs: round(total / 1000),
    windowMs: round(Math.max(0, windowUs) / 1000),
    byCategory: [...cat.entries()].map(([category, us]) => ({ category, ms: round(us / 1000), share: total > 0 ? Number((us / total).toFixed(3)) : 0 })).sort((a, b) => b.ms - a.ms),
    topFunctions: [...fns.entries()]
      .map(([fn, e]) => ({ fn, category: e.category, ms: round(e.us / 1000) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, o.top ?? 15),
  };
}

/**
 * A URL shortened for a table: the part after node_modules/ or dist/, or the node: name.
 * @param {string} url
 * @returns {string}
 */
export function shortUrl(url) {
  if (!url) return "";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) return url.slice(nm + "/node_modules/".length);
  const d = url.lastIndexOf("/dist/");
  if (d >= 0) return url.slice(d + 1);
  return url;
}

/** @param {number} v */
function round(v) {
  return Number(v.toFixed(v >= 100 ? 0 : v >= 1 ? 1 : 3));
}
