import { describe, expect, it } from "vitest";
import { parseRef } from "../../../src/api/refs.js";
import type { Binding, TemplateEntry } from "../../../src/templates/entry.js";
import { selectReferences, UnknownNameError } from "../../../src/templates/refresh-targets.js";

function entry(file: string, bindings: [name: string, label: string, key: string][]): TemplateEntry {
  const bs: Binding[] = bindings.map(([name, label, key]) => ({ name, label, key, spec: parseRef(label) }));
  return {
    file,
    source: "",
    bindings: bs,
    state: "rendered",
    pending: [],
    hasRendered: true,
    dirty: false,
    failed: false,
    refs: new Map(bs.map((b) => [b.key, { backend: b.key.split(":")[0]!, id: b.key.slice(b.key.indexOf(":") + 1).split("?")[0]!, options: {} }])),
  };
}

const entries = [
  entry("/etc/emissary/nomad.tpl", [
    ["token", "vault:secret/nomad#token", "vault:secret/nomad"],
    ["gossip", "vault:secret/nomad#gossip", "vault:secret/nomad"],
  ]),
  entry("/etc/emissary/consul.tpl", [
    ["gossip", "awssm:prod/consul#gossip", "awssm:prod/consul"],
    ["legacy", "insecure:consul_key", "http:consul_key"],
    ["pending", "awssm:prod/tls", "awssm:prod/tls?version_stage=AWSPENDING"],
  ]),
  entry("/etc/emissary/broken.tpl", []),
];
const keys = (sel: Parameters<typeof selectReferences>[1]): string[] => selectReferences(entries, sel, "/etc/emissary").map((t) => t.key);

describe("selectReferences", () => {
  it("no name: every reference once, in template order, with its templates", () => {
    const all = selectReferences(entries, {}, "/etc/emissary");
    expect(all.map((t) => t.key)).toEqual(["vault:secret/nomad", "awssm:prod/consul", "http:consul_key", "awssm:prod/tls?version_stage=AWSPENDING"]);
    expect(all[0]).toMatchObject({ backend: "vault", templates: ["/etc/emissary/nomad.tpl"] });
  });

  it("a reference as written, without its field, as its key, or by its canonical backend", () => {
    expect(keys({ names: ["vault:secret/nomad#gossip"] })).toEqual(["vault:secret/nomad"]);
    expect(keys({ names: ["vault:secret/nomad"] })).toEqual(["vault:secret/nomad"]);
    expect(keys({ refs: ["http:consul_key"] })).toEqual(["http:consul_key"]);
    expect(keys({ refs: ["insecure:consul_key"] })).toEqual(["http:consul_key"]);
    expect(keys({ refs: ["awssm:prod/tls?version_stage=AWSPENDING"] })).toEqual(["awssm:prod/tls?version_stage=AWSPENDING"]);
  });

  it("a template by path, file name, name without extension, or path relative to the directory", () => {
    for (const n of ["/etc/emissary/consul.tpl", "consul.tpl", "consul"]) {
      expect(keys({ names: [n] })).toEqual(["awssm:prod/consul", "http:consul_key", "awssm:prod/tls?version_stage=AWSPENDING"]);
    }
    expect(keys({ templates: ["nomad"], refs: ["awssm:prod/consul#gossip"] })).toEqual(["vault:secret/nomad", "awssm:prod/consul"]);
    // A template that uses no reference is a known name with nothing to fetch.
    expect(keys({ names: ["broken.tpl"] })).toEqual([]);
  });

  it("names that match nothing are all reported; a reference is not a template name", () => {
    let err: unknown;
    try {
      keys({ names: ["nomad", "vault:secret/other", "nope.tpl"], templates: ["vault:secret/nomad"] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownNameError);
    expect((err as UnknownNameError).names).toEqual(["vault:secret/nomad", "vault:secret/other", "nope.tpl"]);
    expect((err as UnknownNameError).code).toBe("UNKNOWN_NAME");
  });
});
