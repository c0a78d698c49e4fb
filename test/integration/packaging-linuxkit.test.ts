/**
 * The LinuxKit restart helper (examples/linuxkit/linuxkit-restart.sh, /usr/local/bin/linuxkit-restart
 * in the image) against stand-ins for the host's `service` and `ctr` that behave as LinuxKit's do
 * (pkg/init/cmd/service: `restart` is `stop` then `start`; `start` reads
 * <path>/<service>/config.json, default path /containers/services, and fails without it), run in
 * a "container view" made of exactly what the image's org.mobyproject.config label binds.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tmpDir } from "../helpers/e2e.js";
import { ROOT, keyValues, parseDockerfile } from "./packaging-helpers.js";

const SCRIPT = join(ROOT, "examples/linuxkit/linuxkit-restart.sh");
const finalStage = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8")).stages.at(-1)!;
const LABEL_BINDS = (JSON.parse(keyValues(finalStage, "LABEL").get("org.mobyproject.config")!) as { binds: string[] }).binds;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function scratch(prefix: string): string {
  const d = tmpDir(prefix);
  dirs.push(d);
  return d;
}

function exec(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, out }));
  });
}

/**
 * LinuxKit's `service` as far as the helper uses it: `[-v] stop|start|restart [-path DIR] NAME`.
 * A running service is a file in $STANDIN_STATE. `start` fails like the real one ("failed to read
 * service spec") when DIR/NAME/config.json cannot be read; `restart` stops, then starts, and does
 * not start when the stop failed. Commands listed in $STANDIN_FAIL fail as containerd would.
 */
const SERVICE = `#!/bin/sh
echo "service $*" >> "$STANDIN_LOG"
cmd=$1; shift
path=/containers/services
while [ $# -gt 1 ]; do
  case $1 in -path|--path) path=$2; shift 2 ;; *) break ;; esac
done
svc=$1
case " $STANDIN_FAIL " in *" $cmd $svc "*) echo "failed to create task: already exists" >&2; exit 1 ;; esac
stop() {
  [ -e "$STANDIN_STATE/$svc" ] || { echo "loading container: $svc: not found" >&2; exit 1; }
  rm "$STANDIN_STATE/$svc"
}
start() {
  [ -r "$path/$svc/config.json" ] || { echo "failed to read service spec: open $path/$svc/config.json: no such file or directory" >&2; exit 1; }
  [ -e "$STANDIN_STATE/$svc" ] && { echo "failed to create container: $svc: already exists" >&2; exit 1; }
  touch "$STANDIN_STATE/$svc"
}
case $cmd in
  stop) stop ;;
  start) start ;;
  restart) stop; start ;;
  *) echo "$cmd is not valid command" >&2; exit 1 ;;
esac
`;

/** containerd's `ctr -n NS task rm -f NAME` / `container rm NAME`: the task stops. */
const CTR = `#!/bin/sh
echo "ctr $*" >> "$STANDIN_LOG"
case "$3 $4" in
  "task rm") rm -f "$STANDIN_STATE/$6" ;;
esac
exit 0
`;

interface Host {
  readonly root: string;
  readonly state: string;
  readonly log: string;
}

/** A stand-in LinuxKit host: /usr/bin/{service,ctr}, specs in /containers/services, running services. */
function host(servicesWithSpec: readonly string[], running: readonly string[]): Host {
  const root = scratch("emissary-lk-host-");
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  writeFileSync(join(root, "usr/bin/service"), SERVICE);
  writeFileSync(join(root, "usr/bin/ctr"), CTR);
  for (const t of ["service", "ctr"]) chmodSync(join(root, "usr/bin", t), 0o755);
  for (const s of servicesWithSpec) {
    mkdirSync(join(root, "containers/services", s, "rootfs"), { recursive: true });
    writeFileSync(join(root, "containers/services", s, "config.json"), JSON.stringify({ ociVersion: "1.0.2", process: { args: [s] }, root: { path: "rootfs" } }));
  }
  const state = join(root, "state");
  mkdirSync(state);
  for (const s of running) writeFileSync(join(state, s), "");
  return { root, state, log: join(root, "calls") };
}

/** What the container sees: each bind of `binds` whose source the stand-in host has. */
function containerView(h: Host, binds: readonly string[]): string {
  const view = scratch("emissary-lk-view-");
  for (const b of binds) {
    const [src, dst] = b.split(":") as [string, string];
    if (!existsSync(join(h.root, src))) continue; // /run, /etc/resolv.conf: not part of this host
    mkdirSync(dirname(join(view, dst)), { recursive: true });
    symlinkSync(join(h.root, src), join(view, dst));
  }
  return view;
}

/** Runs the helper in `view`, with the host's `service`/`ctr` only if the view binds them. */
async function restart(h: Host, view: string, args: readonly string[], fail: readonly string[] = []): Promise<{ code: number | null; out: string; calls: string[] }> {
  const r = await exec("/bin/sh", [SCRIPT, ...args], {
    PATH: [join(view, "usr/bin"), "/usr/bin", "/bin"].join(delimiter),
    LINUXKIT_RESTART_SETTLE: "0",
    LINUXKIT_SERVICES_DIR: join(view, "containers/services"),
    STANDIN_STATE: h.state,
    STANDIN_LOG: h.log,
    STANDIN_FAIL: fail.join(" "),
  });
  return { ...r, calls: existsSync(h.log) ? readFileSync(h.log, "utf8").trim().split("\n") : [] };
}

const running = (h: Host, s: string): boolean => existsSync(join(h.state, s));

describe("linuxkit-restart in the container the image label describes", () => {
  it("the label binds the host's service and ctr and LinuxKit's service specs, read-only", () => {
    for (const p of ["/usr/bin/service", "/usr/bin/ctr", "/containers/services"]) expect(LABEL_BINDS).toContain(`${p}:${p}:ro`);
  });

  it("restarts consul: `service restart` stops it and starts it again from its spec", async () => {
    const h = host(["consul"], ["consul"]);
    const view = containerView(h, LABEL_BINDS);
    const r = await restart(h, view, ["consul"]);
    expect(r.code, r.out).toBe(0);
    expect(r.calls).toEqual([`service restart -path ${join(view, "containers/services")} consul`]);
    expect(running(h, "consul"), "consul is running again").toBe(true);
  });

  it("without /containers/services bound, it leaves consul running and fails instead of stopping it for good", async () => {
    const h = host(["consul"], ["consul"]);
    const view = containerView(
      h,
      LABEL_BINDS.filter((b) => !b.startsWith("/containers/services:")),
    );
    const r = await restart(h, view, ["consul"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/config\.json is not readable.*leaving consul running/);
    expect(r.calls, "service was never called").toEqual([]);
    expect(running(h, "consul")).toBe(true);
  });

  it("negative check: the stand-in `service restart` without the spec stops the service and cannot start it (the failure the check prevents)", async () => {
    const h = host(["consul"], ["consul"]);
    const empty = scratch("emissary-lk-empty-");
    const r = await exec(join(h.root, "usr/bin/service"), ["restart", "-path", empty, "consul"], { PATH: "/usr/bin:/bin", STANDIN_STATE: h.state, STANDIN_LOG: h.log, STANDIN_FAIL: "" });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/failed to read service spec/);
    expect(running(h, "consul")).toBe(false);
  });

  it("removes the task and container and starts the service again when `service restart` fails", async () => {
    const h = host(["consul", "nomad"], ["consul", "nomad"]);
    const view = containerView(h, LABEL_BINDS);
    const specs = join(view, "containers/services");
    const r = await restart(h, view, ["consul", "nomad"], ["restart consul"]);
    expect(r.code, r.out).toBe(0);
    expect(r.calls).toEqual([
      `service restart -path ${specs} consul`,
      "ctr -n services.linuxkit task rm -f consul",
      "ctr -n services.linuxkit container rm consul",
      `service start -path ${specs} consul`,
      `service restart -path ${specs} nomad`,
    ]);
    expect(running(h, "consul") && running(h, "nomad")).toBe(true);
  });

  it("fails when the service cannot be started again, and refuses odd names", async () => {
    const h = host(["consul"], ["consul"]);
    const view = containerView(h, LABEL_BINDS);
    expect((await restart(h, view, ["consul"], ["restart consul", "start consul"])).code).toBe(1);
    const h2 = host(["consul"], ["consul"]);
    const odd = await restart(h2, containerView(h2, LABEL_BINDS), ["-rf"]);
    expect(odd.code).toBe(2);
    expect(odd.calls).toEqual([]);
    expect((await restart(h2, containerView(h2, LABEL_BINDS), [])).code).toBe(2);
  });
});
