import { describe, expect, it } from "vitest";
import { DEFAULT_STUCK_AFTER_MS, health, readiness } from "../../../src/observe/status-server.js";
import type { EmissaryStatus, TemplateStatus } from "../../../src/observe/status-model.js";

const base: EmissaryStatus = { ready: false, phase: "running", startedAt: 0, waitingForTemplateDir: false, backends: [], templates: [], references: [] };
const tpl = (t: Partial<TemplateStatus> & { file: string }): TemplateStatus => ({ state: "pending", pending: [], ...t });

describe("health", () => {
  it("is ok while created, starting or running, with the uptime", () => {
    for (const phase of ["created", "starting", "running"] as const) expect(health({ ...base, phase }, 61_000).status).toBe("ok");
    expect(health(base, 61_400).uptimeSeconds).toBe(61);
  });

  it("is unhealthy when stopping or stopped", () => {
    expect(health({ ...base, phase: "stopping" }, 1)).toMatchObject({ status: "unhealthy", reason: "emissary is stopping" });
    expect(health({ ...base, phase: "stopped" }, 1).status).toBe("unhealthy");
  });

  it("is unhealthy when one pass has been running longer than the limit, not before", () => {
    const busy = { ...base, busySince: 1_000 };
    expect(health(busy, 1_000 + DEFAULT_STUCK_AFTER_MS).status).toBe("ok");
    const stuck = health(busy, 1_000 + DEFAULT_STUCK_AFTER_MS + 1);
    expect(stuck.status).toBe("unhealthy");
    expect(stuck.reason).toMatch(/pass has been running for 120s/);
    expect(health(busy, 1_000 + 5_001, 5_000).status).toBe("unhealthy");
  });
});

describe("readiness", () => {
  it("names pending templates and their unresolved references, with a reason", () => {
    const r = readiness({ ...base, templates: [tpl({ file: "a", dest: "/a", state: "rendered", lastRenderAt: 1 }), tpl({ file: "b", dest: "/b", pending: ["vault:x#y", "awssm:z"] }), tpl({ file: "c", state: "invalid", error: "c:2: bad" })] });
    expect(r.ready).toBe(false);
    expect(r.reason).toBe("2 of 3 template(s) have not rendered yet");
    expect(r.pending).toEqual([
      { file: "b", dest: "/b", state: "pending", references: ["vault:x#y", "awssm:z"] },
      { file: "c", state: "invalid", references: [], error: "c:2: bad" },
    ]);
  });

  it("explains an empty or missing template directory and start-up", () => {
    expect(readiness(base).reason).toBe("no templates found");
    expect(readiness({ ...base, waitingForTemplateDir: true }).reason).toBe("the template directory does not exist (yet)");
    expect(readiness({ ...base, phase: "starting" }).reason).toBe("emissary is starting");
  });

  it("stays ready when a rendered template later fails, listing it as failing", () => {
    const r = readiness({ ...base, ready: true, templates: [tpl({ file: "a", dest: "/a", state: "error", lastRenderAt: 1, error: "cannot write /a" })] });
    expect(r).toEqual({ ready: true, templates: 1, pending: [], failing: [{ file: "a", dest: "/a", state: "error", references: [], error: "cannot write /a" }] });
  });
});
