/**
 * Secrecy promises beyond the log scan (which global-setup runs over every line of the suite):
 *
 * - a secret is never in a file others can read, at any moment, whatever the umask: the temp file
 *   (and, on the in-place path for bind-mounted files, the destination) already has its final,
 *   restrictive mode when the secret is written into it — checked at every write, fsync and
 *   rename through the writer's fsOps hook, and observed on the daemon run with umask 000;
 * - no secret reaches a reload command's argv or environment: not emissary's credentials
 *   (VAULT_TOKEN, AWS keys), not a base URL carrying a password, not variables read through the
 *   `env:` backend. The command dumps what it received and the dump is searched;
 * - the template directory is reported when others can write to it (whoever writes a template
 *   runs commands as emissary's user).
 */
import { promises as fsp, chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { childEnv } from "../../src/output/executor.js";
import { findWritableByOthers } from "../../src/config/permissions.js";
import { writeAtomic, type WriterFsOps } from "../../src/output/writer.js";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";
import { startHttpSecrets } from "../helpers/http-secrets.js";
import { mountTmpfs, remount, unmount } from "./helpers/tmpfs.js";

const TEMP_RE = /\.emissary-\d+-\d+-[0-9a-f]{12}\.tmp$/;

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

/**
 * fsOps that record the file's mode whenever content goes into it (write, writeFile, truncate,
 * sync) and at rename. Used for the temp file and for the in-place path alike.
 */
function modeRecorder(extra: Partial<WriterFsOps> = {}): { fsOps: Partial<WriterFsOps>; seen: { op: string; mode: number; size: number }[] } {
  const seen: { op: string; mode: number; size: number }[] = [];
  const fsOps: Partial<WriterFsOps> = {
    async open(path, flags, mode) {
      const fh = await fsp.open(path, flags, mode);
      return new Proxy(fh, {
        get(target, prop, receiver) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          if (typeof v !== "function") return v;
          const fn = (v as (...a: unknown[]) => Promise<unknown>).bind(target);
          if (prop === "write" || prop === "writeFile" || prop === "sync" || prop === "truncate") {
            return async (...args: unknown[]) => {
              const r = await fn(...args);
              const st = await target.stat();
              seen.push({ op: String(prop), mode: st.mode & 0o7777, size: st.size });
              return r;
            };
          }
          return fn;
        },
      });
    },
    async rename(from, to) {
      const st = await fsp.lstat(from);
      seen.push({ op: "rename", mode: st.mode & 0o7777, size: st.size });
      if (extra.rename) return extra.rename(from, to);
      return fsp.rename(from, to);
    },
  };
  return { fsOps, seen };
}

describe("secrets are never in a file others can read", () => {
  const saved = process.umask();
  afterEach(() => {
    process.umask(saved);
  });

  for (const umask of [0o000, 0o002, 0o022, 0o077]) {
    for (const mode of [0o400, 0o600, 0o640, 0o644]) {
      it(`umask ${umask.toString(8).padStart(3, "0")}, mode ${mode.toString(8)}: never more open than the final mode while holding the secret`, async () => {
        const dir = tmpDir("emissary-secrecy-");
        process.umask(umask);
        const dest = join(dir, "out.conf");
        // Replace a world-readable file, the case where a slip would show.
        await fsp.writeFile(dest, "public\n", { mode: 0o644 });
        await fsp.chmod(dest, 0o644);
        const { fsOps, seen } = modeRecorder();
        await writeAtomic({ path: dest, content: canary(), mode, fsOps });
        expect(seen.length).toBeGreaterThan(0);
        for (const s of seen.filter((x) => x.size > 0)) {
          expect((s.mode & 0o077 & ~mode).toString(8), `${s.op}: mode ${s.mode.toString(8)} exposes the secret`).toBe("0");
        }
        expect(seen.at(-1)!.op).toBe("rename");
        expect(seen.at(-1)!.mode).toBe(mode);
        expect(lstatSync(dest).mode & 0o7777).toBe(mode);
      });
    }
  }

  for (const errno of ["EBUSY", "EXDEV"]) {
    it(`in-place rewrite (${errno}, a bind-mounted file) of a 0644 file with a 0600 secret: restricted before the secret is written`, async () => {
      const dir = tmpDir("emissary-secrecy-inplace-");
      process.umask(0);
      const dest = join(dir, "bind.conf");
      await fsp.writeFile(dest, "public\n", { mode: 0o644 });
      await fsp.chmod(dest, 0o644);
      const busy = async (): Promise<void> => Promise.reject(Object.assign(new Error(errno), { code: errno }));
      const { fsOps, seen } = modeRecorder({ rename: busy });
      const value = canary();
      const res = await writeAtomic({ path: dest, content: value, mode: 0o600, fsOps });
      expect(res.inPlace).toBe(true);
      expect(readFileSync(dest, "utf8")).toBe(value);
      const inPlace = seen.slice(seen.findIndex((s) => s.op === "rename") + 1);
      expect(inPlace.length, "the in-place writes were observed").toBeGreaterThan(0);
      for (const s of inPlace.filter((x) => x.size > 0)) {
        expect(s.mode.toString(8), `${s.op} while the destination was ${s.mode.toString(8)}`).toBe("600");
      }
      expect(lstatSync(dest).mode & 0o7777).toBe(0o600);
    });
  }

  it("the daemon run with umask 000: temp files and destinations observed never group/world-readable", async () => {
    const dir = tmpDir("emissary-secrecy-daemon-");
    for (const d of ["tpl", "secrets", "out"]) mkdirSync(join(dir, d));
    writeFileSync(join(dir, "secrets", "s"), canary("s0"));
    for (const name of ["a", "b", "c"]) {
      writeFileSync(join(dir, "tpl", `${name}.tpl`), `---\ndest: ${join(dir, "out", `${name}.conf`)}\nmode: 0400\nsecrets:\n  v: file:../secrets/s\n---\n{{v}}\n`);
    }
    const exposed: string[] = [];
    let observed = 0;
    const w = watch(join(dir, "out"), (_e, name) => {
      if (!name) return;
      try {
        const st = lstatSync(join(dir, "out", String(name)));
        observed++;
        if (st.size > 0 && (st.mode & 0o077) !== 0) exposed.push(`${String(name)} ${(st.mode & 0o7777).toString(8)}`);
      } catch {
        /* renamed away already */
      }
    });
    process.umask(0);
    let daemon: Daemon | undefined;
    try {
      daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
      process.umask(saved);
      for (let i = 1; i <= 10; i++) {
        const v = canary(`s${i}`);
        writeFileSync(join(dir, "secrets", "s"), v);
        await waitFor(() => ["a", "b", "c"].every((n) => read(join(dir, "out", `${n}.conf`)) === `${v}\n`), 15_000, `value ${i} rendered`);
      }
    } finally {
      w.close();
      process.umask(saved);
      if (daemon) expect((await daemon.stop()).code).toBe(0);
    }
    expect(observed).toBeGreaterThan(0);
    expect(exposed).toEqual([]);
    for (const n of ["a", "b", "c"]) expect(lstatSync(join(dir, "out", `${n}.conf`)).mode & 0o7777).toBe(0o400);
  }, 60_000);
});

describe("no secret in a command's argv or environment", () => {
  it("credentials, a base URL with a password and env: secrets are not passed to commands", async () => {
    const dir = tmpDir("emissary-cmdenv-");
    for (const d of ["tpl", "secrets", "out"]) mkdirSync(join(dir, d));
    const values = {
      file: canary("file"),
      http: canary("http"),
      env: canary("envsecret"),
      vaultToken: canary("vaulttoken"),
      awsSecret: canary("awssecret"),
      awsSession: canary("awssession"),
      urlPassword: canary("urlpass"),
    };
    writeFileSync(join(dir, "secrets", "s"), values.file);
    const http = await startHttpSecrets({ "app/key": values.http });
    const url = new URL(http.url);
    url.username = "emissary";
    url.password = values.urlPassword;
    const dump = join(dir, "dump");
    writeFileSync(
      join(dir, "tpl", "app.tpl"),
      `---
dest: ${join(dir, "out", "app.conf")}
command: ["/bin/sh", "-c", "tr '\\\\0' '\\\\n' < /proc/self/environ > ${dump}.env; printf '%s\\\\n' \\"$0\\" \\"$@\\" > ${dump}.argv", "reload", "--now"]
secrets:
  f: file:../secrets/s
  h: http:app/key
  e: env:APP_DB_PASSWORD
---
f={{f}}
h={{h}}
e={{e}}
`,
    );
    const daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")], {
      env: {
        EMISSARY_HTTP_URL: url.href,
        APP_DB_PASSWORD: values.env,
        VAULT_TOKEN: values.vaultToken,
        AWS_ACCESS_KEY_ID: "AKIAEXAMPLEEXAMPLE00",
        AWS_SECRET_ACCESS_KEY: values.awsSecret,
        AWS_SESSION_TOKEN: values.awsSession,
        UNRELATED_SETTING: "kept",
      },
    });
    try {
      await waitFor(() => existsSync(`${dump}.argv`) && existsSync(`${dump}.env`), 15_000, "the command ran");
      // The template itself got every secret: that is where they belong.
      expect(read(join(dir, "out", "app.conf"))).toBe(`f=${values.file}\nh=${values.http}\ne=${values.env}\n`);
      await waitFor(() => (read(`${dump}.argv`) ?? "").includes("--now"), 5_000, "argv dump complete");
      const env = read(`${dump}.env`)!;
      const argv = read(`${dump}.argv`)!;
      expect(argv.split("\n").filter(Boolean)).toEqual(["reload", "--now"]);
      expect(env).toContain("UNRELATED_SETTING=kept"); // the environment is passed on…
      for (const [name, v] of Object.entries(values)) {
        expect(env.includes(v), `${name} is in the command's environment`).toBe(false);
        expect(argv.includes(v), `${name} is in the command's argv`).toBe(false);
      }
      expect(env).not.toContain("CANARY"); // …without any secret
    } finally {
      expect((await daemon.stop()).code).toBe(0);
      await http.close();
    }
  }, 60_000);
});

describe("childEnv", () => {
  it("drops credentials, a base URL with a password or a query, and the names asked for; keeps the rest", () => {
    const env = childEnv(
      {
        PATH: "/bin",
        VAULT_TOKEN: "t",
        AWS_SECRET_ACCESS_KEY: "k",
        DB_PASSWORD: "p",
        EMISSARY_TPL_DIR: "/etc/emissary",
        EMISSARY_HTTP_URL: "http://u:p@meta/",
      },
      ["DB_PASSWORD"],
    );
    expect(env).toEqual({ PATH: "/bin", EMISSARY_TPL_DIR: "/etc/emissary" });
    expect(childEnv({ EMISSARY_HTTP_URL: "http://meta/v1?token=x" })).toEqual({});
    expect(childEnv({ EMISSARY_HTTP_URL: "http://169.254.169.254/latest/" })).toEqual({ EMISSARY_HTTP_URL: "http://169.254.169.254/latest/" });
  });
});

describe("template directory permissions", () => {
  const isRoot = process.getuid?.() === 0;

  it.runIf(isRoot)("findWritableByOthers: world-writable, group-writable by another group, owned by another user", async () => {
    const dir = tmpDir("emissary-perm-find-");
    const files = ["world", "group", "owner", "root-group", "fine"].map((n) => join(dir, n));
    for (const f of files) writeFileSync(f, "x");
    chmodSync(dir, 0o755);
    chmodSync(files[0]!, 0o646);
    chmodSync(files[1]!, 0o664);
    chownSync(files[1]!, 0, 65534);
    chmodSync(files[2]!, 0o644);
    chownSync(files[2]!, 65534, 0);
    chmodSync(files[3]!, 0o664); // group root: as privileged as emissary itself
    chmodSync(files[4]!, 0o600);
    expect(await findWritableByOthers(dir, files)).toEqual([
      { path: files[0], mode: "0646", writableBy: "everyone" },
      { path: files[1], mode: "0664", writableBy: "group 65534" },
      { path: files[2], mode: "0644", writableBy: "owner 65534" },
    ]);
  });

  let daemon: Daemon | undefined;
  afterEach(async () => {
    if (daemon) expect((await daemon.stop()).code).toBe(0);
    daemon = undefined;
  });

  function warnings(d: Daemon): Record<string, unknown>[] {
    return d.logs().filter((l) => l.level === 40 && typeof l.msg === "string" && (l.msg as string).includes("others can write"));
  }

  it.runIf(isRoot)("a world-writable directory on a read-only mount (a Kubernetes ConfigMap volume) is not reported", async (ctx) => {
    const dir = tmpDir("emissary-perm-ro-");
    const why = mountTmpfs(dir, "64k");
    if (why !== undefined) {
      console.log(`skipped: cannot mount tmpfs here (${why})`);
      ctx.skip();
      return;
    }
    try {
      chmodSync(dir, 0o777);
      writeFileSync(join(dir, "a.tpl"), "x");
      chmodSync(join(dir, "a.tpl"), 0o666);
      expect((await findWritableByOthers(dir, [join(dir, "a.tpl")])).length).toBe(2);
      remount(dir, true);
      expect(await findWritableByOthers(dir, [join(dir, "a.tpl")])).toEqual([]);
    } finally {
      unmount(dir);
    }
  });

  it("a world-writable template directory and a world-writable template are warned about, naming path and mode", async () => {
    const dir = tmpDir("emissary-perm-");
    mkdirSync(join(dir, "tpl"));
    writeFileSync(join(dir, "s"), canary("p"));
    writeFileSync(join(dir, "tpl", "a.tpl"), `---\ndest: ${join(dir, "a.conf")}\nsecrets:\n  v: file:${join(dir, "s")}\n---\n{{v}}\n`);
    chmodSync(join(dir, "tpl"), 0o777);
    chmodSync(join(dir, "tpl", "a.tpl"), 0o666);
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    await waitFor(() => warnings(daemon!).length >= 2, 15_000, "two permission warnings");
    const w = warnings(daemon);
    const dirWarn = w.find((l) => l.path === join(dir, "tpl"))!;
    expect(dirWarn.mode).toBe("0777");
    const fileWarn = w.find((l) => l.path === join(dir, "tpl", "a.tpl"))!;
    expect(fileWarn.mode).toBe("0666");
    // It is a warning, not a refusal: the template is rendered.
    await waitFor(() => existsSync(join(dir, "a.conf")), 15_000, "rendered anyway");
  }, 30_000);

  it("a directory only its owner can write is not warned about", async () => {
    const dir = tmpDir("emissary-perm-ok-");
    mkdirSync(join(dir, "tpl"), { mode: 0o755 });
    chmodSync(join(dir, "tpl"), 0o755);
    writeFileSync(join(dir, "s"), canary("p"));
    writeFileSync(join(dir, "tpl", "a.tpl"), `---\ndest: ${join(dir, "a.conf")}\nsecrets:\n  v: file:${join(dir, "s")}\n---\n{{v}}\n`, { mode: 0o644 });
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    await waitFor(() => existsSync(join(dir, "a.conf")), 15_000, "rendered");
    expect(warnings(daemon)).toEqual([]);
  }, 30_000);
});
