/**
 * A small typed validator for the config file's shape, with the subset of zod's API the config
 * schema uses (`z.object(...).strict()`, `z.string().min(1)`, `z.union`, `z.enum`, `z.record`,
 * `z.array`, `.optional()`, `.nullable()`, `safeParse`, `z.infer`).
 *
 * Why not zod: importing zod costs about 70–110 ms and 99 module files on every start (bench B0),
 * for a schema of a dozen keys; this is a few hundred microseconds. The issues it reports have
 * zod's shape (`code`, `path`, `message`, `keys` for unknown keys), so the caller names the key
 * and line the same way.
 * @module
 */

/** One validation problem, located by its key path. */
export interface SchemaIssue {
  /** `invalid_type`, `too_small`, `invalid_value`, `invalid_union` or `unrecognized_keys`. */
  readonly code: "invalid_type" | "too_small" | "invalid_value" | "invalid_union" | "unrecognized_keys";
  /** Keys (and list indexes) from the top of the document to the bad value. */
  readonly path: readonly PropertyKey[];
  /** What is wrong, in words; never quotes the value. */
  readonly message: string;
  /** For `unrecognized_keys`: the unknown keys, in document order. */
  readonly keys?: string[];
}

/** The outcome of {@link Schema.safeParse}. */
export type SafeParseResult<T> = { readonly success: true; readonly data: T } | { readonly success: false; readonly error: { readonly issues: readonly SchemaIssue[] } };

type Check<T> = (value: unknown, path: PropertyKey[], issues: SchemaIssue[]) => T;

/** What a value is, in the words of an error message ("a string", "a list", "nothing"). */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return "a number";
  if (typeof value === "boolean") return "a boolean";
  return `a ${typeof value}`;
}

/** A validator of values of type `T`. */
export class Schema<T> {
  /** @internal */
  constructor(
    /** @internal */ readonly check: Check<T>,
    /** What it accepts, for messages ("a string", "one of a, b"). */
    readonly expected: string,
  ) {}

  /** Validates `value`; every issue found is reported (the first one is the one to show). */
  safeParse(value: unknown): SafeParseResult<T> {
    const issues: SchemaIssue[] = [];
    const data = this.check(value, [], issues);
    return issues.length === 0 ? { success: true, data } : { success: false, error: { issues } };
  }

  /** Also accepts `undefined` (a missing key). */
  optional(): Schema<T | undefined> {
    return new Schema<T | undefined>((v, p, i) => (v === undefined ? undefined : this.check(v, p, i)), this.expected);
  }

  /** Also accepts `null` (a key written with no value). */
  nullable(): Schema<T | null> {
    return new Schema<T | null>((v, p, i) => (v === null ? null : this.check(v, p, i)), this.expected);
  }
}

function typeIssue(expected: string, value: unknown, path: PropertyKey[], issues: SchemaIssue[]): void {
  issues.push({ code: "invalid_type", path: [...path], message: `expected ${expected}, got ${describeValue(value)}` });
}

/** A string schema; `min(n)` requires at least `n` characters. */
export class StringSchema extends Schema<string> {
  constructor(private readonly minLength = 0) {
    super((v, p, i) => {
      if (typeof v !== "string") typeIssue("a string", v, p, i);
      else if (v.length < this.minLength) i.push({ code: "too_small", path: [...p], message: this.minLength === 1 ? "must not be empty" : `must be at least ${this.minLength} characters` });
      return v as string;
    }, "a string");
  }

  /** Requires at least `n` characters. */
  min(n: number): StringSchema {
    return new StringSchema(n);
  }
}

type Shape = Readonly<Record<string, Schema<unknown>>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: undefined extends Infer<S[K]> ? K : never }[keyof S];
type ObjectOf<S extends Shape> = { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> };
type Flat<T> = { [K in keyof T]: T[K] };

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A mapping with known keys; `strict()` makes any other key an `unrecognized_keys` issue. */
export class ObjectSchema<S extends Shape> extends Schema<Flat<ObjectOf<S>>> {
  constructor(
    private readonly shape: S,
    private readonly strictKeys = false,
  ) {
    super((v, p, i) => {
      if (!isMapping(v)) {
        typeIssue("a mapping", v, p, i);
        return v as never;
      }
      if (this.strictKeys) {
        const unknown = Object.keys(v).filter((k) => !Object.hasOwn(this.shape, k));
        if (unknown.length > 0) i.push({ code: "unrecognized_keys", path: [...p], message: `unknown key${unknown.length > 1 ? "s" : ""}`, keys: unknown });
      }
      const out: Record<string, unknown> = {};
      for (const [key, schema] of Object.entries(this.shape)) {
        p.push(key);
        const value = schema.check(v[key], p, i);
        p.pop();
        if (value !== undefined) out[key] = value;
      }
      return out as never;
    }, "a mapping");
  }

  /** Refuses keys the shape does not name. */
  strict(): ObjectSchema<S> {
    return new ObjectSchema(this.shape, true);
  }
}

/** The type a schema accepts. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

/** zod-style constructors of {@link Schema}s. */
export const z = {
  string: (): StringSchema => new StringSchema(),
  number: (): Schema<number> =>
    new Schema<number>((v, p, i) => {
      if (typeof v !== "number" || !Number.isFinite(v)) typeIssue("a number", v, p, i);
      return v as number;
    }, "a number"),
  boolean: (): Schema<boolean> =>
    new Schema<boolean>((v, p, i) => {
      if (typeof v !== "boolean") typeIssue("true or false", v, p, i);
      return v as boolean;
    }, "true or false"),
  unknown: (): Schema<unknown> => new Schema<unknown>((v) => v, "anything"),
  enum: <const T extends readonly string[]>(values: T): Schema<T[number]> => {
    const expected = `one of ${values.join(", ")}`;
    return new Schema<T[number]>((v, p, i) => {
      if (typeof v !== "string" || !values.includes(v)) i.push({ code: "invalid_value", path: [...p], message: `must be ${expected}${typeof v === "string" ? "" : ` (got ${describeValue(v)})`}` });
      return v as T[number];
    }, expected);
  },
  /** The first alternative that accepts the value wins; if none does, one `invalid_union` issue. */
  union: <const T extends readonly Schema<unknown>[]>(options: T): Schema<Infer<T[number]>> => {
    const expected = options.map((o) => o.expected).join(" or ");
    return new Schema<Infer<T[number]>>((v, p, i) => {
      for (const o of options) {
        const sub: SchemaIssue[] = [];
        const data = o.check(v, p, sub);
        if (sub.length === 0) return data as Infer<T[number]>;
      }
      i.push({ code: "invalid_union", path: [...p], message: `expected ${expected}, got ${describeValue(v)}` });
      return v as Infer<T[number]>;
    }, expected);
  },
  object: <S extends Shape>(shape: S): ObjectSchema<S> => new ObjectSchema(shape),
  /** A mapping whose every key and value pass the given schemas. */
  record: <V>(key: Schema<string>, value: Schema<V>): Schema<Record<string, V>> =>
    new Schema<Record<string, V>>((v, p, i) => {
      if (!isMapping(v)) {
        typeIssue("a mapping", v, p, i);
        return v as never;
      }
      const out: Record<string, V> = {};
      for (const [k, item] of Object.entries(v)) {
        p.push(k);
        key.check(k, p, i);
        const checked = value.check(item, p, i);
        p.pop();
        // defineProperty: a key named __proto__ stays a plain key, as it is in the document.
        Object.defineProperty(out, k, { value: checked, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }, "a mapping"),
  array: <T>(item: Schema<T>): Schema<T[]> =>
    new Schema<T[]>((v, p, i) => {
      if (!Array.isArray(v)) {
        typeIssue("a list", v, p, i);
        return v as never;
      }
      return v.map((x, n) => {
        p.push(n);
        const checked = item.check(x, p, i);
        p.pop();
        return checked;
      });
    }, "a list"),
};

/** zod-style `z.infer<typeof schema>`. */
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace z {
  /** The type a schema accepts. */
  type infer<S> = Infer<S>;
}
