import { describe, expect, it } from "vitest";
import type { ResolvedValue } from "../../../src/api/refs.js";
import { changedNames, fingerprints } from "../../../src/templates/changes.js";
import { canary } from "../../helpers/canary.js";

const text = (t: string): ResolvedValue => ({ kind: "text", text: t });

describe("change reports", () => {
  it("names what changed since the last write, never values; every name on the first write", () => {
    const token = canary("token");
    const [g1, g2] = [canary("gossip1"), canary("gossip2")];
    const before = fingerprints(new Map([["token", text(token)], ["gossip", text(g1)], ["tls", { kind: "object", text: '{"a":1}', data: { a: 1 } }]]));
    const after = fingerprints(new Map([["token", text(token)], ["gossip", text(g2)], ["tls", { kind: "object", text: '{"a":1}', data: { a: 1 } }]]));
    expect(changedNames(before, after)).toEqual(["gossip"]);
    expect(changedNames(after, after)).toEqual([]);
    expect(changedNames(undefined, after)).toEqual(["token", "gossip", "tls"]);
    // A name new to the template counts as changed.
    expect(changedNames(new Map([["token", before.get("token")!]]), before)).toEqual(["gossip", "tls"]);
    expect(JSON.stringify([...before, ...after])).not.toContain("CANARY");
  });
});
