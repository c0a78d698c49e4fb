/**
 * Helpers for the packaging tests: a Dockerfile reader, a checker for LinuxKit image configs
 * (yml entries and the org.mobyproject.config label) and for Compose files, written from the
 * fields LinuxKit's docs/yaml.md + moby/config.go and the Compose specification document.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

/** Repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** True when a required external tool is missing and the run is CI (where that must fail). */
export const IN_CI = process.env.CI === "true";

// ---------------------------------------------------------------------------------------------
// Dockerfile

/** One Dockerfile instruction, continuation lines joined. */
export interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** A build stage: its FROM and the instructions after it. */
export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: Instruction[];
}

/** Parses a Dockerfile into global ARGs and stages. Comments and parser directives are dropped. */
export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  const lines = text.split("\n");
  let buf = "";
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (buf === "" && (trimmed === "" || trimmed.startsWith("#"))) continue;
    if (buf !== "" && trimmed.startsWith("#")) continue; // comment inside a continuation
    if (buf === "") start = i + 1;
    if (trimmed.endsWith("\\")) {
      buf += trimmed.slice(0, -1) + " ";
      continue;
    }
    buf += trimmed;
    const m = /^(\S+)\s*(.*)$/s.exec(buf)!;
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buf = "";
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: cannot read FROM ${ins.args}`);
      const from = m[1]!.replace(/\$\{?(\w+)\}?/g, (_, n: string) => args.get(n) ?? "");
      stages.push({ from, ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before the first FROM`);
      const [k, v] = ins.args.split("=", 2);
      args.set(k!.trim(), (v ?? "").trim());
    } else stages.at(-1)!.instructions.push(ins);
  }
  return { args, stages };
}

/**
 * Splits words the way Dockerfile LABEL/ENV values are read: single quotes literal, double
 * quotes with backslash escapes, unquoted words ending at whitespace.
 */
export function dockerWords(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end === -1) throw new Error(`unterminated ' in: ${s.slice(0, 80)}`);
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === "\\" && i + 1 < s.length) i++;
        cur += s[i];
        i++;
      }
      if (i >= s.length) throw new Error(`unterminated " in: ${s.slice(0, 80)}`);
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** `key=value` pairs of LABEL or ENV instructions of a stage. */
export function keyValues(stage: Stage, keyword: "LABEL" | "ENV"): Map<string, string> {
  const out = new Map<string, string>();
  for (const ins of stage.instructions.filter((i) => i.keyword === keyword)) {
    for (const w of dockerWords(ins.args)) {
      const eq = w.indexOf("=");
      if (eq <= 0) throw new Error(`${keyword} line ${ins.line}: expected key=value, got ${w.slice(0, 40)}`);
      out.set(w.slice(0, eq), w.slice(eq + 1));
    }
  }
  return out;
}

/** The JSON array of an exec-form instruction (ENTRYPOINT, CMD). */
export function execForm(stage: Stage, keyword: "ENTRYPOINT" | "CMD"): string[] {
  const ins = stage.instructions.filter((i) => i.keyword === keyword).at(-1);
  if (!ins) throw new Error(`no ${keyword}`);
  const v = JSON.parse(ins.args) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new Error(`${keyword} is not exec form (a JSON array of strings)`);
  return v as string[];
}

/** Whether a path in the build context survives .dockerignore (last matching rule wins). */
export function dockerIgnored(rules: readonly string[], path: string): boolean {
  const toRe = (p: string): RegExp =>
    new RegExp(
      "^" +
        p
          .replace(/\/$/, "")
          .replace(/[.+^${}()|[\]\\]/g, "\\$&")
          .replace(/\*\*\//g, "\u0000")
          .replace(/\*/g, "[^/]*")
          .replace(/\?/g, "[^/]")
          .replace(/\u0000/g, "(?:.*/)?") +
        "(?:/.*)?$",
    );
  let ignored = false;
  for (const rule of rules) {
    const negate = rule.startsWith("!");
    const p = negate ? rule.slice(1) : rule;
    if (toRe(p).test(path)) ignored = !negate;
  }
  return ignored;
}

/** Reads .dockerignore rules (comments and blanks dropped). */
export function dockerignoreRules(file = join(ROOT, ".dockerignore")): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

// ---------------------------------------------------------------------------------------------
// LinuxKit

/** Linux capability names LinuxKit accepts (it checks against the kernel's known list). */
export const LINUX_CAPABILITIES = new Set(
  [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
  ].map((c) => `CAP_${c}`),
);

type Kind = "string" | "strings" | "bool" | "int" | "idish" | "object" | "mapstring" | "array";

/** The fields of a LinuxKit image config (ImageConfig in moby/config.go) and their JSON types. */
const IMAGE_CONFIG_FIELDS: Readonly<Record<string, Kind>> = {
  capabilities: "strings",
  "capabilities.add": "strings",
  ambient: "strings",
  mounts: "array",
  binds: "strings",
  "binds.add": "strings",
  devices: "array",
  tmpfs: "strings",
  command: "strings",
  env: "strings",
  cwd: "string",
  net: "string",
  pid: "string",
  ipc: "string",
  uts: "string",
  userns: "string",
  hostname: "string",
  readonly: "bool",
  maskedPaths: "strings",
  readonlyPaths: "strings",
  uid: "idish",
  gid: "idish",
  additionalGids: "array",
  noNewPrivileges: "bool",
  oomScoreAdj: "int",
  rootfsPropagation: "string",
  cgroupsPath: "string",
  resources: "object",
  sysctl: "mapstring",
  rlimits: "strings",
  uidMappings: "array",
  gidMappings: "array",
  annotations: "mapstring",
  runtime: "object",
};
const RUNTIME_FIELDS: Readonly<Record<string, Kind>> = {
  cgroups: "strings",
  mounts: "array",
  mkdir: "strings",
  interfaces: "array",
  bindNS: "object",
  namespace: "string",
  noRestart: "bool",
};

function typeOk(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case "string":
      return typeof v === "string";
    case "strings":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
    case "bool":
      return typeof v === "boolean";
    case "int":
      return Number.isInteger(v);
    case "idish":
      return typeof v === "string" || Number.isInteger(v);
    case "object":
      return v !== null && typeof v === "object" && !Array.isArray(v);
    case "mapstring":
      return v !== null && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string");
    case "array":
      return Array.isArray(v);
  }
}

function checkFields(where: string, obj: Record<string, unknown>, fields: Readonly<Record<string, Kind>>, problems: string[]): void {
  for (const [k, v] of Object.entries(obj)) {
    const kind = fields[k];
    if (!kind) problems.push(`${where}: unknown field "${k}"`);
    else if (!typeOk(kind, v)) problems.push(`${where}.${k}: expected ${kind}`);
  }
}

/**
 * Checks a LinuxKit image config — the `org.mobyproject.config` label or `build.yml`'s
 * `config` (`label: true`: no name/image allowed) or a yml image entry (name and image required).
 * Returns the problems found (empty when valid).
 */
export function checkLinuxkitImageConfig(where: string, value: unknown, opts: { label: boolean }): string[] {
  const problems: string[] = [];
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [`${where}: must be an object`];
  const obj = { ...(value as Record<string, unknown>) };
  if (opts.label) {
    if ("name" in obj || "image" in obj) problems.push(`${where}: name and image cannot be set in a label`);
  } else {
    if (typeof obj.name !== "string" || !/^[a-z0-9][a-z0-9_.-]*$/.test(obj.name)) problems.push(`${where}: name must be a lower-case identifier`);
    if (typeof obj.image !== "string" || obj.image === "") problems.push(`${where}: image is required`);
    delete obj.name;
    delete obj.image;
  }
  checkFields(where, obj, IMAGE_CONFIG_FIELDS, problems);
  for (const key of ["capabilities", "capabilities.add", "ambient"]) {
    const caps = obj[key];
    if (!Array.isArray(caps)) continue;
    const special = caps.length === 1 && ["all", "none"].includes(String(caps[0]).toLowerCase());
    if (!special) for (const c of caps) if (!LINUX_CAPABILITIES.has(String(c))) problems.push(`${where}.${key}: unknown capability ${String(c)}`);
  }
  for (const key of ["binds", "binds.add"]) {
    const binds = obj[key];
    if (!Array.isArray(binds)) continue;
    for (const b of binds as string[]) {
      const parts = b.split(":");
      if (parts.length < 2 || parts.length > 3) problems.push(`${where}.${key}: "${b}" is not src:dest[:opts]`);
      else if (!isAbsolute(parts[0]!) || !isAbsolute(parts[1]!)) problems.push(`${where}.${key}: "${b}" must use absolute paths`);
    }
  }
  if (Array.isArray(obj.env)) for (const e of obj.env as string[]) if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(e)) problems.push(`${where}.env: "${e}" is not KEY=value`);
  for (const key of ["net", "pid", "ipc", "uts"]) {
    const v = obj[key];
    if (typeof v === "string" && !["host", "root", "new", "none"].includes(v) && !isAbsolute(v)) problems.push(`${where}.${key}: "${v}" is not host, new, none or a path`);
  }
  if (obj.runtime && typeof obj.runtime === "object") {
    checkFields(`${where}.runtime`, obj.runtime as Record<string, unknown>, RUNTIME_FIELDS, problems);
    const mkdir = (obj.runtime as { mkdir?: unknown }).mkdir;
    if (Array.isArray(mkdir)) for (const d of mkdir as string[]) if (!isAbsolute(d)) problems.push(`${where}.runtime.mkdir: "${d}" must be absolute`);
  }
  return problems;
}

/** Top-level sections of a LinuxKit yml. */
export const LINUXKIT_SECTIONS = new Set(["kernel", "init", "onboot", "onshutdown", "services", "files", "volumes", "trust"]);

/** Checks a whole LinuxKit yml document; returns problems. */
export function checkLinuxkitYml(where: string, doc: unknown): string[] {
  const problems: string[] = [];
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return [`${where}: must be a mapping`];
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!LINUXKIT_SECTIONS.has(k)) problems.push(`${where}: unknown section "${k}"`);
  if (d.kernel !== undefined) {
    const k = d.kernel as Record<string, unknown>;
    for (const f of Object.keys(k)) if (!["image", "cmdline", "binary", "tar", "ucode"].includes(f)) problems.push(`${where}.kernel: unknown field "${f}"`);
    if (typeof k.image !== "string") problems.push(`${where}.kernel.image is required`);
  }
  if (d.init !== undefined && !(Array.isArray(d.init) && d.init.every((x) => typeof x === "string"))) problems.push(`${where}.init: must be a list of images`);
  const names = new Set<string>();
  for (const section of ["onboot", "onshutdown", "services"]) {
    const list = d[section];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      problems.push(`${where}.${section}: must be a list`);
      continue;
    }
    list.forEach((entry, i) => {
      problems.push(...checkLinuxkitImageConfig(`${where}.${section}[${i}]`, entry, { label: false }));
      const name = (entry as { name?: string }).name;
      if (section === "services" && name) {
        if (names.has(name)) problems.push(`${where}: duplicate service name: ${name}`);
        names.add(name);
      }
    });
  }
  if (d.files !== undefined) {
    const fileFields = ["path", "directory", "symlink", "contents", "source", "metadata", "optional", "mode", "uid", "gid"];
    for (const f of d.files as Record<string, unknown>[]) for (const k of Object.keys(f)) if (!fileFields.includes(k)) problems.push(`${where}.files: unknown field "${k}"`);
  }
  return problems;
}

/** Every `{name,image,...}` entry of a LinuxKit yml's services. */
export function services(doc: unknown): Record<string, unknown>[] {
  return ((doc as { services?: Record<string, unknown>[] }).services ?? []) as Record<string, unknown>[];
}

// ---------------------------------------------------------------------------------------------
// Compose

/** Service attributes the Compose specification defines. */
export const COMPOSE_SERVICE_FIELDS = new Set(
  (
    "annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command configs container_name cpu_count " +
    "cpu_percent cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec depends_on deploy " +
    "develop device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint env_file environment expose extends " +
    "external_links extra_hosts gpus group_add healthcheck hostname image init ipc isolation labels label_file links logging " +
    "mac_address mem_limit mem_reservation mem_swappiness memswap_limit models network_mode networks oom_kill_disable " +
    "oom_score_adj pid pids_limit platform ports post_start pre_stop privileged profiles provider pull_policy read_only restart " +
    "runtime scale secrets security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits " +
    "use_api_socket user userns_mode uts volumes volumes_from working_dir"
  ).split(" "),
);
const COMPOSE_TOP = new Set(["version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models"]);
const HEALTHCHECK_FIELDS = new Set(["test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"]);

/** A short-syntax volume: `SRC:DST[:MODE]` or a bare `DST`. */
export interface VolumeSpec {
  readonly source?: string;
  readonly target: string;
  readonly readOnly: boolean;
  /** True for a host path (starts with `.`, `/` or `~`), false for a named volume. */
  readonly bind: boolean;
}

/** Parses a service's `volumes:` entries (short or long syntax). */
export function composeVolumes(service: Record<string, unknown>): VolumeSpec[] {
  const out: VolumeSpec[] = [];
  for (const v of (service.volumes ?? []) as unknown[]) {
    if (typeof v === "string") {
      const parts = v.split(":");
      if (parts.length === 1) out.push({ target: parts[0]!, readOnly: false, bind: false });
      else out.push({ source: parts[0]!, target: parts[1]!, readOnly: (parts[2] ?? "").split(",").includes("ro"), bind: /^[./~]/.test(parts[0]!) });
    } else {
      const o = v as { type?: string; source?: string; target: string; read_only?: boolean };
      out.push({ ...(o.source !== undefined ? { source: o.source } : {}), target: o.target, readOnly: o.read_only === true, bind: o.type === "bind" });
    }
  }
  return out;
}

/** A service's environment as a map (list or mapping form). */
export function composeEnv(service: Record<string, unknown>): Map<string, string> {
  const env = service.environment;
  const out = new Map<string, string>();
  if (Array.isArray(env)) {
    for (const e of env as string[]) {
      const eq = e.indexOf("=");
      out.set(eq === -1 ? e : e.slice(0, eq), eq === -1 ? "" : e.slice(eq + 1));
    }
  } else if (env && typeof env === "object") for (const [k, v] of Object.entries(env)) out.set(k, String(v));
  return out;
}

/** Walks every string in a value. */
function strings(v: unknown, at: string, visit: (s: string, at: string) => void): void {
  if (typeof v === "string") visit(v, at);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${at}[${i}]`, visit));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) strings(x, `${at}.${k}`, visit);
}

/** Checks a Compose document; bind sources are resolved against `baseDir`. Returns problems. */
export function checkCompose(doc: unknown, baseDir: string): string[] {
  const problems: string[] = [];
  if (doc === null || typeof doc !== "object") return ["compose: must be a mapping"];
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!COMPOSE_TOP.has(k) && !k.startsWith("x-")) problems.push(`compose: unknown top-level key "${k}"`);
  const svcs = (d.services ?? {}) as Record<string, Record<string, unknown>>;
  if (Object.keys(svcs).length === 0) problems.push("compose: no services");
  for (const [name, s] of Object.entries(svcs)) {
    const at = `services.${name}`;
    for (const k of Object.keys(s)) if (!COMPOSE_SERVICE_FIELDS.has(k) && !k.startsWith("x-")) problems.push(`${at}: unknown attribute "${k}"`);
    if (typeof s.image !== "string" && s.build === undefined) problems.push(`${at}: needs image or build`);
    if (typeof s.image === "string" && !/:[\w][\w.-]*$/.test(s.image) && !s.image.includes("@sha256:")) problems.push(`${at}: image ${s.image} is not pinned to a tag`);
    const deps = s.depends_on;
    if (deps && !Array.isArray(deps)) {
      for (const [dep, cond] of Object.entries(deps as Record<string, { condition?: string }>)) {
        if (!(dep in svcs)) problems.push(`${at}.depends_on: no service "${dep}"`);
        if (cond.condition && !["service_started", "service_healthy", "service_completed_successfully"].includes(cond.condition)) problems.push(`${at}.depends_on.${dep}: bad condition ${cond.condition}`);
        if (cond.condition === "service_healthy" && !svcs[dep]?.healthcheck) problems.push(`${at}.depends_on.${dep}: service_healthy but ${dep} has no healthcheck`);
      }
    } else if (Array.isArray(deps)) for (const dep of deps as string[]) if (!(dep in svcs)) problems.push(`${at}.depends_on: no service "${dep}"`);
    if (typeof s.pid === "string" && s.pid !== "host" && !(s.pid.startsWith("service:") && s.pid.slice(8) in svcs) && !s.pid.startsWith("container:")) problems.push(`${at}.pid: "${s.pid}" is not host or service:<name>`);
    if (s.restart !== undefined && !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(String(s.restart))) problems.push(`${at}.restart: bad value ${String(s.restart)}`);
    if (s.healthcheck) {
      for (const k of Object.keys(s.healthcheck as object)) if (!HEALTHCHECK_FIELDS.has(k)) problems.push(`${at}.healthcheck: unknown field "${k}"`);
      const test = (s.healthcheck as { test?: unknown }).test;
      if (Array.isArray(test) && !["CMD", "CMD-SHELL", "NONE"].includes(String(test[0]))) problems.push(`${at}.healthcheck.test: must start with CMD, CMD-SHELL or NONE`);
    }
    for (const v of composeVolumes(s)) {
      if (!isAbsolute(v.target)) problems.push(`${at}.volumes: target ${v.target} must be absolute`);
      if (!v.bind || v.source === undefined) continue;
      const src = resolve(baseDir, v.source);
      if (!existsSync(src)) problems.push(`${at}.volumes: bind source ${v.source} does not exist (ship it, as a directory)`);
      else if (!statSync(src).isDirectory()) problems.push(`${at}.volumes: ${v.source} is a single-file bind mount; it pins the inode and never sees atomic replacements — bind its directory`);
    }
    for (const p of (s.ports ?? []) as unknown[]) if (typeof p === "string" && !p.startsWith("127.0.0.1:")) problems.push(`${at}.ports: ${p} is published on every interface; examples publish on 127.0.0.1`);
    // Compose interpolates $VAR and ${VAR}; a literal $ must be written $$.
    strings(s, at, (str, where) => {
      const bad = str.replace(/\$\$/g, "").match(/\$(?![A-Za-z_{])/);
      if (bad) problems.push(`${where}: "$" not followed by a variable; write "$$" for a literal dollar`);
    });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Templates

/** Splits a template into its front matter (parsed) and body. */
export function frontMatter(text: string): { meta: Record<string, unknown>; body: string } {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/.exec(text);
  if (!m) throw new Error("no front matter between --- lines");
  return { meta: parseYaml(m[1]!) as Record<string, unknown>, body: m[2]! };
}
