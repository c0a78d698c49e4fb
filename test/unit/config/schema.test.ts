import { describe, expect, it } from "vitest";
import { z } from "../../../src/config/schema.js";

const schema = z
  .object({
    name: z.string().min(1).optional(),
    when: z.union([z.string(), z.number()]).optional(),
    level: z.enum(["info", "warn"] as const).optional(),
    sub: z.object({ on: z.boolean().optional() }).strict().optional(),
    sections: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).optional(),
    list: z.array(z.string().min(1)).optional(),
  })
  .strict();

function firstIssue(value: unknown) {
  const r = schema.safeParse(value);
  if (r.success) throw new Error("expected a failure");
  return r.error.issues[0]!;
}

describe("config schema validator", () => {
  it("accepts a valid document and returns only the known keys", () => {
    const r = schema.safeParse({ name: "x", when: 5, level: "warn", sub: { on: true }, sections: { a: null, b: { k: [1] } }, list: ["a"] });
    expect(r).toEqual({ success: true, data: { name: "x", when: 5, level: "warn", sub: { on: true }, sections: { a: null, b: { k: [1] } }, list: ["a"] } });
    expect(schema.safeParse({})).toEqual({ success: true, data: {} });
  });

  it.each([
    [{ nope: 1 }, "unrecognized_keys", [], "unknown key"],
    [{ sub: { off: 1 } }, "unrecognized_keys", ["sub"], "unknown key"],
    [{ name: 3 }, "invalid_type", ["name"], "expected a string, got a number"],
    [{ name: "" }, "too_small", ["name"], "must not be empty"],
    [{ when: [1] }, "invalid_union", ["when"], "expected a string or a number, got a list"],
    [{ level: "loud" }, "invalid_value", ["level"], "must be one of info, warn"],
    [{ level: 1 }, "invalid_value", ["level"], "must be one of info, warn (got a number)"],
    [{ sub: null }, "invalid_type", ["sub"], "expected a mapping, got nothing"],
    [{ sub: { on: "yes" } }, "invalid_type", ["sub", "on"], "expected true or false, got a string"],
    [{ sections: [] }, "invalid_type", ["sections"], "expected a mapping, got a list"],
    [{ sections: { a: 3 } }, "invalid_type", ["sections", "a"], "expected a mapping, got a number"],
    [{ list: ["a", 7] }, "invalid_type", ["list", 1], "expected a string, got a number"],
    [["a"], "invalid_type", [], "expected a mapping, got a list"],
  ])("%j fails with %s at %j", (value, code, path, message) => {
    const issue = firstIssue(value);
    expect(issue.code).toBe(code);
    expect(issue.path).toEqual(path);
    expect(issue.message).toBe(message);
  });

  it("names every unknown key, in document order", () => {
    expect(firstIssue({ b: 1, a: 2, name: "x" }).keys).toEqual(["b", "a"]);
  });

  it("keeps a __proto__ key of a record as a plain key", () => {
    const r = schema.safeParse({ sections: JSON.parse('{"__proto__": {"polluted": true}}') });
    expect(r.success).toBe(true);
    const sections = (r as { data: { sections: Record<string, unknown> } }).data.sections;
    expect(Object.keys(sections)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(sections)).toBe(Object.prototype);
  });
});
