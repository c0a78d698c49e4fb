/**
 * The front matter of issued secrets (SPEC "Issued secrets"): `params` (a map of scalars or lists
 * of scalars), `renew_at`, `private_key: local`, `key_type`, `key_bits` — each error located at
 * file, line, column and field — and the reference's identity (path + params, canonical JSON).
 */
import { describe, expect, it } from "vitest";
import { canonicalParams, refKey } from "../../../src/api/backend.js";
import { TemplateError } from "../../../src/api/errors.js";
import { rejectUnknownOptions } from "../../../src/api/backend-helpers.js";
import { parseTemplate } from "../../../src/templates/parse.js";

const FILE = "/etc/emissary/tls.tpl";

function parse(secret: string): ReturnType<typeof parseTemplate> {
  return parseTemplate(`---\ndest: /run/tls.pem\nsecrets:\n  tls:\n${secret}\n---\n{{tls.certificate}}\n`, { file: FILE, cwd: "/" });
}

function errorOf(secret: string): TemplateError {
  try {
    parse(secret);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateError);
    return err as TemplateError;
  }
  throw new Error("expected a TemplateError");
}

describe("params", () => {
  it("reads a map of scalars and lists of scalars as the write's body", () => {
    const t = parse("    ref: vault:pki/issue/consul-server\n    params:\n      common_name: server.dc1.consul\n      alt_names: [localhost, server.consul]\n      ttl: 72h\n      exclude_cn_from_sans: true\n      key_bits: 256");
    const ref = t.secrets.get("tls")!.ref;
    expect(ref.params).toEqual({ common_name: "server.dc1.consul", alt_names: ["localhost", "server.consul"], ttl: "72h", exclude_cn_from_sans: true, key_bits: 256 });
    expect(ref.options).toEqual({});
  });

  it("is part of the identity: same params in another order are one reference, other params another, a read a third", () => {
    const a = parse("    ref: vault:pki/issue/web\n    params: { common_name: a, ttl: 1h }").secrets.get("tls")!.ref;
    const b = parse("    ref: vault:pki/issue/web\n    params: { ttl: 1h, common_name: a }").secrets.get("tls")!.ref;
    const c = parse("    ref: vault:pki/issue/web\n    params: { ttl: 2h, common_name: a }").secrets.get("tls")!.ref;
    const read = parse("    ref: vault:pki/issue/web").secrets.get("tls")!.ref;
    expect(canonicalParams(a.params!)).toBe('{"common_name":"a","ttl":"1h"}');
    expect(refKey(a)).toBe(refKey(b));
    expect(refKey(a)).not.toBe(refKey(c));
    expect(refKey(read)).toBe("vault:pki/issue/web");
    expect(refKey(a)).toMatch(/^vault:pki\/issue\/web\?params=[0-9a-f]{24}$/);
    // The key shows a hash, never a params value.
    expect(refKey({ backend: "vault", id: "transit/encrypt/k", options: {}, params: { plaintext: "c2VjcmV0" } })).not.toContain("c2VjcmV0");
    // Lists keep their order: [a, b] and [b, a] are different requests.
    expect(canonicalParams({ alt_names: ["a", "b"] })).not.toBe(canonicalParams({ alt_names: ["b", "a"] }));
  });

  it.each([
    ["    ref: vault:pki/issue/web\n    params: common_name=x", 6, 13, "secrets.tls.params", /must be a mapping of parameter: value/],
    ["    ref: vault:pki/issue/web\n    params: [a, b]", 6, 13, "secrets.tls.params", /must be a mapping/],
    ["    ref: vault:pki/issue/web\n    params:\n      san: { a: 1 }", 7, 12, "secrets.tls.params.san", /a parameter must be a string, number or boolean or a list of them \(got a mapping\)/],
    ["    ref: vault:pki/issue/web\n    params:\n      alt_names: [a, [b]]", 7, 22, "secrets.tls.params.alt_names[1]", /a list item must be a string, number or boolean \(got a list\)/],
    ["    ref: vault:pki/issue/web\n    params:\n      ttl:", 7, 11, "secrets.tls.params.ttl", /got nothing/],
    ["    ref: vault:pki/issue/web\n    params:\n      'bad name': 1", 7, 7, "secrets.tls.params", /bad parameter name "bad name"/],
  ])("rejects %j at line %i", (secret, line, column, field, reason) => {
    const err = errorOf(secret);
    expect({ file: err.file, line: err.line, column: err.column, field: err.field }).toEqual({ file: FILE, line, column, field });
    expect(err.reason).toMatch(reason);
  });

  it("is refused by a backend that makes no writes", () => {
    expect(() => rejectUnknownOptions({ backend: "awssm", id: "prod/x", options: {}, params: { a: 1 } }, ["version_stage"])).toThrow(/params \(a write\) are not understood by the awssm backend/);
    expect(() => rejectUnknownOptions({ backend: "vault", id: "pki/issue/x", options: {}, params: { a: 1 } }, ["params"])).not.toThrow();
  });
});

describe("renew_at, private_key, key_type, key_bits", () => {
  it("are options of the reference", () => {
    const t = parse("    ref: vault:pki/sign/web\n    params: { common_name: a }\n    renew_at: 0.8\n    private_key: local\n    key_type: rsa\n    key_bits: 3072");
    expect(t.secrets.get("tls")!.ref.options).toEqual({ renew_at: 0.8, private_key: "local", key_type: "rsa", key_bits: 3072 });
  });

  it.each([
    ["    ref: vault:pki/issue/web\n    params: { common_name: a }\n    renew_at: 0.99", 7, "secrets.tls.renew_at", /number from 0.5 to 0.95.*got 0.99/],
    ["    ref: vault:pki/issue/web\n    params: { common_name: a }\n    renew_at: 0.4", 7, "secrets.tls.renew_at", /from 0.5 to 0.95/],
    ["    ref: vault:pki/issue/web\n    params: { common_name: a }\n    renew_at: soon", 7, "secrets.tls.renew_at", /from 0.5 to 0.95/],
    ["    ref: vault:pki/issue/web\n    renew_at: 0.7", 6, "secrets.tls.renew_at", /goes with params/],
    ["    ref: vault:pki/sign/web\n    params: { common_name: a }\n    private_key: remote", 7, "secrets.tls.private_key", /must be "local"/],
    ["    ref: vault:pki/issue/web\n    params: { common_name: a }\n    private_key: local", 7, "secrets.tls.private_key", /only for a PKI sign path \(pki\/sign\/<role>\), not pki\/issue\/web/],
    ["    ref: vault:ssh/creds/web\n    params: { ip: 10.0.0.1 }\n    private_key: local", 7, "secrets.tls.private_key", /only for a PKI sign path/],
    ["    ref: vault:pki/sign/web\n    params: { common_name: a }\n    key_type: rsa", 7, "secrets.tls.key_type", /goes with private_key: local/],
    ["    ref: vault:pki/sign/web\n    params: { common_name: a }\n    private_key: local\n    key_type: dsa", 8, "secrets.tls.key_type", /must be ec or rsa/],
    ["    ref: vault:pki/sign/web\n    params: { common_name: a }\n    private_key: local\n    key_bits: 1024", 8, "secrets.tls.key_bits", /one of 256, 384, 521 for key_type ec/],
    ["    ref: vault:pki/sign/web\n    params: { common_name: a, csr: x }\n    private_key: local", 7, "secrets.tls.params", /remove csr from params/],
  ])("rejects %j", (secret, line, field, reason) => {
    const err = errorOf(secret);
    expect({ file: err.file, line: err.line, field: err.field }).toEqual({ file: FILE, line, field });
    expect(err.reason).toMatch(reason);
  });

  it("accepts the sign paths of the PKI engine", () => {
    for (const id of ["pki/sign/web", "pki_int/sign/web", "pki/issuer/default/sign/web", "pki/sign-verbatim", "pki/sign-verbatim/web"]) {
      expect(parse(`    ref: vault:${id}\n    params: { common_name: a }\n    private_key: local`).secrets.get("tls")!.ref.options.private_key).toBe("local");
    }
  });
});
