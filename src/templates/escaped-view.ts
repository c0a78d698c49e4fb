/**
 * What mustache.js is given besides the tokens: a Writer that keeps per-secret escaping and
 * binary values right, and the view nodes that carry them.
 *
 * mustache.js calls one escape function with the value alone, so a secret's own `escape:` mode
 * is carried by its view: every primitive of such a secret becomes an {@link Escaped} node (its
 * `toString` is the raw text, for `{{{name}}}`), every object and array of it is registered with
 * its mode, and the escape callback asks the view before applying the template's mode. A node
 * is an object, so it would always be truthy: the Writer reads a falsy one (`""`, `false`, `0`,
 * `null`) as its primitive when it decides a section, so falsy values stay falsy. A JSON `null`
 * interpolates as `null`, as `false` and `0` do as their JSON text.
 *
 * A value that is not UTF-8 text becomes a {@link BinaryValue} node: present (truthy) for
 * sections, but turning it into text — anywhere but as the whole template — is an
 * {@link EscapeError} naming the secret.
 * @module
 */
import Mustache from "mustache";
import { ESCAPERS, EscapeError, type EscapeMode } from "./escape.js";

/** A primitive of a secret with its own escape mode. */
interface Escaped {
  readonly primitive: unknown;
  readonly escape: (text: string) => string;
}

/** Everything one render needs to recognise its view nodes. */
export class RenderView {
  readonly #escaped = new WeakMap<object, Escaped>();
  readonly #modes = new WeakMap<object, (text: string) => string>();
  readonly #binary = new WeakSet<object>();
  readonly #template: (text: string) => string;

  constructor(mode: EscapeMode) {
    this.#template = ESCAPERS[mode];
  }

  /** The escape callback for mustache.js: the node's own mode, else the template's. */
  readonly escape = (value: unknown): string => {
    if (value !== null && typeof value === "object") {
      const e = this.#escaped.get(value);
      if (e) return e.escape(String(value));
      const mode = this.#modes.get(value);
      if (mode) return mode(String(value));
    }
    return this.#template(String(value));
  };

  /** The value mustache.js should test for a section: a node's primitive, else the value. */
  truthValue(value: unknown): unknown {
    if (value !== null && typeof value === "object") {
      const e = this.#escaped.get(value);
      if (e) return e.primitive;
    }
    return value;
  }

  /**
   * The view of a secret with its own mode: primitives become {@link Escaped} nodes, objects and
   * arrays are copied (with their `toString`) and the copies registered with the mode.
   */
  withMode(value: unknown, mode: EscapeMode): unknown {
    return this.#wrap(value, ESCAPERS[mode], new Set());
  }

  #wrap(value: unknown, escape: (text: string) => string, path: Set<object>): unknown {
    if (value === undefined) return undefined;
    if (value === null || typeof value !== "object") {
      const node = Object.create(null) as object;
      // JSON null interpolates as its JSON text, like false and 0 (SPEC: JSON types are kept).
      const text = String(value);
      Object.defineProperty(node, "toString", { value: () => text, enumerable: false });
      this.#escaped.set(node, { primitive: value, escape });
      return node;
    }
    if (path.has(value)) return undefined; // a cycle: cut it, as the view's copy does
    path.add(value);
    let out: Record<string, unknown> | unknown[];
    if (Array.isArray(value)) out = value.map((item: unknown) => this.#wrap(item, escape, path));
    else {
      const obj = Object.create(null) as Record<string, unknown>;
      for (const [k, v] of Object.entries(value)) obj[k] = this.#wrap(v, escape, path);
      out = obj;
    }
    path.delete(value);
    const own = Object.getOwnPropertyDescriptor(value, "toString");
    const text = own && typeof own.value === "function" ? (own.value as () => string).bind(value) : () => jsonText(value);
    Object.defineProperty(out, "toString", { value: text, enumerable: false });
    this.#modes.set(out, escape);
    return out;
  }

  /** A node for a value that is not UTF-8 text; using it as text throws `message`. */
  binary(message: string): object {
    const node = Object.create(null) as object;
    const fail = (): never => {
      throw new EscapeError(message);
    };
    Object.defineProperty(node, "toString", { value: fail, enumerable: false });
    this.#binary.add(node);
    return node;
  }

  /** Whether `value` is a {@link binary} node. */
  isBinary(value: unknown): boolean {
    return value !== null && typeof value === "object" && this.#binary.has(value);
  }
}

function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return "";
  }
}

/** The RenderView of the render in progress (rendering is synchronous: one at a time). */
let current: RenderView | undefined;

/** Runs `fn` with `view` as the render in progress. */
export function withView<T>(view: RenderView, fn: () => T): T {
  const outer = current;
  current = view;
  try {
    return fn();
  } finally {
    current = outer;
  }
}

/** A context whose first lookup (the section's own name) reads falsy nodes as their primitives. */
function truthful(context: Mustache.Context, view: RenderView): Mustache.Context {
  const c = Object.create(context) as Mustache.Context & { lookup: (name: string) => unknown };
  c.lookup = (name: string): unknown => {
    // Only the section's own lookup: afterwards the ordinary lookup (inherited) applies again.
    delete (c as { lookup?: unknown }).lookup;
    const v = context.lookup(name) as unknown;
    const primitive = view.truthValue(v);
    return primitive ? v : primitive;
  };
  return c;
}

/**
 * mustache.js's Writer with sections that see falsy {@link Escaped} nodes as falsy, and an
 * {@link EscapeError} of an escaper named by the tag it happened at.
 */
export class EmissaryWriter extends Mustache.Writer {
  override renderSection(token: string[], context: Mustache.Context, partials?: Mustache.PartialsOrLookupFn, originalTemplate?: string, config?: Mustache.RenderOptions): string {
    return current ? super.renderSection(token, truthful(context, current), partials, originalTemplate, config) : super.renderSection(token, context, partials, originalTemplate, config);
  }

  override renderInverted(token: string[], context: Mustache.Context, partials?: Mustache.PartialsOrLookupFn, originalTemplate?: string, config?: Mustache.RenderOptions): string {
    return current ? super.renderInverted(token, truthful(context, current), partials, originalTemplate, config) : super.renderInverted(token, context, partials, originalTemplate, config);
  }

  override escapedValue(token: string[], context: Mustache.Context, config?: Mustache.RenderOptions): string {
    // A JSON null is there: it interpolates as `null` (mustache.js would print nothing).
    if (context.lookup(token[1]!) === null) return config?.escape ? config.escape("null") : "null";
    try {
      return super.escapedValue(token, context, config);
    } catch (err) {
      if (err instanceof EscapeError && current && !current.isBinary(context.lookup(token[1]!))) throw new EscapeError(`{{${token[1]}}}: ${err.reason}`);
      throw err;
    }
  }

  override unescapedValue(token: string[], context: Mustache.Context): string {
    if (context.lookup(token[1]!) === null) return "null";
    return super.unescapedValue(token, context);
  }
}
