/**
 * The ssm backend's pure parts: what a reference asks for, how requests are split into
 * GetParameters calls, how a path becomes an object, and how AWS error names are classified.
 */
import { describe, expect, it } from "vitest";
import { SSM_ERRORS, failsPerParameter } from "../../../backends/ssm/errors.js";
import { BATCH_SIZE, chunkRequests } from "../../../backends/ssm/fetcher.js";
import { keepPrevious, pathResult, planRef, toResult, type PathPlan } from "../../../backends/ssm/refs.js";
import { SecretNotFoundError, extractValue, parseRef } from "../../../src/index.js";

const ref = (id: string, options: Record<string, string | number | boolean> = {}) => ({ backend: "ssm", id, options });

describe("planRef", () => {
  it("names, selectors, ARNs and paths", () => {
    expect(planRef(ref("/prod/db"))).toMatchObject({ kind: "parameter", name: "/prod/db", request: "/prod/db", group: "prod/db" });
    expect(planRef(ref("/prod/db", { version: 3 }))).toMatchObject({ selector: "3", request: "/prod/db:3", key: "ssm:/prod/db?version=3" });
    expect(planRef(ref("/prod/db:blue"))).toMatchObject({ name: "/prod/db", selector: "blue", request: "/prod/db:blue", group: "prod/db" });
    const arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db";
    expect(planRef(ref(`${arn}:2`))).toMatchObject({ name: arn, selector: "2", request: `${arn}:2`, group: "prod/db" });
    expect(planRef(ref("/prod/app/"))).toMatchObject({ kind: "path", path: "/prod/app", prefix: "/prod/app/" });
    expect(planRef(ref("/"))).toMatchObject({ kind: "path", path: "/", prefix: "/" });
  });
});

describe("chunkRequests", () => {
  it("at most 10 a call, never two of one parameter in the same call, nothing lost", () => {
    const items = [
      ...Array.from({ length: 23 }, (_, i) => ({ group: `p${i}`, id: `p${i}` })),
      { group: "p1", id: "p1:2" },
      { group: "p1", id: "p1:blue" },
    ];
    const chunks = chunkRequests(items);
    expect(chunks.flat().map((x) => x.id).sort()).toEqual(items.map((x) => x.id).sort());
    for (const c of chunks) {
      expect(c.length).toBeLessThanOrEqual(BATCH_SIZE);
      expect(new Set(c.map((x) => x.group)).size).toBe(c.length);
    }
    expect(chunks).toHaveLength(3);
  });
});

describe("results", () => {
  const plan = planRef(ref("/app/")) as PathPlan;
  const param = (name: string, value: string, version = 1) => ({ name, value, version, lastModifiedMs: 1_700_000_000_000 + version });

  it("a path is an object of relative names, sorted; a parameter named __proto__ stays a key", () => {
    const s = pathResult(plan, [param("/app/z", "1"), param("/app/db/password", "pw"), param("/app/__proto__", "p")]);
    expect(s).not.toBeInstanceOf(Error);
    const secret = s as Exclude<typeof s, Error>;
    expect(secret.value).toBe('{"__proto__":"p","db/password":"pw","z":"1"}');
    expect(Object.getPrototypeOf(secret.data)).toBe(Object.prototype);
    expect(extractValue(parseRef("ssm:/app/#__proto__"), secret)).toEqual({ kind: "text", text: "p" });
    expect(pathResult(plan, [])).toBeInstanceOf(SecretNotFoundError);
  });

  it("the version changes with the parameter's version and last write; the previous Secret is kept when neither did", () => {
    const p = planRef(ref("/x"));
    if (p.kind !== "parameter") throw new Error("expected a parameter");
    const a = toResult(p, param("/x", "v", 1));
    const b = toResult(p, param("/x", "v", 1));
    const c = toResult(p, param("/x", "v", 2));
    expect(keepPrevious(b, a as never)).toBe(a);
    expect(keepPrevious(c, a as never)).toBe(c);
    expect(toResult(p, param("/x", " intentionally-empty "))).toBeInstanceOf(SecretNotFoundError);
  });
});

describe("error classification", () => {
  it("maps Parameter Store and KMS names to what the loop should do", () => {
    const cls = (name: string, status?: number) => SSM_ERRORS.classify({ name, ...(status !== undefined ? { status } : {}) });
    expect(cls("ParameterNotFound")).toBe("not_found");
    expect(cls("ParameterVersionNotFound")).toBe("not_found");
    expect(cls("AccessDeniedException")).toBe("fatal");
    expect(cls("InvalidKeyId")).toBe("fatal");
    expect(cls("KMSAccessDeniedException")).toBe("fatal");
    expect(cls("KMSNewFailureNobodyListed")).toBe("fatal");
    expect(cls("KMSThrottlingException")).toBe("transient");
    expect(cls("ThrottlingException")).toBe("transient");
    expect(cls("InternalServerError", 500)).toBe("transient");
    expect(cls("SomethingUnknown", 503)).toBe("transient");
    expect(cls("SomethingUnknown", 403)).toBe("fatal");
    expect(failsPerParameter("AccessDeniedException")).toBe(true);
    expect(failsPerParameter("KMSDisabledException")).toBe(true);
    expect(failsPerParameter("ThrottlingException")).toBe(false);
    expect(failsPerParameter("ExpiredTokenException")).toBe(false);
  });
});
