import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { TemplateError } from "../../../src/api/errors.js";
import { GO_SYNTAX, parseMode, parseTemplate, type Template } from "../../../src/templates/parse.js";
import { renderTemplate } from "../../../src/templates/render.js";
import type { ResolvedValue } from "../../../src/api/refs.js";
import { canary } from "../../helpers/canary.js";

const FILE = "/etc/emissary/app.tpl";
const CWD = "/srv/work";

function parse(source: string, defaults?: { mode?: number; commandTimeoutMs?: number }): Template {
  return parseTemplate(source, { file: FILE, cwd: CWD, ...(defaults ? { defaults } : {}) });
}

/** `---` + front matter lines + `---` + body. Front matter line 1 is file line 2. */
function tpl(frontMatter: string, body = ""): string {
  return `---\n${frontMatter}\n---\n${body}`;
}

interface Want {
  line: number;
  column: number;
  field: string;
  reason: RegExp;
}

function errorOf(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error("expected a TemplateError, but parsing succeeded");
}

/** Asserts a TemplateError naming file, line, column and field, in the message and as properties. */
function expectError(source: string, want: Want): TemplateError {
  const err = errorOf(() => parse(source));
  expect({ file: err.file, line: err.line, column: err.column, field: err.field }).toEqual({
    file: FILE,
    line: want.line,
    column: want.column,
    field: want.field,
  });
  expect(err.message.startsWith(`${FILE}:${want.line}:${want.column}: ${want.field}: `)).toBe(true);
  expect(err.reason).toMatch(want.reason);
  return err;
}

const text = (t: string): ResolvedValue => ({ kind: "text", text: t });

describe("parseTemplate: the original emissary's templates", () => {
  it("parses the ResinStack gossip template verbatim and renders it", () => {
    const source = `---
dest: /run/config/consul/gossip.hcl
mode: 0644
onrender: /usr/local/bin/restart-consul
---
encrypt = "{{poll "insecure" "consul_key"}}"
`;
    const t = parse(source);
    expect(t.dest).toBe("/run/config/consul/gossip.hcl");
    expect(t.mode).toBe(0o644);
    expect(t.command).toEqual(["/usr/local/bin/restart-consul"]);
    expect(t.commandText).toBe("/usr/local/bin/restart-consul");
    expect(t.commandTimeoutMs).toBe(30_000);
    expect(t.escape).toBe("none");
    expect([...t.secrets.keys()]).toEqual(["__poll_1"]);
    const spec = t.secrets.get("__poll_1")!;
    expect(spec.ref).toEqual({ backend: "insecure", id: "consul_key", options: {} });
    expect(spec.text).toBe("insecure:consul_key");
    expect(spec.trim).toBe(true);
    expect([...t.used]).toEqual(["__poll_1"]);
    const value = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    expect(renderTemplate(t, new Map([["__poll_1", text(value)]]))).toBe(`encrypt = "${value}"\n`);
  });

  it("accepts single quotes, backticks and any whitespace inside a poll", () => {
    const t = parse(tpl("dest: out", `a={{ poll 'awssm'  'prod/a' }}\nb={{poll\n\t\`awssm\`\n\`prod/b\`\n}}\nc={{poll "http" "x/y"}}`));
    expect([...t.secrets.values()].map((s) => s.text)).toEqual(["awssm:prod/a", "awssm:prod/b", "http:x/y"]);
    const out = renderTemplate(t, new Map([["__poll_1", text("A")], ["__poll_2", text("B")], ["__poll_3", text("C")]]));
    expect(out).toBe("a=A\nb=B\nc=C");
  });

  // Checked against the original Go emissary (text/template): `{{- ` drops the white space before
  // the action, ` -}}` the white space after it, and the ID is passed through untouched.
  it("honours Go's trim markers around a poll, as text/template does", () => {
    const t = parse(tpl("dest: out", 'a:[ \t\n {{- poll "insecure" "k" -}} \r\n ]\nb:[ {{- poll "insecure" "k"}} ]\nc:[ {{poll "insecure" "k" -}}\n ]\nd:[{{- poll "insecure" "k" -}}{{- poll "insecure" "k" -}}]'));
    expect([...t.secrets.keys()]).toEqual(["__poll_1"]);
    expect(renderTemplate(t, new Map([["__poll_1", text("V")]]))).toBe("a:[V]\nb:[V ]\nc:[ V]\nd:[VV]");
  });

  it("keeps a dash that is not a trim marker a Go-syntax error ({{-poll}}, {{ - poll }})", () => {
    expectError(tpl("dest: out", '{{ - poll "insecure" "k" }}'), { line: 4, column: 1, field: "body", reason: /Go-template syntax/ });
    expectError(tpl("dest: out", '{{-poll "insecure" "k"}}'), { line: 4, column: 1, field: "body", reason: /Go-template syntax/ });
  });

  it("takes a poll's ID literally: a # is part of the ID (the original sent it in the path)", () => {
    const t = parse(tpl("dest: out", '{{poll "insecure" "a#b"}} {{poll "awssm" "db#/x"}}'));
    expect([...t.secrets.values()].map((s) => [s.ref.backend, s.ref.id, s.field])).toEqual([
      ["insecure", "a#b", undefined],
      ["awssm", "db#/x", undefined],
    ]);
  });

  it("declares one name for identical polls and unescapes Go strings", () => {
    const t = parse(tpl("dest: out", `{{poll "awssm" "db"}} {{poll "awssm" "db"}} {{poll 'awssm' "db"}} {{poll "awssm" "q\\"uote"}}`));
    expect([...t.secrets.entries()].map(([k, s]) => `${k}=${s.ref.id}`)).toEqual(["__poll_1=db", '__poll_2=q"uote']);
    expect(renderTemplate(t, new Map([["__poll_1", text("x")], ["__poll_2", text("y")]]))).toBe("x x x y");
  });

  it("does not let a synthesized name collide with a declared one", () => {
    const t = parse(tpl("dest: out\nsecrets:\n  __poll_1: env:MINE", `{{__poll_1}} {{poll "env" "OTHER"}}`));
    expect(t.secrets.get("__poll_1")!.text).toBe("env:MINE");
    expect(t.secrets.get("__poll_2")!.text).toBe("env:OTHER");
    expect(renderTemplate(t, new Map([["__poll_1", text("m")], ["__poll_2", text("o")]]))).toBe("m o");
  });

  it("mixes polls with declared names, declared ones first in secrets", () => {
    const t = parse(tpl("dest: out\nsecrets:\n  token: vault:secret/nomad#token", `{{poll "insecure" "k"}}/{{token}}`));
    expect([...t.secrets.keys()]).toEqual(["token", "__poll_1"]);
  });

  it("keeps a secret named poll usable as {{poll}}", () => {
    const t = parse(tpl("dest: out\nsecrets:\n  poll: env:POLL", "{{poll}}"));
    expect(renderTemplate(t, new Map([["poll", text("v")]]))).toBe("v");
  });
});

describe("parseTemplate: front matter", () => {
  it("reads every key", () => {
    const t = parse(
      tpl(
        [
          "dest: /run/config/nomad/secret.hcl",
          "mode: 0400",
          "owner: nomad",
          "group: 1000",
          'command: /bin/sh -c "kill -HUP 1"',
          "command_timeout: 1m30s",
          "wait: {min: 2s, max: 10s}",
          "escape: json",
          "refresh: 1h",
          "secrets:",
          "  token: vault:secret/nomad#token",
          "  gossip: awssm:prod/consul#gossip_key",
          "  deep: awssm:prod/x#/a/b~1c",
          "  tls:",
          "    ref: awssm:prod/consul/tls",
          "    version_stage: AWSPENDING",
          "    version: 3",
          "    binary: true",
          '    default: ""',
          "    trim: false",
        ].join("\n"),
        "{{token}}{{gossip}}{{tls.ca}}{{deep}}",
      ),
    );
    expect(t.file).toBe(FILE);
    expect(t.dir).toBe("/etc/emissary");
    expect(t.dest).toBe("/run/config/nomad/secret.hcl");
    expect(t.mode).toBe(0o400);
    expect(t.owner).toBe("nomad");
    expect(t.group).toBe(1000);
    expect(t.command).toEqual(["/bin/sh", "-c", "kill -HUP 1"]);
    expect(t.commandText).toBe('/bin/sh -c "kill -HUP 1"');
    expect(t.commandTimeoutMs).toBe(90_000);
    expect(t.wait).toEqual({ minMs: 2000, maxMs: 10_000 });
    expect(t.escape).toBe("json");
    expect(t.refreshMs).toBe(3_600_000);
    const token = t.secrets.get("token")!;
    expect(token.ref).toEqual({ backend: "vault", id: "secret/nomad", options: {} });
    expect(token.field).toEqual({ kind: "key", key: "token" });
    expect(token.trim).toBe(true);
    expect(token.default).toBeUndefined();
    expect(t.secrets.get("deep")!.field).toEqual({ kind: "pointer", pointer: "/a/b~1c", tokens: ["a", "b/c"] });
    const tls = t.secrets.get("tls")!;
    expect(tls.ref).toEqual({ backend: "awssm", id: "prod/consul/tls", options: { version_stage: "AWSPENDING", version: 3, binary: true } });
    expect(tls.default).toBe("");
    expect(tls.trim).toBe(false);
    expect(tls.text).toBe("awssm:prod/consul/tls");
    expect([...t.used].sort()).toEqual(["deep", "gossip", "tls", "token"]);
  });

  it("applies defaults, and the caller's defaults", () => {
    const t = parse(tpl("dest: out"));
    expect(t.mode).toBe(0o600);
    expect(t.commandTimeoutMs).toBe(30_000);
    expect(t.escape).toBe("none");
    expect(t.command).toBeUndefined();
    expect(t.commandText).toBeUndefined();
    expect(t.wait).toBeUndefined();
    expect(t.refreshMs).toBeUndefined();
    expect(t.owner).toBeUndefined();
    expect(t.group).toBeUndefined();
    expect(t.secrets.size).toBe(0);
    const d = parse(tpl("dest: out"), { mode: 0o640, commandTimeoutMs: 5000 });
    expect(d.mode).toBe(0o640);
    expect(d.commandTimeoutMs).toBe(5000);
    expect(parse(tpl("dest: out\nmode: 0644\ncommand_timeout: 2s"), { mode: 0o640, commandTimeoutMs: 5000 })).toMatchObject({ mode: 0o644, commandTimeoutMs: 2000 });
  });

  it("resolves a relative dest against cwd and a relative file against cwd", () => {
    const t = parseTemplate(tpl("dest: out/app.conf"), { file: "tpl/app.tpl", cwd: "/srv/work" });
    expect(t.dest).toBe("/srv/work/out/app.conf");
    expect(t.file).toBe("/srv/work/tpl/app.tpl");
    expect(t.dir).toBe("/srv/work/tpl");
    expect(parse(tpl("dest: ../up.conf")).dest).toBe("/srv/up.conf");
  });

  it.each([
    ["mode: 0400", 0o400],
    ["mode: 400", 0o400],
    ["mode: 0o400", 0o400],
    ['mode: "0640"', 0o640],
    ["mode: '0640'", 0o640],
    ["mode: 0644 # comment", 0o644],
    ["mode: 0777", 0o777],
    ["mode: 0o0640", 0o640],
    ["mode: 000", 0],
    ["mode: 0755", 0o755],
  ])("reads %s as octal", (line, want) => {
    expect(parse(tpl(`dest: out\n${line}`)).mode).toBe(want);
  });

  it.each([
    ["wait: 2s", { minMs: 2000, maxMs: 8000 }],
    ["wait: 500ms", { minMs: 500, maxMs: 2000 }],
    ["wait: {min: 2s, max: 10s}", { minMs: 2000, maxMs: 10_000 }],
    ["wait:\n  min: 3s", { minMs: 3000, maxMs: 12_000 }],
    ['wait: "2s:10s"', { minMs: 2000, maxMs: 10_000 }],
    ["wait: {min: 2s, max: 2s}", { minMs: 2000, maxMs: 2000 }],
  ])("reads %s", (line, want) => {
    expect(parse(tpl(`dest: out\n${line}`)).wait).toEqual(want);
  });

  it.each([
    ["command: [kill, -HUP, 1]", ["kill", "-HUP", "1"], "kill -HUP 1"],
    ['command: ["/bin/sh", "-c", "echo hi"]', ["/bin/sh", "-c", "echo hi"], '/bin/sh -c "echo hi"'],
    ["command: service restart nomad", ["service", "restart", "nomad"], "service restart nomad"],
    ["onrender: \"a 'b c' d\\\\ e\"", ["a", "b c", "d e"], "a 'b c' d\\ e"],
    ["command:\n  - /usr/bin/true", ["/usr/bin/true"], "/usr/bin/true"],
  ])("reads %s", (line, argv, shown) => {
    const t = parse(tpl(`dest: out\n${line}`));
    expect(t.command).toEqual(argv);
    expect(t.commandText).toBe(shown);
  });

  it("reads owner and group as names or ids", () => {
    expect(parse(tpl('dest: out\nowner: "1000"\ngroup: www-data'))).toMatchObject({ owner: 1000, group: "www-data" });
    expect(parse(tpl("dest: out\nowner: 0\ngroup: 0"))).toMatchObject({ owner: 0, group: 0 });
  });

  it.each(["none", "json", "html"] as const)("reads escape: %s", (mode) => {
    expect(parse(tpl(`dest: out\nescape: ${mode}`)).escape).toBe(mode);
  });

  it("accepts CRLF line endings, a BOM, comments and an empty body", () => {
    const t = parse("\uFEFF---\r\n# a comment\r\ndest: out\r\nsecrets:\r\n  a: env:A\r\n---  \r\nx={{a}}\r\n");
    expect(t.bodySource).toBe("x={{a}}\r\n");
    expect(renderTemplate(t, new Map([["a", text("1")]]))).toBe("x=1\r\n");
    expect(parse("---\ndest: out\n---").bodySource).toBe("");
    expect(parse("---\ndest: out\n---\n").bodySource).toBe("");
  });

  it("allows declared names the body does not use (not waited for)", () => {
    const t = parse(tpl("dest: out\nsecrets:\n  later: env:LATER\n  now: env:NOW", "{{now}}"));
    expect([...t.secrets.keys()]).toEqual(["later", "now"]);
    expect([...t.used]).toEqual(["now"]);
  });

  it("records where each secret is declared, for errors found later", () => {
    const t = parse(tpl("dest: out\nsecrets:\n  token: vault:x\n  tls:\n    ref: awssm:y", 'x\n  {{poll "env" "P"}}{{token}}{{tls}} {{poll "env" "P"}}'));
    expect(Object.fromEntries(t.locations)).toEqual({
      token: { line: 4, column: 3, field: "secrets.token" },
      tls: { line: 5, column: 3, field: "secrets.tls" },
      __poll_1: { line: 9, column: 3, field: "body" },
    });
  });

  it("accepts secrets: with nothing under it", () => {
    expect(parse(tpl("dest: out\nsecrets:")).secrets.size).toBe(0);
  });
});

describe("parseTemplate: bad front matter", () => {
  it("requires front matter", () => {
    expectError("dest: out\n{{x}}\n", { line: 1, column: 1, field: "front matter", reason: /^no front matter \(--- … ---\)/ });
    expectError("", { line: 1, column: 1, field: "front matter", reason: /no front matter/ });
    expectError("  ---\ndest: x\n---\n", { line: 1, column: 1, field: "front matter", reason: /no front matter/ });
  });

  it("requires the closing --- line", () => {
    expectError("---\ndest: out\nbody\n", { line: 1, column: 1, field: "front matter", reason: /not closed/ });
  });

  it("reports YAML syntax errors where they are", () => {
    expectError(tpl("dest: a\ndest: b"), { line: 3, column: 1, field: "front matter", reason: /invalid YAML: Map keys must be unique/ });
    expectError(tpl("dest: out\nmode: [1, 2\nowner: x"), { line: 4, column: 1, field: "front matter", reason: /invalid YAML/ });
    expectError(tpl("dest: out\n  mode: 0600"), { line: 2, column: 7, field: "front matter", reason: /invalid YAML/ });
    expectError(tpl('dest: "out'), { line: 3, column: 1, field: "front matter", reason: /invalid YAML/ });
  });

  it("requires a mapping at the root", () => {
    expectError(tpl("- dest\n- out"), { line: 2, column: 1, field: "front matter", reason: /is not a mapping/ });
    expectError(tpl("just text"), { line: 2, column: 1, field: "front matter", reason: /is not a mapping/ });
    expectError("---\n---\nbody", { line: 2, column: 1, field: "front matter", reason: /is empty/ });
    expectError(tpl("# only a comment"), { line: 2, column: 1, field: "front matter", reason: /is empty/ });
  });

  it("requires dest, a non-empty path to a file other than the template", () => {
    expectError(tpl("mode: 0600"), { line: 2, column: 1, field: "dest", reason: /is required/ });
    expectError(tpl('mode: 0600\ndest: ""'), { line: 3, column: 7, field: "dest", reason: /non-empty/ });
    expectError(tpl("dest:"), { line: 2, column: 6, field: "dest", reason: /non-empty/ });
    expectError(tpl("dest: [a]"), { line: 2, column: 7, field: "dest", reason: /non-empty/ });
    expectError(tpl("dest: 5"), { line: 2, column: 7, field: "dest", reason: /non-empty/ });
    expectError(tpl("dest: /tmp/dir/"), { line: 2, column: 7, field: "dest", reason: /not a directory/ });
    expectError(tpl("dest: ."), { line: 2, column: 7, field: "dest", reason: /not a directory/ });
    expectError(tpl(`dest: ${FILE}`), { line: 2, column: 7, field: "dest", reason: /template file itself/ });
  });

  it("rejects unknown keys, naming them", () => {
    const err = expectError(tpl("dest: out\nmode: 0600\nrefersh: 1h"), { line: 4, column: 1, field: "refersh", reason: /unknown key "refersh"/ });
    expect(err.reason).toContain("refresh");
    expectError(tpl("dest: out\nDest: x"), { line: 3, column: 1, field: "Dest", reason: /unknown key "Dest"/ });
    expectError(tpl("dest: out\n[a]: x"), { line: 3, column: 1, field: "front matter", reason: /keys must be plain names/ });
  });

  it("rejects command together with onrender", () => {
    expectError(tpl("dest: out\ncommand: a\nonrender: b"), { line: 4, column: 1, field: "onrender", reason: /both command and onrender/ });
    expectError(tpl("dest: out\nonrender: a\ncommand: b"), { line: 4, column: 1, field: "command", reason: /both onrender and command/ });
  });

  it.each([
    "9",
    "0800",
    "12345",
    "0x1ff",
    "-1",
    "1.5",
    "77",
    "0o999",
    "0o12345",
    "06444",
    '"0 644"',
    '"rw-r--r--"',
    '""',
    "true",
    "[1]",
    "{a: 1}",
    "0b111",
    "+644",
    "6e2",
    ".inf",
  ])("rejects mode: %s", (raw) => {
    expectError(tpl(`dest: out\nmode: ${raw}`), { line: 3, column: 7, field: "mode", reason: /^must be 3 or 4 octal digits/ });
  });

  it("rejects an empty mode", () => {
    expectError(tpl("dest: out\nmode:"), { line: 3, column: 6, field: "mode", reason: /3 or 4 octal digits/ });
  });

  it.each([
    ["command_timeout: 30", "command_timeout", /missing unit/],
    ["command_timeout: 0s", "command_timeout", /longer than 0/],
    ["command_timeout: soon", "command_timeout", /invalid duration/],
    ["command_timeout: [1s]", "command_timeout", /must be a duration/],
    ["refresh: 1x", "refresh", /invalid duration/],
    ["refresh: -5s", "refresh", /negative/],
    ["refresh: 0", "refresh", /longer than 0/],
    ["refresh:", "refresh", /must be a duration/],
    ["wait: 5", "wait", /missing unit/],
    ["wait: [1s]", "wait", /must be a duration \(2s\) or \{min, max\}/],
    ['wait: "1s:zz"', "wait", /invalid duration/],
    ['wait: "5s:1s"', "wait", /max must not be shorter than min/],
  ])("rejects %s", (line, field, reason) => {
    const column = line.indexOf(":") + 3 - (line.endsWith(":") ? 1 : 0);
    expectError(tpl(`dest: out\n${line}`), { line: 3, column, field, reason });
  });

  it("rejects bad wait mappings", () => {
    expectError(tpl("dest: out\nwait: {min: 2s, max: 1s}"), { line: 3, column: 7, field: "wait", reason: /max must not be shorter/ });
    expectError(tpl("dest: out\nwait: {max: 2s}"), { line: 3, column: 7, field: "wait", reason: /needs min/ });
    expectError(tpl("dest: out\nwait:\n  min: 1s\n  foo: 2s"), { line: 5, column: 8, field: "wait", reason: /unknown key "foo" under wait/ });
    expectError(tpl("dest: out\nwait:\n  min: 1x"), { line: 4, column: 8, field: "wait.min", reason: /invalid duration/ });
  });

  it.each(["xml", "HTML", "true", "[json]", '""'])("rejects escape: %s", (raw) => {
    expectError(tpl(`dest: out\nescape: ${raw}`), { line: 3, column: 9, field: "escape", reason: /must be one of none, json, html/ });
  });

  it.each([
    ['owner: "a b"', "owner"],
    ["owner: -1", "owner"],
    ["owner: 1.5", "owner"],
    ["owner: [root]", "owner"],
    ["group: ''", "group"],
    ["group: a:b", "group"],
    ["group: true", "group"],
  ])("rejects %s", (line, field) => {
    expectError(tpl(`dest: out\n${line}`), { line: 3, column: field.length + 3, field, reason: /must be a name or a numeric id/ });
  });

  it.each([
    ["command: a | b", /shell syntax "\|" is not supported/],
    ["command: \"'unterminated\"", /unclosed single quote/],
    ["command: {a: b}", /must be a string or a list/],
    ['command: [""]', /empty program name/],
  ])("rejects %s", (line, reason) => {
    expectError(tpl(`dest: out\n${line}`), { line: 3, column: line.endsWith(":") ? 9 : 10, field: "command", reason });
  });

  // The original's templates often carry an empty onrender line: the file is written, nothing runs.
  it.each(['onrender: ""', "onrender:", "onrender: ~", "onrender: '   '", 'command: ""', "command:", "command: null", "command: []"])("%s means no command", (line) => {
    const t = parse(tpl(`dest: out\n${line}`, "body\n"));
    expect(t.command).toBeUndefined();
    expect(t.dest).toBe(`${CWD}/out`);
  });

  it("rejects a non-string command item, pointing at it", () => {
    expectError(tpl("dest: out\ncommand: [a, {b: 1}]"), { line: 3, column: 14, field: "command", reason: /item 2 must be a string/ });
    expectError(tpl("dest: out\nonrender:\n  - a\n  -\n"), { line: 5, column: 4, field: "onrender", reason: /item 2 must be a string/ });
  });

  it("rejects YAML aliases", () => {
    expectError(tpl("dest: &d out\nmode: *d"), { line: 3, column: 7, field: "mode", reason: /aliases/ });
  });

  it("rejects secrets that are not a mapping", () => {
    expectError(tpl("dest: out\nsecrets: [a, b]"), { line: 3, column: 10, field: "secrets", reason: /must be a mapping of name: reference/ });
    expectError(tpl("dest: out\nsecrets: env:A"), { line: 3, column: 10, field: "secrets", reason: /must be a mapping/ });
  });

  it.each(["1abc", "-x", "a.b", '"a b"', '"ä"', '""'])("rejects the secret name %s", (name) => {
    expectError(tpl(`dest: out\nsecrets:\n  ${name}: env:A`), { line: 4, column: 3, field: "secrets", reason: /bad secret name/ });
  });

  it.each([
    ["nope", /has no backend/],
    [":x", /has no backend/],
    ["BAD:x", /bad backend name/],
    ['"env:"', /empty ID/],
    ["env:x#", /empty field/],
    ["vault:x#/a~2", /bad escape/],
    ['""', /reference is empty/],
  ])("rejects the reference %s", (ref, reason) => {
    expectError(tpl(`dest: out\nsecrets:\n  a: ${ref}`, "{{a}}"), { line: 4, column: 6, field: "secrets.a", reason });
  });

  it("rejects a secret that is neither a string nor a mapping", () => {
    expectError(tpl("dest: out\nsecrets:\n  a: 5"), { line: 4, column: 6, field: "secrets.a", reason: /must be a reference BACKEND:ID\[#FIELD\] or a mapping with ref:/ });
    expectError(tpl("dest: out\nsecrets:\n  a: [env:A]"), { line: 4, column: 6, field: "secrets.a", reason: /got a list/ });
    expectError(tpl("dest: out\nsecrets:\n  a:"), { line: 4, column: 5, field: "secrets.a", reason: /got nothing/ });
  });

  it("rejects bad long forms", () => {
    expectError(tpl("dest: out\nsecrets:\n  a:\n    default: x"), { line: 5, column: 5, field: "secrets.a", reason: /needs ref:/ });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: nope"), { line: 5, column: 10, field: "secrets.a.ref", reason: /has no backend/ });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: [env:A]"), { line: 5, column: 10, field: "secrets.a.ref", reason: /must be a reference/ });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: env:A\n    trim: yes"), { line: 6, column: 11, field: "secrets.a.trim", reason: /true or false/ });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: env:A\n    default: [x]"), { line: 6, column: 14, field: "secrets.a.default", reason: /must be a string/ });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: env:A\n    default:"), { line: 6, column: 13, field: "secrets.a.default", reason: /must be a string/ });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: env:A\n    version_stage: {x: 1}"), {
      line: 6,
      column: 20,
      field: "secrets.a.version_stage",
      reason: /string, number or boolean/,
    });
    expectError(tpl("dest: out\nsecrets:\n  a:\n    ref: env:A\n    bad key: 1"), { line: 6, column: 5, field: "secrets.a", reason: /bad option name "bad key"/ });
  });

  it("never quotes a default value in an error", () => {
    const secret = canary("default");
    const e1 = errorOf(() => parse(tpl(`dest: out\nsecrets:\n  a:\n    ref: env:A\n    default: [${secret}]`)));
    const e2 = errorOf(() => parse(tpl(`dest: out\nsecrets:\n  a:\n    default: "${secret}"`)));
    const e3 = errorOf(() => parse(tpl(`dest: out\nsecrets:\n  a:\n    ref: env:A\n    default: "${secret}\\q"`)));
    for (const e of [e1, e2, e3]) {
      expect(e.message).not.toContain("CANARY");
      expect(JSON.stringify(e)).not.toContain("CANARY");
    }
  });
});

describe("parseTemplate: bad bodies", () => {
  const fm = "dest: out\nsecrets:\n  a: env:A\n  tls: awssm:tls";
  // Body line 1 is file line 7.
  const body = (b: string, want: Omit<Want, "field">): TemplateError => expectError(tpl(fm, b), { ...want, field: "body" });

  it("rejects undeclared names, with their position", () => {
    body("line one\nkey = {{token}}\n", { line: 8, column: 7, reason: /^unknown name "token" \(declare it under secrets:\)$/ });
    body("{{tls.ca}} {{nope.ca}}", { line: 7, column: 12, reason: /unknown name "nope"/ });
    body("{{#nope}}x{{/nope}}", { line: 7, column: 1, reason: /unknown name "nope"/ });
    body("{{^nope}}x{{/nope}}", { line: 7, column: 1, reason: /unknown name "nope"/ });
    body("{{{nope}}}", { line: 7, column: 1, reason: /unknown name "nope"/ });
    body("{{& nope}}", { line: 7, column: 1, reason: /unknown name "nope"/ });
    body("{{#a}}{{/a}}{{nope}}", { line: 7, column: 13, reason: /unknown name "nope"/ });
    body("{{#a}}{{/a}}{{#nope}}{{/nope}}", { line: 7, column: 13, reason: /unknown name "nope"/ });
  });

  it("locates errors in the original text after a rewritten poll and after multi-byte text", () => {
    body('{{poll "env" "A"}} {{nope}}', { line: 7, column: 20, reason: /unknown name "nope"/ });
    body('ü€{{poll "env" "A"}}\n\t{{poll "env" "B"}}{{nope}}', { line: 8, column: 20, reason: /unknown name "nope"/ });
    expectError("---\r\ndest: out\r\n---\r\nab\r\n  {{x}}\r\n", { line: 5, column: 3, field: "body", reason: /unknown name "x"/ });
  });

  it("rejects {{.}} and empty tags outside sections", () => {
    body("{{.}}", { line: 7, column: 1, reason: /outside a section/ });
    body("x {{}}", { line: 7, column: 3, reason: /empty tag/ });
    body("{{a..b}}", { line: 7, column: 1, reason: /bad name/ });
  });

  it("rejects unclosed and mismatched sections", () => {
    body("start\n{{#a}}\nmiddle\n", { line: 8, column: 1, reason: /^unclosed section "a"/ });
    body("{{#a}}{{#tls}}{{/a}}{{/tls}}", { line: 7, column: 15, reason: /unclosed section "tls"/ });
    body("x\n  {{/a}}", { line: 8, column: 3, reason: /never opened/ });
    body("{{^a}}", { line: 7, column: 1, reason: /unclosed section "a"/ });
  });

  it("rejects unclosed tags at the tag", () => {
    body("ok {{a}}\nkey = {{a", { line: 8, column: 7, reason: /unclosed tag/ });
    body("{{{a}}", { line: 7, column: 1, reason: /unclosed tag/ });
    body("{{=<% %>=}}\n<% a", { line: 8, column: 1, reason: /unclosed tag/ });
    body("{{= x =}", { line: 7, column: 1, reason: /unclosed tag/ });
  });

  it("rejects partials", () => {
    body("x\n{{> other}}", { line: 8, column: 1, reason: /partials are not supported/ });
  });

  it("rejects bad delimiters", () => {
    body("{{=<%=}}", { line: 7, column: 1, reason: /bad delimiters/ });
  });

  it.each([
    "{{ .Foo }}",
    "{{.Foo}}",
    "{{if .X}}",
    "{{if a}}",
    "{{ range .Items }}",
    "{{ range $i, $v := .L }}",
    "{{end}}",
    "{{ else }}",
    '{{template "x" .}}',
    '{{define "x"}}',
    "{{- .X -}}",
    "{{- a }}",
    "{{ a -}}",
    "{{ a | b }}",
    '{{printf "%s" a}}',
    "{{ $x := 1 }}",
    "{{ $x }}",
    "{{/* comment */}}",
    '{{ index .M "k" }}',
    '{{ with secret "x" }}',
    '{{ key "x" }}',
    "{{ (a) }}",
    '{{ env "HOME" }}',
  ])("rejects Go-template syntax %s", (go) => {
    const err = body(`ok {{a}}\n  ${go} tail`, { line: 8, column: 3, reason: /Go-template syntax is not supported/ });
    expect(err.reason.startsWith(GO_SYNTAX)).toBe(true);
    expect(GO_SYNTAX).toBe('Go-template syntax is not supported (only {{poll "BACKEND" "ID"}})');
  });

  it.each([
    ['{{poll "a"}}', /bad poll .*expected \{\{poll "BACKEND" "ID"\}\}/],
    ['{{poll "a" "b" "c"}}', /bad poll/],
    ["{{poll a b}}", /bad poll/],
    ['{{poll .X "y"}}', /bad poll/],
    ["{{poll}}", /bad poll/],
    ['{{poll "BAD" "x"}}', /bad poll: .*bad backend name "BAD"/],
    ['{{poll "" "x"}}', /bad poll: /],
    ['{{poll "env" ""}}', /bad poll: .*empty ID/],
    ['{{poll "env" "\\q"}}', /bad string/],
  ])("rejects the malformed poll %s", (poll, reason) => {
    body(`x ${poll}`, { line: 7, column: 3, reason });
  });
});

describe("parseTemplate: bodies that are fine", () => {
  const fm = "dest: out\nsecrets:\n  a: env:A\n  tls: awssm:tls";

  it("does not check names inside sections (they may be fields)", () => {
    const t = parse(tpl(fm, "{{#tls}}{{ca}} {{.}} {{x.y}} {{#list}}{{.}}{{/list}}{{/tls}}{{^tls}}{{anything}}{{/tls}}"));
    expect([...t.used]).toEqual(["tls"]);
  });

  it("counts declared names used inside sections as used", () => {
    expect([...parse(tpl(fm, "{{#tls}}{{a}}{{/tls}}")).used].sort()).toEqual(["a", "tls"]);
  });

  it("allows mustache comments and set-delimiter tags (for files that contain braces)", () => {
    const t = parse(tpl(fm, "{{! a comment with {{ braces }}{{=<% %>=}}tpl = \"{{ .Go }}\" <% a %>\n<%={{ }}=%>{{a}}"));
    expect(renderTemplate(t, new Map([["a", text("A")]]))).toBe('tpl = "{{ .Go }}" A\nA');
  });

  it("leaves text that only looks like a tag alone", () => {
    const t = parse(tpl(fm, "a } b { c }} d"));
    expect(renderTemplate(t, new Map())).toBe("a } b { c }} d");
  });

  it("parses and renders a 10,000-line body, locating an error on its last line", () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i} {{a}} {{tls.ca}}${i % 100 === 0 ? ' {{poll "env" "B"}}' : ""}`);
    const t = parse(tpl(fm, lines.join("\n") + "\n"));
    const out = renderTemplate(t, new Map<string, ResolvedValue>([["a", text("A")], ["tls", { kind: "object", text: '{"ca":"C"}', data: { ca: "C" } }], ["__poll_1", text("P")]]));
    const outLines = out.split("\n");
    expect(outLines).toHaveLength(10_001);
    expect(outLines[0]).toBe("line 0 A C P");
    expect(outLines[9_999]).toBe("line 9999 A C");
    expectError(tpl(fm, lines.join("\n") + "\n  {{missing}}"), { line: 10_007, column: 3, field: "body", reason: /unknown name "missing"/ });
  });
});

describe("parseMode", () => {
  it("reads source text as octal, and numbers by their digits when there is no source", () => {
    expect(parseMode(644, "0644")).toBe(0o644);
    expect(parseMode(420, "0644")).toBe(0o644);
    expect(parseMode(400)).toBe(0o400);
    expect(parseMode("0640")).toBe(0o640);
    expect(parseMode("0o640")).toBe(0o640);
    expect(parseMode(" 600 ")).toBe(0o600);
  });

  it.each([[9], [800], ["0800"], [12345], ["0x1ff"], [-1], [1.5], [null], [undefined], [true], [{}], [NaN]])("rejects %s", (raw) => {
    const err = errorOf(() => parseMode(raw));
    expect(err.field).toBe("mode");
    expect(err.message).toMatch(/^mode: must be 3 or 4 octal digits/);
  });
});

describe("parseTemplate: properties", () => {
  /** Every error must be a located TemplateError pointing inside the file. */
  function checkOutcome(source: string): void {
    let t: Template | undefined;
    try {
      t = parse(source);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      expect(err.file).toBe(FILE);
      const lines = source.split("\n");
      expect(err.line).toBeGreaterThanOrEqual(1);
      expect(err.line).toBeLessThanOrEqual(lines.length);
      expect(err.column).toBeGreaterThanOrEqual(1);
      expect(err.column).toBeLessThanOrEqual(lines[err.line! - 1]!.length + 1);
      expect(typeof err.field).toBe("string");
      return;
    }
    // Cross-check our tag scan against mustache.js's own tokens: every top-level name is declared.
    const walk = (tokens: unknown[], depth: number): void => {
      for (const tok of tokens as unknown[][]) {
        const [type, value] = tok as [string, string];
        if (depth === 0 && ["name", "&", "#", "^"].includes(type)) expect(t!.secrets.has(value.split(".")[0]!)).toBe(true);
        expect(type).not.toBe(">");
        if (type === "#" || type === "^") walk(tok[4] as unknown[], depth + 1);
      }
    };
    walk(t.tokens, 0);
    // A template that parses always renders once its used names have values.
    const values = new Map<string, ResolvedValue>([...t.used].map((n) => [n, text("v")]));
    expect(typeof renderTemplate(t, values)).toBe("string");
  }

  const bodyPiece = fc.constantFrom(
    "{{", "}}", "{{{", "}}}", "#", "^", "/", ">", "&", "=", "!", "{", "}", ".", "|", "-", " ", "\n", "\r\n", "\t",
    "a", "tls", "tls.ca", "poll", '"env"', "'x'", "`y`", '"', "<%", "%>", "{{=<% %>=}}", "{{#a}}", "{{/a}}", "{{a}}",
    '{{poll "env" "X"}}', "if", "end", "$", "(", "ü", "\u2028",
  );
  const fmPiece = fc.constantFrom(
    "dest: out\n", "mode: 0644\n", "mode: ", "0800", "secrets:\n", "  a: env:A\n", "  tls:\n", "    ref: awssm:x\n", "    trim: ", "true",
    "wait: ", "{min: 1s}", "2s", "escape: json\n", "command: ", "[a, b]", "a 'b", "&x ", "*x", "- ", ": ", "\n", "  ", "\"", "'", "#", "---",
  );

  it("arbitrary whole files never throw anything but a located TemplateError", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => checkOutcome(s)), { numRuns: 500 });
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => checkOutcome(s)), { numRuns: 300 });
  });

  it("arbitrary front matter and bodies never throw anything but a located TemplateError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), fc.string({ maxLength: 200 }), (f, b) => checkOutcome(`---\n${f}\n---\n${b}`)),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fmPiece, { maxLength: 20 }), fc.array(bodyPiece, { maxLength: 40 }), (f, b) =>
        checkOutcome(`---\ndest: out\nsecrets:\n  a: env:A\n  tls: env:T\n${f.join("")}\n---\n${b.join("")}`),
      ),
      { numRuns: 1500 },
    );
  });

  it("Go-template actions are always rejected with the Go-syntax message", () => {
    const goAction = fc.tuple(
      fc.constantFrom("if", "range", "with", "template", "define", "block", "printf", "index", "len", "and", "or", "not", "eq", "secret", "key"),
      fc.array(fc.constantFrom(".X", "$v", '"s"', "1", ".A.B", "(x)", "|", "a"), { minLength: 1, maxLength: 4 }),
      fc.constantFrom("", "- "),
    );
    fc.assert(
      fc.property(goAction, ([word, args, trim]) => {
        const src = tpl("dest: out\nsecrets:\n  a: env:A", `{{a}}{{${trim}${word} ${args.join(" ")}}}`);
        const err = errorOf(() => parse(src));
        expect(err.reason.startsWith(GO_SYNTAX)).toBe(true);
        expect([err.line, err.column]).toEqual([6, 6]);
      }),
      { numRuns: 300 },
    );
  });
});

describe("splay and min_interval", () => {
  it("parse as durations, 0s turning them off; default from defaults, else 0", () => {
    const t = parse(tpl("dest: out\ncommand: reload\nsplay: 30s\nmin_interval: 1m"));
    expect({ splayMs: t.splayMs, minIntervalMs: t.minIntervalMs }).toEqual({ splayMs: 30_000, minIntervalMs: 60_000 });
    const d = parseTemplate(tpl("dest: out\ncommand: reload"), { file: FILE, cwd: CWD, defaults: { splayMs: 5000, minIntervalMs: 7000 } });
    expect({ splayMs: d.splayMs, minIntervalMs: d.minIntervalMs }).toEqual({ splayMs: 5000, minIntervalMs: 7000 });
    const off = parseTemplate(tpl("dest: out\nsplay: 0s\nmin_interval: 0s"), { file: FILE, cwd: CWD, defaults: { splayMs: 5000, minIntervalMs: 7000 } });
    expect({ splayMs: off.splayMs, minIntervalMs: off.minIntervalMs }).toEqual({ splayMs: 0, minIntervalMs: 0 });
    expect(parse(tpl("dest: out")).splayMs).toBe(0);
  });
  it("a bad duration is located", () => {
    expectError(tpl("dest: out\nsplay: soon"), { line: 3, column: 8, field: "splay", reason: /duration/ });
    expectError(tpl("dest: out\nmin_interval: 10"), { line: 3, column: 15, field: "min_interval", reason: /unit|duration/ });
  });
});
