/**
 * The layout is the pipeline: src/ is split into stages whose imports only go down
 * (cli → emissary → runner → observe → templates → sources → output → config → api), and the
 * built-in backends import only src/api/. This test reads every import of src/ and backends/
 * (static, type-only, re-exports and dynamic import()) and fails on an upward import, a
 * backend reaching past src/api/, or an import cycle.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Floors, lowest first. A file may import its own floor (acyclically) or any floor below. */
const FLOORS: readonly [string, number][] = [
  ["src/api/", 0],
  ["backends/", 1],
  ["src/testing/", 1],
  ["src/config/", 2],
  ["src/output/", 3],
  ["src/sources/", 4],
  ["src/templates/", 5],
  ["src/observe/", 6],
  ["src/runner.ts", 7],
  ["src/emissary.ts", 8],
  ["src/index.ts", 9],
  ["src/cli/", 10],
  ["src/cli.ts", 10],
];

function floorOf(file: string): number {
  const hit = FLOORS.find(([prefix]) => file === prefix || (prefix.endsWith("/") && file.startsWith(prefix)));
  if (!hit) throw new Error(`${file} is in no floor of the layout: add its folder to FLOORS and to the README's Development section`);
  return hit[1];
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

interface Edge {
  readonly to: string;
  readonly dynamic: boolean;
}

/** Every relative import of a file, as repository paths of .ts files. */
export function importsOf(file: string, text: string): Edge[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const edges: Edge[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of code.matchAll(re)) {
    const spec = m[1]!;
    const to = relative(ROOT, resolve(ROOT, dirname(file), spec)).replace(/\.js$/, ".ts");
    edges.push({ to, dynamic: m[0].includes("(") });
  }
  return edges;
}

const files = [...sources("src"), ...sources("backends")];
const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), "utf8"))]));

describe("layout: imports only go down the pipeline", () => {
  it("finds the files and their imports (the parser works)", () => {
    expect(files).toContain("src/emissary.ts");
    expect(graph.get("src/emissary.ts")!.length).toBeGreaterThan(3);
    expect(importsOf("src/x.ts", 'import type { A } from "./api/a.js";\nexport { b } from "../backends/b.js";\nconst m = await import("./c.js");')).toEqual([
      { to: "src/api/a.ts", dynamic: false },
      { to: "backends/b.ts", dynamic: false },
      { to: "src/c.ts", dynamic: true },
    ]);
  });

  it("every import resolves to a file that exists", () => {
    const missing = [...graph].flatMap(([f, es]) => es.filter((e) => !graph.has(e.to)).map((e) => `${f} → ${e.to}`));
    expect(missing).toEqual([]);
  });

  it("no file imports a floor above its own", () => {
    const upward: string[] = [];
    for (const [f, es] of graph) {
      for (const e of es) {
        // The registry's table of built-ins loads backends lazily: the one way from src/ to backends/.
        if (f === "src/sources/registry.ts" && e.to.startsWith("backends/") && e.dynamic) continue;
        if (floorOf(e.to) > floorOf(f)) upward.push(`${f} → ${e.to}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("backends import only src/api/ (the package's emissaryd/backend export) and each other", () => {
    const bad = [...graph]
      .filter(([f]) => f.startsWith("backends/"))
      .flatMap(([f, es]) => es.filter((e) => !e.to.startsWith("src/api/") && !e.to.startsWith("backends/")).map((e) => `${f} → ${e.to}`));
    expect(bad).toEqual([]);
  });

  it("src/api/ imports nothing else of src/", () => {
    const bad = [...graph]
      .filter(([f]) => f.startsWith("src/api/"))
      .flatMap(([f, es]) => es.filter((e) => !e.to.startsWith("src/api/")).map((e) => `${f} → ${e.to}`));
    expect(bad).toEqual([]);
  });

  it("there is no import cycle (type-only imports included)", () => {
    const state = new Map<string, "open" | "done">();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        cycles.push([...path.slice(path.indexOf(f)), f].join(" → "));
        return;
      }
      state.set(f, "open");
      for (const e of graph.get(f) ?? []) visit(e.to, [...path, f]);
      state.set(f, "done");
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it("no file is over 400 lines", () => {
    const long = files.map((f) => [f, readFileSync(join(ROOT, f), "utf8").split("\n").length] as const).filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });
});
