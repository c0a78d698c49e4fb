#!/usr/bin/env node
// @ts-check
/**
 * Bundles the CLI's command path into one file: `dist/src/cli/main.js` is replaced by
 * src/cli/main.ts with everything it imports — emissary's modules, yaml, pino, mustache — so a
 * start loads 1 module file instead of ~170 (Node's ESM loader pays per file: resolution, a read,
 * a compile). Run by `npm run build` after tsc; the rest of dist/ stays tsc's output, so the
 * library (`emissaryd`, `emissaryd/backend`, `emissaryd/testing`) is unchanged.
 *
 * Left out of the bundle, loaded from dist/ and node_modules/ only when used:
 * - the awssm, ssm and vault backends (the AWS SDK and the Vault client are most of the code);
 * - prom-client, which the status server loads itself (src/observe/metrics.ts).
 * yaml is taken from its ES module build: the same code as its CommonJS build, but it compiles
 * lazily and needs no CommonJS wrapper (measured: 14 ms against 6 ms to load on Node 24).
 *
 *   node scripts/bundle-cli.mjs            # after tsc -p tsconfig.json
 */
import { build } from "esbuild";
import { readFileSync, statSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "dist/src/cli/main.js");
const require = createRequire(join(ROOT, "package.json"));
const yamlEsm = join(dirname(require.resolve("yaml/package.json")), "browser/dist/index.js");
const engines = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).engines.node;

/** The backends whose code stays in dist/backends/: the import path is kept as written. */
const LAZY_BACKENDS = /^\.\.\/\.\.\/backends\/(awssm|ssm|vault)\.js$/;

const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ["src/cli/main.ts"],
  outfile: OUT,
  bundle: true,
  platform: "node",
  format: "esm",
  // The oldest Node package.json allows (">=20.19" → node20.19).
  target: `node${engines.replace(/^>=\s*/, "")}`,
  alias: { yaml: yamlEsm },
  // CommonJS dependencies (pino) call require() for Node's modules; an ES module has none.
  banner: { js: 'import { createRequire as __emissaryCreateRequire } from "node:module";\nconst require = __emissaryCreateRequire(import.meta.url);' },
  plugins: [
    {
      // An ES import of a Node module is hoisted to the bundle's start, and Node builds an ES
      // facade of the whole module (node:http's on Node 24 loads undici: ~20 ms). As a CommonJS
      // require it runs when the module that uses it first runs: node:http only with an http
      // backend, node:child_process only with a reload command.
      name: "lazy-node-modules",
      setup(b) {
        b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) =>
          args.kind === "import-statement" && isBuiltin(args.path) ? { path: args.path.replace(/^node:/, ""), namespace: "node-module" } : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: "node-module" }, (args) => ({ contents: `module.exports = require("node:${args.path}");`, loader: "js" }));
      },
    },
    {
      name: "lazy-backends",
      setup(b) {
        // registry.ts (dist/src/sources/) and main.js (dist/src/cli/) are as deep as each other,
        // so "../../backends/awssm.js" names dist/backends/awssm.js from the bundle as well.
        b.onResolve({ filter: LAZY_BACKENDS }, (args) => ({ path: args.path, external: true }));
      },
    },
  ],
  sourcemap: "linked",
  sourcesContent: true,
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
});

// Every import the bundle leaves to run time must be one of Node's modules or a lazy backend.
for (const imp of Object.values(result.metafile.outputs).flatMap((o) => o.imports)) {
  if (!imp.external || isBuiltin(imp.path) || LAZY_BACKENDS.test(imp.path)) continue;
  throw new Error(`bundle-cli: unexpected external import ${imp.path}`);
}
process.stderr.write(`bundle-cli: ${OUT.slice(ROOT.length + 1)} (${Math.round(statSync(OUT).size / 1024)} KiB)\n`);
