/**
 * Starts the real moto server (pip package `moto[server]`) on a free loopback port for the awssm
 * tests, and stops it afterwards.
 *
 * Where moto is missing, {@link motoGate} says why; a test file then skips with that reason
 * printed — unless `CI=true`, where a missing moto must fail the run (see {@link describeMoto}).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import { describe, it } from "vitest";

/** How to run moto: a command and its leading arguments. */
export interface MotoCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/** Dummy credentials and settings that keep the SDK off real AWS and off any real IMDS. */
export const DUMMY_AWS_ENV: Readonly<Record<string, string>> = {
  AWS_ACCESS_KEY_ID: "AKIAFAKEFAKEFAKE0000",
  AWS_SECRET_ACCESS_KEY: "fake-secret-key-not-used-anywhere",
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_CONFIG_FILE: "/nonexistent/emissary-test/aws-config",
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/emissary-test/aws-credentials",
};

/** Applies {@link DUMMY_AWS_ENV} to process.env (the SDK reads process.env) and removes region/profile/endpoint variables. Returns a restore function. */
export function useDummyAwsEnv(extra: Record<string, string | undefined> = {}): () => void {
  const keys = [
    ...Object.keys(DUMMY_AWS_ENV),
    ...Object.keys(extra),
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
  ];
  const saved = new Map(keys.map((k) => [k, process.env[k]]));
  for (const k of keys) delete process.env[k];
  Object.assign(process.env, DUMMY_AWS_ENV);
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

let cached: { cmd?: MotoCommand; reason?: string } | undefined;

/** Finds a working moto server: `$MOTO_SERVER`, `moto_server` on PATH, or `python3 -m moto.server`. */
export function findMoto(): { cmd?: MotoCommand; reason?: string } {
  if (cached) return cached;
  const candidates: MotoCommand[] = [];
  if (process.env.MOTO_SERVER) candidates.push({ command: process.env.MOTO_SERVER, args: [] });
  const bin = onPath("moto_server");
  if (bin) candidates.push({ command: bin, args: [] });
  for (const py of ["python3", "python"]) {
    const p = onPath(py);
    if (p) candidates.push({ command: p, args: ["-m", "moto.server"] });
  }
  for (const c of candidates) {
    // A pyenv shim can exist without moto behind it: ask for --help to be sure.
    const r = spawnSync(c.command, [...c.args, "--help"], { encoding: "utf8", timeout: 60_000 });
    if (r.status === 0 && /moto_server|usage/i.test(r.stdout + r.stderr)) return (cached = { cmd: c });
  }
  return (cached = { reason: "moto_server not found (install it with: pip install 'moto[server]')" });
}

/** Whether the moto tests can run, and if not, why. */
export function motoGate(): { available: true; cmd: MotoCommand } | { available: false; reason: string } {
  const m = findMoto();
  return m.cmd ? { available: true, cmd: m.cmd } : { available: false, reason: m.reason ?? "moto unavailable" };
}

/**
 * `describe` for moto-backed tests: runs `fn` when moto is available; otherwise skips with the
 * reason printed, or — under `CI=true` — registers a failing test, because CI must not skip.
 */
export function describeMoto(name: string, fn: () => void): void {
  const gate = motoGate();
  if (gate.available) {
    describe(name, fn);
    return;
  }
  if (process.env.CI === "true") {
    describe(name, () => {
      it("needs moto_server (CI=true: a missing tool is a failure)", () => {
        throw new Error(`${gate.reason}; .ci/run installs it with pip install 'moto[server]'`);
      });
    });
    return;
  }
  process.stdout.write(`skipping "${name}": ${gate.reason}\n`);
  describe.skip(name, fn);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function ping(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", timeout: 2000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** A running moto server. */
export interface Moto {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** Forgets every resource (POST /moto-api/reset). */
  reset(): Promise<void>;
  /** Stops the server: SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

/** Starts moto on a free loopback port and waits until it answers. Throws when moto is missing. */
export async function startMoto(): Promise<Moto> {
  const gate = motoGate();
  if (!gate.available) throw new Error(gate.reason);
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(gate.cmd.command, [...gate.cmd.args, "-H", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let exited = false;
    child.once("exit", () => (exited = true));
    const endpoint = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    let ready = false;
    while (!exited && !ready && Date.now() < deadline) {
      ready = await ping(`${endpoint}/moto-api/`);
      if (!ready) await new Promise((r) => setTimeout(r, 200));
    }
    if (!ready || exited) {
      child.kill("SIGKILL");
      lastError = `moto_server did not start on port ${port}: ${stderr.trim().slice(-500)}`;
      continue;
    }
    const stop = async (): Promise<void> => {
      if (exited) return;
      const done = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(timer);
    };
    return {
      endpoint,
      stop,
      async reset() {
        await new Promise<void>((resolve, reject) => {
          const req = request(`${endpoint}/moto-api/reset`, { method: "POST" }, (res) => {
            res.resume();
            res.on("end", () => resolve());
          });
          req.on("error", reject);
          req.end();
        });
      },
    };
  }
  throw new Error(lastError);
}
