/**
 * Who may control the daemon: loopback peers; other peers only with the bearer token of
 * status.control_token_file, re-read when it is rotated; never a web page. Remote peers are
 * simulated here by address; the e2e tests use a real non-loopback address where the machine has one.
 */
import { chmodSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ControlAuth, ControlRequestError, isLoopbackAddress, parseRefreshBody } from "../../../src/observe/control.js";
import { silentLogger } from "../../../src/observe/log.js";
import { canary } from "../../helpers/canary.js";

const REMOTE = "192.0.2.77";
const bearer = (t: string): { authorization: string } => ({ authorization: `Bearer ${t}` });

describe("control authorization", () => {
  it("knows loopback addresses", () => {
    for (const a of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ["192.0.2.1", "::ffff:10.0.0.1", "fd00::2", "0.0.0.0", "", undefined, "127.0.0.1.evil"]) expect(isLoopbackAddress(a), String(a)).toBe(false);
  });

  it("accepts loopback peers without a token; refuses other peers when no token file is configured", async () => {
    const auth = new ControlAuth({ logger: silentLogger() });
    expect(await auth.authorize("127.0.0.1", {})).toEqual({ ok: true, via: "loopback" });
    expect(await auth.authorize("::1", {})).toMatchObject({ ok: true });
    expect(await auth.authorize(REMOTE, bearer("anything"))).toMatchObject({ ok: false, status: 403 });
  });

  it("other peers need the token in the file; rotation takes effect at the next request; a missing file refuses", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emissary-ctl-"));
    const file = join(dir, "token");
    const t1 = canary("ctltoken1");
    const t2 = canary("ctltoken2");
    writeFileSync(file, t1 + "\n", { mode: 0o600 });
    const auth = new ControlAuth({ tokenFile: file, logger: silentLogger() });
    expect(await auth.authorize(REMOTE, {})).toMatchObject({ ok: false, status: 401 });
    expect(await auth.authorize(REMOTE, bearer("wrong"))).toMatchObject({ ok: false, status: 401 });
    expect(await auth.authorize(REMOTE, bearer(t1.slice(0, -1)))).toMatchObject({ ok: false, status: 401 });
    expect(await auth.authorize(REMOTE, { authorization: `Basic ${t1}` })).toMatchObject({ ok: false, status: 401 });
    expect(await auth.authorize(REMOTE, bearer(t1))).toEqual({ ok: true, via: "token" });

    // Rotated by rename (a new inode), as secret tooling writes files.
    writeFileSync(file + ".new", t2 + "\n", { mode: 0o600 });
    renameSync(file + ".new", file);
    expect(await auth.authorize(REMOTE, bearer(t1))).toMatchObject({ ok: false, status: 401 });
    expect(await auth.authorize(REMOTE, bearer(t2))).toMatchObject({ ok: true });
    // Rewritten in place with a token of the same length, and the timestamps put back: the ctime still moves.
    const t3 = canary("ctltoken3");
    writeFileSync(file, t3 + "\n");
    utimesSync(file, new Date(1_000_000), new Date(1_000_000));
    expect(await auth.authorize(REMOTE, bearer(t3))).toMatchObject({ ok: true });
    expect(await auth.authorize(REMOTE, bearer(t2))).toMatchObject({ ok: false });

    writeFileSync(file, "\n");
    expect(await auth.authorize(REMOTE, bearer(""))).toMatchObject({ ok: false });
    expect(await auth.authorize(REMOTE, bearer(t3))).toMatchObject({ ok: false, status: 403 });
    rmSync(file);
    expect(await auth.authorize(REMOTE, bearer(t3))).toMatchObject({ ok: false, status: 403 });
    // Loopback still works without the file.
    expect(await auth.authorize("127.0.0.1", {})).toMatchObject({ ok: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a FIFO as the token file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "emissary-ctl-"));
    const { execFileSync } = await import("node:child_process");
    execFileSync("mkfifo", [join(dir, "fifo")]);
    const auth = new ControlAuth({ tokenFile: join(dir, "fifo"), logger: silentLogger() });
    expect(await auth.authorize(REMOTE, bearer("x"))).toMatchObject({ ok: false, status: 403 });
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses whatever a web browser sends, from any peer", async () => {
    const auth = new ControlAuth({ logger: silentLogger() });
    expect(await auth.authorize("127.0.0.1", { origin: "http://evil.example" })).toMatchObject({ ok: false, status: 403 });
    expect(await auth.authorize("127.0.0.1", { "sec-fetch-site": "cross-site" })).toMatchObject({ ok: false, status: 403 });
    expect(await auth.authorize("127.0.0.1", { "sec-fetch-dest": "empty" })).toMatchObject({ ok: false, status: 403 });
    // Node's own fetch (the CLI) sends Sec-Fetch-Mode only.
    expect(await auth.authorize("127.0.0.1", { "sec-fetch-mode": "cors" })).toMatchObject({ ok: true });
  });
});

describe("refresh request body", () => {
  const j = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  it("takes names, refs, templates and reissue; empty means everything", () => {
    expect(parseRefreshBody("application/json", Buffer.alloc(0))).toEqual({});
    expect(parseRefreshBody("application/json; charset=utf-8", j({ names: ["a"], refs: ["vault:x"], templates: ["t"], reissue: true }))).toEqual({ names: ["a"], refs: ["vault:x"], templates: ["t"], reissue: true });
  });
  it("refuses other content types (a page's simple request), bad JSON, bad shapes and unknown keys", () => {
    const status = (ct: string | undefined, body: Buffer): number => {
      try {
        parseRefreshBody(ct, body);
      } catch (err) {
        expect(err).toBeInstanceOf(ControlRequestError);
        return (err as ControlRequestError).status;
      }
      return 200;
    };
    expect(status("text/plain", j({}))).toBe(415);
    expect(status(undefined, j({}))).toBe(415);
    expect(status("application/json", Buffer.from("{"))).toBe(400);
    expect(status("application/json", j([]))).toBe(400);
    expect(status("application/json", j({ names: "a" }))).toBe(400);
    expect(status("application/json", j({ names: [""] }))).toBe(400);
    expect(status("application/json", j({ reissue: "yes" }))).toBe(400);
    expect(status("application/json", j({ all: true }))).toBe(400);
  });
});
