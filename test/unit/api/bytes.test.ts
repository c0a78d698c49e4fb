/**
 * Values are bytes: extractValue's encodings (utf8, binary, base64), decode: base64, the store's
 * byte comparison and the byte helpers backends use.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FatalError, SecretNotFoundError } from "../../../src/api/errors.js";
import { decodeBase64, isUnsetValue, sameValue, textOrBytes, utf8Text, valueBytes } from "../../../src/api/bytes.js";
import { extractValue, parseRef, type RefSpec, type ResolvedValue } from "../../../src/api/refs.js";
import type { Secret } from "../../../src/api/backend.js";
import { SecretStore } from "../../../src/sources/store.js";

const INVALID = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80, 0xc3, 0x28, 0x0a]); // hardening item 12's file
const spec = (text: string, extra: Parameters<typeof parseRef>[1] = {}): RefSpec => parseRef(text, extra);
const asBytes = (v: ResolvedValue): Buffer => {
  if (v.kind !== "bytes") throw new Error(`expected bytes, got ${v.kind}`);
  return Buffer.from(v.bytes);
};

describe("byte helpers", () => {
  it("utf8Text decodes strictly and keeps a BOM; textOrBytes returns bytes that are not UTF-8 as they are", () => {
    expect(utf8Text(Buffer.from("\ufeffhé", "utf8"))).toBe("\ufeffhé");
    expect(utf8Text(INVALID)).toBeUndefined();
    expect(textOrBytes(INVALID)).toBe(INVALID);
    expect(textOrBytes(Buffer.from("ok"))).toBe("ok");
  });

  it("every byte string survives textOrBytes → valueBytes unchanged", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(valueBytes(textOrBytes(Buffer.from(b))).equals(Buffer.from(b))).toBe(true);
      }),
    );
  });

  it("sameValue compares bytes, and a string equals its UTF-8 bytes", () => {
    expect(sameValue(Buffer.from([1, 2]), Uint8Array.from([1, 2]))).toBe(true);
    expect(sameValue("é", Buffer.from("é", "utf8"))).toBe(true);
    expect(sameValue(Buffer.from([1, 2]), Buffer.from([1, 3]))).toBe(false);
  });

  it("decodeBase64 is strict: standard or URL-safe, padding optional, whitespace ignored, nothing else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const buf = Buffer.from(b);
        expect(decodeBase64(buf.toString("base64"))!.equals(buf)).toBe(true);
        expect(decodeBase64(buf.toString("base64url"))!.equals(buf)).toBe(true);
        expect(decodeBase64(buf.toString("base64").replace(/(.{8})/g, "$1\n"))!.equals(buf)).toBe(true);
      }),
    );
    for (const bad of ["not base64!", "YQ=", "Y", "YR==", "a+b_", "YQ==YQ==", "\u00e9"]) expect(decodeBase64(bad), bad).toBeUndefined();
  });

  it("isUnsetValue reads empty and the placeholder the same for text and bytes", () => {
    expect(isUnsetValue(Buffer.from(" intentionally-empty\n"))).toBe(true);
    expect(isUnsetValue(Buffer.alloc(0))).toBe(true);
    expect(isUnsetValue(INVALID)).toBe(false);
  });
});

describe("extractValue: encodings", () => {
  it("utf8 (default): a backend's UTF-8 bytes are text, trimmed and parsed as JSON like a string", () => {
    expect(extractValue(spec("file:/x"), { value: Buffer.from(" hé \n") })).toEqual({ kind: "text", text: "hé" });
    expect(extractValue(spec("file:/x#a"), { value: Buffer.from('{"a":"b"}') })).toEqual({ kind: "text", text: "b" });
  });

  it("utf8: bytes that are not UTF-8 stay bytes, untrimmed (hardening item 12: never U+FFFD)", () => {
    expect(asBytes(extractValue(spec("file:/x"), { value: INVALID })).equals(INVALID)).toBe(true);
    expect(() => extractValue(spec("file:/x#a"), { value: INVALID })).toThrow(SecretNotFoundError);
  });

  it("binary: the raw bytes, never trimmed; text that is UTF-8 can still be used inside text", () => {
    const b = spec("file:/x", { encoding: "binary" });
    expect(asBytes(extractValue(b, { value: INVALID })).equals(INVALID)).toBe(true);
    expect(extractValue(b, { value: " a \n" })).toEqual({ kind: "text", text: " a \n" });
    expect(extractValue(spec("file:/x#k", { encoding: "binary" }), { value: '{"k":" v "}' })).toEqual({ kind: "text", text: " v " });
  });

  it("base64: base64 text of the bytes; the default for a backend's binary value (AWS SecretBinary)", () => {
    const bin: Secret = { value: INVALID, binary: true };
    expect(extractValue(spec("awssm:x"), bin)).toEqual({ kind: "text", text: INVALID.toString("base64") });
    expect(extractValue(spec("file:/x", { encoding: "base64" }), { value: INVALID })).toEqual({ kind: "text", text: INVALID.toString("base64") });
    expect(asBytes(extractValue(spec("awssm:x", { encoding: "binary" }), bin)).equals(INVALID)).toBe(true);
    expect(extractValue(spec("awssm:x", { encoding: "utf8" }), { value: Buffer.from("hello"), binary: true })).toEqual({ kind: "text", text: "hello" });
  });

  it("decode: base64 turns base64 text (trimmed, line-wrapped, a #field of JSON) into the bytes", () => {
    const b64 = INVALID.toString("base64");
    expect(asBytes(extractValue(spec("vault:kv/krb#keytab", { decode: "base64" }), { value: JSON.stringify({ keytab: `${b64}\n` }) })).equals(INVALID)).toBe(true);
    expect(asBytes(extractValue(spec("awssm:k", { decode: "base64" }), { value: `  ${b64.slice(0, 4)}\n${b64.slice(4)}\n` })).equals(INVALID)).toBe(true);
    // Decoded bytes that are UTF-8 are text; encoding: base64 after decode gives canonical base64.
    expect(extractValue(spec("awssm:k", { decode: "base64" }), { value: Buffer.from("hi").toString("base64") })).toEqual({ kind: "text", text: "hi" });
    // A binary secret holding base64 text is decoded, not re-encoded.
    expect(asBytes(extractValue(spec("awssm:k", { decode: "base64" }), { value: Buffer.from(b64), binary: true })).equals(INVALID)).toBe(true);
  });

  it("decode: base64 of text that is not base64 is an error naming the reference, never the value", () => {
    let err: unknown;
    try {
      extractValue(spec("vault:kv/krb#keytab", { decode: "base64" }), { value: JSON.stringify({ keytab: "s3cr3t-not-base64!" }) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toBe("vault:kv/krb#keytab: the value is not valid base64 (decode: base64)");
    expect(() => extractValue(spec("file:/k", { decode: "base64" }), { value: INVALID })).toThrow(FatalError);
  });

  it("empty bytes and the placeholder are not set, in every encoding", () => {
    for (const encoding of ["utf8", "binary", "base64"] as const) {
      expect(() => extractValue(spec("file:/x", { encoding }), { value: Buffer.alloc(0) })).toThrow(SecretNotFoundError);
      expect(() => extractValue(spec("file:/x", { encoding }), { value: Buffer.from("intentionally-empty") })).toThrow(SecretNotFoundError);
    }
  });
});

describe("SecretStore: bytes are compared as bytes", () => {
  it("the same bytes in a new Buffer are no change; other bytes or the binary mark are", () => {
    const store = new SecretStore();
    expect(store.set("k", { value: Buffer.from(INVALID) })).toBe(true);
    expect(store.set("k", { value: Buffer.from(INVALID) })).toBe(false);
    expect(store.set("k", { value: Buffer.from(INVALID), binary: true })).toBe(true);
    const other = Buffer.from(INVALID);
    other[3] = 0x42;
    expect(store.set("k", { value: other, binary: true })).toBe(true);
  });
});
