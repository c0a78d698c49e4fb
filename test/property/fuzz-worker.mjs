/**
 * Property-based fuzzing of everything emissary parses, run in a worker thread against the built
 * package (dist/) so the test can terminate it if an input makes it hang — a synchronous infinite
 * loop or catastrophic regex backtracking cannot be interrupted from inside.
 *
 * workerData: { group, seed, numRuns, dist, sab }. Before each input is tried, its JSON is
 * written into `sab` (Int32 length, then UTF-8 bytes) so the test can show it after a hang.
 * Posts { ok: true, runs } or { ok: false, report }.
 */
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parentPort, workerData } from "node:worker_threads";

const { group, seed, numRuns, dist, sab } = workerData;
const load = (p) => import(pathToFileURL(join(dist, p)).href);
const { RefSyntaxError, parseRef, extractValue } = await load("src/api/refs.js");
const { DurationError, parseDuration, formatDuration, toMs } = await load("src/api/duration.js");
const { TemplateError, SecretNotFoundError, ConfigError } = await load("src/api/errors.js");
const { parseTemplate, parseMode } = await load("src/templates/parse.js");
const { renderTemplate } = await load("src/templates/render.js");
const { splitCommand } = await load("src/output/split-command.js");
const { globToRegExp } = await load("src/config/glob.js");
const { resolveConfig } = await load("src/config/resolve.js");

const lenView = new Int32Array(sab, 0, 1);
const bytes = new Uint8Array(sab, 4);
const encoder = new TextEncoder();
/** Records the input about to be tried, for the hang report. */
function current(input) {
  let text;
  try {
    text = JSON.stringify(input);
  } catch {
    text = String(input);
  }
  const b = encoder.encode((text ?? "undefined").slice(0, bytes.length / 4));
  bytes.set(b.subarray(0, bytes.length));
  Atomics.store(lenView, 0, Math.min(b.length, bytes.length));
}

/** Runs `fn`; an error of one of `allowed` classes is a clean outcome, anything else fails. */
function clean(fn, allowed, what) {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (allowed.some((C) => err instanceof C)) {
      if (typeof err.message !== "string" || err.message === "") throw new Error(`${what}: a ${err.name} without a message`);
      return { ok: false, error: err };
    }
    throw new Error(`${what}: unexpected ${err?.name ?? typeof err}: ${err?.message ?? String(err)}`);
  }
}

function prop(arbs, pred) {
  return fc.property(...arbs, (...args) => {
    current(args);
    return pred(...args);
  });
}

// ---------- generators ----------
const anyText = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: "binary", maxLength: 80 }), fc.string({ unit: "grapheme", maxLength: 40 }));
const backendName = fc.constantFrom("file", "env", "http", "insecure", "awssm", "vault", "my-backend_2");
const secretValue = fc.oneof(
  anyText,
  fc.json({ maxDepth: 3 }),
  fc.constantFrom("", " ", "intentionally-empty", " intentionally-empty\n", "{", "[1,2", '{"a":', "{{a}}", "{{{a}}}", "{{#a}}x{{/a}}", "{{=<% %>=}}", "<script>", '"quoted"', "\\u0000"),
);
const bodyPiece = fc.constantFrom(
  "{{", "}}", "{{{", "}}}", "{{#", "{{^", "{{/", "{{>", "{{&", "{{!", "{{=", "=}}", "a", "b", "tls", ".", "ca", "x.y", " ", "\n", "\r\n", "\t",
  "{{a}}", "{{b}}", "{{#a}}", "{{/a}}", "{{^b}}", "{{/b}}", "{{a.ca}}", "{{{a}}}", "{{&b}}", "{{.}}", "{{poll \"env\" \"A\"}}", "{{poll 'x' 'y'}}",
  "{{if .X}}", "{{end}}", "{{=<% %>=}}", "<%a%>", "<%={{ }}=%>", "{{! comment }}", "ü", "\u2028", "\u0000", "$", "`",
);
const fmPiece = fc.constantFrom(
  "dest: out\n", "dest: ", "/tmp/x\n", "mode: ", "0644", "0800", "400", "\"0640\"", "0o600", "99999", "\n",
  "secrets:\n", "  a: env:A\n", "  b: file:./b#k\n", "  c: awssm:prod/db#/a/b\n", "  d:\n", "    ref: vault:secret/x\n", "    default: \"\"\n",
  "    trim: ", "false", "    version_stage: AWSPENDING\n", "wait: ", "2s", "{min: 1s, max: 3s}", "{min: 5s, max: 1s}", "-1s",
  "escape: ", "json", "html", "none", "bogus", "command: ", "[a, b]", "\"sh -c 'x'\"", "a 'b", "x && y", "command_timeout: ", "refresh: ", "1h",
  "owner: ", "group: ", "root", "65534", "onrender: ", "&x ", "*x", "- ", ": ", "  ", "\"", "'", "#", "---", "...", "{", "}", "[", "]", "!!binary ", "? ",
);
const fileText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.tuple(fc.array(fmPiece, { maxLength: 25 }), fc.array(bodyPiece, { maxLength: 40 })).map(([f, b]) => `---\n${f.join("")}\n---\n${b.join("")}`),
  fc.tuple(fc.array(fmPiece, { maxLength: 12 }), fc.array(bodyPiece, { maxLength: 60 })).map(([f, b]) => `---\ndest: out\nsecrets:\n  a: env:A\n  b: env:B\n${f.join("")}\n---\n${b.join("")}`),
  fc.tuple(anyText, anyText).map(([f, b]) => `---\ndest: out\n${f}\n---\n${b}`),
);

/** A realistic resolved value: whatever extractValue makes of a fetched secret. */
function resolved(value) {
  try {
    return extractValue(parseRef("env:X"), { value });
  } catch {
    return { kind: "text", text: "v" };
  }
}

// ---------- properties ----------
const groups = {
  refs: [
    // Any text: a reference or a RefSyntaxError.
    prop([anyText], (t) => {
      const r = clean(() => parseRef(t), [RefSyntaxError], "parseRef");
      if (r.ok && !/^[a-z][a-z0-9_-]*$/.test(r.value.ref.backend)) throw new Error(`bad backend name accepted: ${r.value.ref.backend}`);
    }),
    // Well-formed references round-trip.
    prop([backendName, fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes("#") && s.trim() === s && s !== ""), fc.option(fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim() === s))], (b, id, field) => {
      const text = `${b}:${id}${field ? "#" + field : ""}`;
      const r = clean(() => parseRef(text), [RefSyntaxError], "parseRef");
      if (!r.ok) return; // e.g. a field that is a bad JSON pointer
      if (r.value.ref.backend !== b || r.value.ref.id !== id) throw new Error(`round trip: ${text}`);
      if (field && !field.startsWith("/") && r.value.field?.key !== field) throw new Error(`field lost: ${text}`);
    }),
    // Any fetched value with any field: a value or a SecretNotFoundError that does not quote it.
    prop([secretValue, fc.option(fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.array(fc.string({ maxLength: 6 }), { maxLength: 4 }).map((a) => "/" + a.join("/"))))], (value, field) => {
      const spec = clean(() => parseRef(`env:X${field ? "#" + field : ""}`), [RefSyntaxError], "parseRef");
      if (!spec.ok) return;
      const r = clean(() => extractValue(spec.value, { value }), [SecretNotFoundError], "extractValue");
      const v = value.trim();
      if (!r.ok && v.length >= 12 && v !== "intentionally-empty" && r.error.message.includes(v)) throw new Error("an error message quotes the secret value");
      if (r.ok && typeof r.value.text !== "string") throw new Error("no text");
    }),
  ],
  durations: [
    prop([fc.oneof(anyText, fc.stringMatching(/^[+-]?(\d{0,4}(\.\d{0,3})?(ns|us|µs|ms|s|m|h|d|x)?){0,4}$/))], (t) => {
      const r = clean(() => parseDuration(t), [DurationError], "parseDuration");
      if (r.ok && !(Number.isFinite(r.value) && r.value >= 0)) throw new Error(`parseDuration gave ${r.value}`);
    }),
    // Sums of valid parts parse to their total.
    prop([fc.array(fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(["ms", 1], ["s", 1000], ["m", 60_000], ["h", 3_600_000])), { minLength: 1, maxLength: 4 })], (parts) => {
      const text = parts.map(([n, [u]]) => `${n}${u}`).join("");
      const want = parts.reduce((a, [n, [, k]]) => a + n * k, 0);
      if (parseDuration(text) !== want) throw new Error(`${text} != ${want}`);
    }),
    // What formatDuration prints parses back to (nearly) the same duration.
    prop([fc.integer({ min: 0, max: 10 * 365 * 24 * 3_600_000 })], (ms) => {
      const back = parseDuration(formatDuration(ms));
      if (Math.abs(back - ms) > (ms < 1000 ? 0.5 : 500)) throw new Error(`${ms} -> ${formatDuration(ms)} -> ${back}`);
    }),
    prop([fc.oneof(fc.double(), fc.integer(), anyText)], (v) => {
      clean(() => toMs(v), [DurationError], "toMs");
    }),
  ],
  modes: [
    prop([fc.oneof(anyText, fc.integer(), fc.double(), fc.constant(null), fc.object({ maxDepth: 1 }), fc.array(fc.integer()))], (v) => {
      const r = clean(() => parseMode(v), [TemplateError], "parseMode");
      if (r.ok && !(Number.isInteger(r.value) && r.value >= 0 && r.value <= 0o7777)) throw new Error(`mode ${r.value}`);
    }),
    prop([fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 3, maxLength: 4 }), fc.constantFrom("", "0o", "0O")], (digits, prefix) => {
      const text = prefix + digits.join("");
      if (digits.length === 4 && digits[0] !== 0) {
        // setuid, setgid and sticky bits are refused, with a TemplateError naming the field.
        const r = clean(() => parseMode(text), [TemplateError], "parseMode");
        if (r.ok) throw new Error(`special bits accepted: ${text}`);
        return;
      }
      if (parseMode(text) !== parseInt(digits.join(""), 8)) throw new Error(text);
      const tpl = parseTemplate(`---\ndest: out\nmode: ${text}\n---\n`, { file: "/t/x.tpl", cwd: "/t" });
      if (tpl.mode !== parseInt(digits.join(""), 8)) throw new Error(`front matter mode ${text} read as ${tpl.mode.toString(8)}`);
    }),
  ],
  templates: [
    // Any file: a Template, or a TemplateError located inside the file; a Template always renders.
    prop([fileText, fc.array(secretValue, { minLength: 4, maxLength: 4 })], (text, vals) => {
      const r = clean(() => parseTemplate(text, { file: "/t/x.tpl", cwd: "/t" }), [TemplateError], "parseTemplate");
      if (!r.ok) {
        const e = r.error;
        const lines = text.split("\n").length;
        if (e.line !== undefined && (e.line < 1 || e.line > lines + 1)) throw new Error(`error line ${e.line} outside the file (${lines} lines)`);
        if (e.file !== "/t/x.tpl") throw new Error(`error names file ${e.file}`);
        return;
      }
      const t = r.value;
      const values = new Map([...t.used].map((n, i) => [n, resolved(vals[i % vals.length])]));
      const out = clean(() => renderTemplate(t, values), [], "renderTemplate");
      if (typeof out.value !== "string") throw new Error("render gave no string");
    }),
    // A value is data, never template syntax: {{a}} renders it exactly (escape none and json).
    prop([fc.oneof(anyText, fc.constantFrom("{{b}}", "{{=<% %>=}}<%b%>", "{{#b}}x{{/b}}", "{{> p}}", "}}{{"))], (v) => {
      const value = v.trim();
      if (value === "" || value === "intentionally-empty") return;
      const t = parseTemplate("---\ndest: out\nsecrets:\n  a: env:A\n  b: env:B\n---\n{{a}}", { file: "/t/x.tpl", cwd: "/t" });
      const vals = new Map([["a", { kind: "text", text: value }], ["b", { kind: "text", text: "INJECTED" }]]);
      if (renderTemplate(t, vals) !== value) throw new Error("the value was not rendered verbatim");
      const j = parseTemplate("---\ndest: out\nescape: json\nsecrets:\n  a: env:A\n---\n\"{{a}}\"", { file: "/t/x.tpl", cwd: "/t" });
      if (JSON.parse(renderTemplate(j, vals)) !== value) throw new Error("escape: json does not round-trip");
    }),
    // Errors never quote a default value (which may be a secret).
    prop([fc.string({ minLength: 12, maxLength: 30 }).filter((s) => /^[A-Za-z0-9]+$/.test(s)), fc.array(fmPiece, { maxLength: 8 }), fc.array(bodyPiece, { maxLength: 10 })], (secret, fm, body) => {
      const text = `---\ndest: out\nsecrets:\n  a:\n    ref: env:A\n    default: ${secret}\n${fm.join("")}\n---\n${body.join("")}`;
      const r = clean(() => parseTemplate(text, { file: "/t/x.tpl", cwd: "/t" }), [TemplateError], "parseTemplate");
      if (!r.ok && r.error.message.includes(secret)) throw new Error("an error quotes a default value");
    }),
  ],
  commands: [
    prop([anyText], (t) => {
      const r = clean(() => splitCommand(t), [Error], "splitCommand");
      if (r.ok && !(Array.isArray(r.value) && r.value.length > 0 && r.value.every((w) => typeof w === "string"))) throw new Error("bad argv");
    }),
    // Single-quoted words always come back exactly.
    prop([fc.array(fc.string({ maxLength: 12 }).filter((s) => !s.includes("'")), { minLength: 1, maxLength: 6 })], (argv) => {
      const got = splitCommand(argv.map((a) => `'${a}'`).join(" "));
      if (JSON.stringify(got) !== JSON.stringify(argv)) throw new Error(`${JSON.stringify(argv)} -> ${JSON.stringify(got)}`);
    }),
  ],
  globs: [
    // A pattern compiles or is refused with a clear error; matching any name terminates.
    prop([fc.oneof(anyText, fc.array(fc.constantFrom("*", "?", "[", "]", "!", "{", "}", ",", "a", "-", ".", "tpl", "\\", "(", "|", "+", "^", "$"), { maxLength: 30 }).map((a) => a.join(""))), fc.array(fc.string({ maxLength: 60 }), { maxLength: 5 })], (glob, names) => {
      const r = clean(() => globToRegExp(glob), [Error], "globToRegExp");
      if (!r.ok) return;
      for (const n of [...names, "a".repeat(40) + "!", "x.tpl"]) r.value.test(n);
      if (glob === "*.tpl" && !r.value.test("x.tpl")) throw new Error("*.tpl");
    }),
  ],
  config: (() => {
    const dir = mkdtempSync(join(tmpdir(), "emissary-fuzz-config-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    const cfgPiece = fc.constantFrom(
      "templates: /etc/t\n", "pattern: \"*.tpl\"\n", "pattern: \"*.{tpl\"\n", "log: { level: info, format: json }\n", "log: { level: loud }\n",
      "status: { listen: 127.0.0.1:9750 }\n", "status: { listen: nowhere }\n", "defaults: { mode: \"0600\", command_timeout: 30s, retry: 10s }\n",
      "defaults: { mode: 0999 }\n", "defaults: { retry: -1s }\n", "backends:\n", "  awssm: { region: eu-west-1 }\n", "  vault: { address: x }\n",
      "  http: null\n", "modules: [./m.js]\n", "modules: 3\n", "startup_delay: 1m30s\n", "timeout: banana\n", "unknown_key: 1\n", "- a\n", ": x\n", "&a x\n", "*a\n", "? \n", "\t", "{", "}",
    );
    let n = 0;
    return [
      prop([fc.oneof(fc.array(cfgPiece, { maxLength: 10 }).map((a) => a.join("")), anyText), fc.record({ EMISSARY_STARTUP_DELAY: fc.option(anyText, { nil: undefined }), EMISSARY_TPL_PATTERN: fc.option(anyText, { nil: undefined }), EMISSARY_LOG_LEVEL: fc.option(anyText, { nil: undefined }), EMISSARY_STATUS_ADDR: fc.option(anyText, { nil: undefined }) })], (yaml, env) => {
        const file = join(dir, `c${n++ % 8}.yaml`);
        writeFileSync(file, yaml);
        clean(() => resolveConfig({ config: file }, env, dir), [ConfigError], "resolveConfig");
      }),
    ];
  })(),
};

// The watchdog's own check: an input that never returns.
groups.__hang = [
  prop([fc.constant("hang-probe")], () => {
    for (;;);
  }),
];

const props = groups[group];
if (!props) throw new Error(`unknown group ${group}`);
let runs = 0;
for (const p of props) {
  const details = fc.check(p, { seed, numRuns, includeErrorInReport: true });
  runs += details.numRuns;
  if (details.failed) {
    parentPort.postMessage({ ok: false, report: fc.defaultReportMessage(details) ?? "failed" });
    process.exit(0);
  }
}
parentPort.postMessage({ ok: true, runs });
