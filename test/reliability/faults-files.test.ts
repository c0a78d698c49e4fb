/**
 * The file system changing under the daemon: the template directory deleted and recreated, and
 * secret files replaced by rename, by a Kubernetes-style `..data` symlink swap, and truncated
 * then written. While it happens the destinations are read continuously: they only ever hold a
 * complete rendering of some value the secret really had — never empty, never partial — the
 * unrelated template is not rewritten, and the daemon keeps running. A secret path that is a FIFO
 * or a device is refused without hanging the daemon.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor, type Daemon } from "../helpers/e2e.js";

function read(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

/** Reads `file` every few milliseconds until stopped; returns every distinct content seen. */
function observe(file: string): { stop(): Set<string | undefined> } {
  const seen = new Set<string | undefined>();
  let on = true;
  const loop = (): void => {
    if (!on) return;
    seen.add(read(file));
    setTimeout(loop, 2);
  };
  loop();
  return {
    stop() {
      on = false;
      return seen;
    },
  };
}

describe("the file system changing under the daemon", () => {
  let daemon: Daemon | undefined;
  afterEach(async () => {
    if (daemon) {
      const { code } = await daemon.stop();
      expect(code).toBe(0);
    }
    daemon = undefined;
  });

  it("template directory deleted and recreated: files kept meanwhile, a clear log line, templates picked up again", async () => {
    const dir = tmpDir("emissary-tpldir-");
    const tpl = join(dir, "tpl");
    mkdirSync(join(dir, "secrets"));
    const v1 = canary("v1");
    writeFileSync(join(dir, "secrets", "s"), v1);
    const writeTpl = (prefix: string): void => {
      mkdirSync(tpl, { recursive: true });
      writeFileSync(join(tpl, "app.tpl"), `---\ndest: ${join(dir, "out", "app.conf")}\nsecrets:\n  v: file:${join(dir, "secrets", "s")}\n---\n${prefix}={{v}}\n`);
    };
    writeTpl("a");
    daemon = spawnEmissary(["run", "--templates", tpl]);
    const dest = join(dir, "out", "app.conf");
    await waitFor(() => read(dest) === `a=${v1}\n`, 15_000, "first render");

    rmSync(tpl, { recursive: true });
    await daemon.waitForLog((l) => l.msg === "template directory does not exist (yet); waiting for it", 15_000, "the missing-directory warning");
    // While it is gone the secret changes: the destination keeps its last rendering.
    const v2 = canary("v2");
    writeFileSync(join(dir, "secrets", "s"), v2);
    await new Promise((r) => setTimeout(r, 1500));
    expect(read(dest)).toBe(`a=${v1}\n`);
    expect(daemon.proc.exitCode).toBeNull();

    writeTpl("b");
    await daemon.waitForLog((l) => l.msg === "template directory found", 15_000, "the directory noticed again");
    await waitFor(() => read(dest) === `b=${v2}\n`, 15_000, "the recreated template rendered with the current value");
  }, 60_000);

  it("a directory renamed over the template directory: its templates, and a template added to it later, are picked up (the watch moves to the new directory)", async () => {
    const dir = tmpDir("emissary-tpldir-swap-");
    const tpl = join(dir, "tpl");
    mkdirSync(join(dir, "secrets"));
    const v = canary("swap");
    writeFileSync(join(dir, "secrets", "s"), v);
    const writeTpl = (d: string, name: string): void =>
      writeFileSync(join(d, `${name}.tpl`), `---\ndest: ${join(dir, "out", `${name}.conf`)}\nsecrets:\n  v: file:${join(dir, "secrets", "s")}\n---\n${name}={{v}}\n`);
    mkdirSync(tpl);
    writeTpl(tpl, "a");
    daemon = spawnEmissary(["run", "--templates", tpl]);
    await waitFor(() => read(join(dir, "out", "a.conf")) === `a=${v}\n`, 15_000, "first render");

    // A deploy tool builds the new directory beside it and renames it into place.
    const next = join(dir, "tpl.new");
    mkdirSync(next);
    writeTpl(next, "b");
    rmSync(tpl, { recursive: true });
    renameSync(next, tpl);
    await waitFor(() => read(join(dir, "out", "b.conf")) === `b=${v}\n`, 15_000, "the swapped-in directory's template");
    // The backstop scan is minutes away: only a watch on the new directory sees this one.
    writeTpl(tpl, "c");
    await waitFor(() => read(join(dir, "out", "c.conf")) === `c=${v}\n`, 15_000, "a template added to the swapped-in directory");
  }, 60_000);

  it("secret files replaced by rename, by a ..data symlink swap, and truncated then written: never an empty or partial file", async () => {
    const dir = tmpDir("emissary-secretfiles-");
    for (const d of ["tpl", "secrets", "k8s"]) mkdirSync(join(dir, d));
    const plain = join(dir, "secrets", "plain");
    const other = join(dir, "secrets", "other");
    // Kubernetes: k8s/pw -> ..data/pw, ..data -> ..2024_01_01_<n> (swapped by rename).
    let gen = 0;
    const k8sValues: string[] = [];
    const k8sWrite = (v: string): void => {
      const d = join(dir, "k8s", `..ts_${++gen}`);
      mkdirSync(d);
      writeFileSync(join(d, "pw"), v);
      symlinkSync(`..ts_${gen}`, join(dir, "k8s", "..data_tmp"));
      renameSync(join(dir, "k8s", "..data_tmp"), join(dir, "k8s", "..data"));
      k8sValues.push(v);
    };
    const plainValues = [canary("p0")];
    writeFileSync(plain, plainValues[0]!);
    writeFileSync(other, canary("other"));
    k8sWrite(canary("k0"));
    symlinkSync("..data/pw", join(dir, "k8s", "pw"));
    const tpl = (name: string, ref: string): void =>
      writeFileSync(join(dir, "tpl", `${name}.tpl`), `---\ndest: ${join(dir, "out", `${name}.conf`)}\nsecrets:\n  v: file:${ref}\n---\n[{{v}}]\n`);
    tpl("plain", plain);
    tpl("k8s", join(dir, "k8s", "pw"));
    tpl("other", other);
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    const out = (n: string): string => join(dir, "out", `${n}.conf`);
    await waitFor(() => read(out("plain")) === `[${plainValues[0]}]\n` && read(out("k8s")) === `[${k8sValues[0]}]\n` && read(out("other")) !== undefined, 15_000, "first render");
    const otherStat = statSync(out("other"));

    const watchPlain = observe(out("plain"));
    const watchK8s = observe(out("k8s"));
    for (let round = 1; round <= 12; round++) {
      const v = canary(`p${round}`);
      plainValues.push(v);
      switch (round % 3) {
        case 0: // replaced by rename (editors, LinuxKit's metadata service)
          writeFileSync(plain + ".new", v);
          renameSync(plain + ".new", plain);
          break;
        case 1: // truncated, then written a moment later
          writeFileSync(plain, "");
          await new Promise((r) => setTimeout(r, 60));
          writeFileSync(plain, v);
          break;
        default: // rewritten in place
          writeFileSync(plain, v);
      }
      k8sWrite(canary(`k${round}`));
      await waitFor(() => read(out("plain")) === `[${v}]\n` && read(out("k8s")) === `[${k8sValues.at(-1)}]\n`, 15_000, `round ${round} rendered`);
    }
    const seenPlain = watchPlain.stop();
    const seenK8s = watchK8s.stop();
    const complete = (values: string[]): Set<string> => new Set(values.map((v) => `[${v}]\n`));
    for (const s of seenPlain) expect(complete(plainValues).has(s!), `plain destination held ${JSON.stringify(s)}`).toBe(true);
    for (const s of seenK8s) expect(complete(k8sValues).has(s!), `k8s destination held ${JSON.stringify(s)}`).toBe(true);
    // The unrelated template was never rewritten.
    const after = statSync(out("other"));
    expect([after.ino, after.mtimeMs]).toEqual([otherStat.ino, otherStat.mtimeMs]);
    expect(daemon.proc.exitCode).toBeNull();
  }, 90_000);

  it("a secret that is a FIFO or a device is refused clearly; the daemon does not hang and the other templates carry on", async () => {
    const dir = tmpDir("emissary-fifo-");
    for (const d of ["tpl", "secrets"]) mkdirSync(join(dir, d));
    execFileSync("mkfifo", [join(dir, "secrets", "pipe")]);
    const good = join(dir, "secrets", "good");
    writeFileSync(good, canary("good0"));
    const tpl = (name: string, ref: string): void =>
      writeFileSync(join(dir, "tpl", `${name}.tpl`), `---\ndest: ${join(dir, "out", `${name}.conf`)}\nsecrets:\n  v: file:${ref}\n---\n{{v}}\n`);
    tpl("fifo", join(dir, "secrets", "pipe"));
    tpl("zero", "/dev/zero");
    tpl("good", good);
    daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")]);
    for (const ref of [join(dir, "secrets", "pipe"), "/dev/zero"]) {
      const line = await daemon.waitForLog((l) => l.ref === `file:${ref}` && l.level === 50, 15_000, `an error for ${ref}`);
      expect(JSON.stringify(line.err)).toContain("not a regular file");
    }
    // Enough changes to exhaust libuv's four threads if any read were stuck on the FIFO.
    for (let i = 1; i <= 8; i++) {
      const v = canary(`good${i}`);
      writeFileSync(good, v);
      await waitFor(() => read(join(dir, "out", "good.conf")) === `${v}\n`, 10_000, `good template follows change ${i}`);
    }
    expect(existsSync(join(dir, "out", "fifo.conf"))).toBe(false);
    expect(daemon.proc.exitCode).toBeNull();
  }, 120_000);
});
