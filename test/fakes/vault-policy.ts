/**
 * ACL policies of the fake Vault (docs/concepts/policies): a token's policies name rule sets
 * (`path → capabilities`) the test defines with `setPolicy`; a policy name the fake does not know
 * is read as a path glob (`secret/data/app/*`) granting every ordinary capability — the fake's
 * original, simpler model, which existing tests use. `root` grants everything.
 *
 * Matching follows Vault: all rules of all the token's policies are merged (the same path in two
 * policies unions its capabilities, `deny` wins); then an exact path beats globs, and among globs
 * the "priority matching" rules pick one (the later first wildcard, no trailing `*`, fewer `+`,
 * longer, lexicographically greater). No match, or `deny`, gives `["deny"]`.
 */

/** A capability in a policy rule. */
export type Capability = "create" | "read" | "update" | "patch" | "delete" | "list" | "sudo" | "deny";

/** A policy: path (with optional `+` segments and trailing `*`) → capabilities. */
export type PolicyRules = Readonly<Record<string, readonly Capability[]>>;

const FULL: readonly Capability[] = ["create", "delete", "list", "read", "update"];

/** The merged rules for a set of token policies. */
export function mergedRules(policies: readonly string[], named: ReadonlyMap<string, PolicyRules>): Map<string, Set<Capability>> {
  const out = new Map<string, Set<Capability>>();
  const add = (path: string, caps: readonly Capability[]): void => {
    const set = out.get(path) ?? new Set<Capability>();
    for (const c of caps) set.add(c);
    out.set(path, set);
  };
  for (const p of policies) {
    if (p === "root" || p === "default") continue;
    const rules = named.get(p);
    if (rules) for (const [path, caps] of Object.entries(rules)) add(path, caps);
    else add(p, FULL);
  }
  return out;
}

function matches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith("*");
  const body = glob ? pattern.slice(0, -1) : pattern;
  const re = body
    .split("+")
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]+");
  return new RegExp(`^${re}${glob ? "[\\s\\S]*" : ""}$`).test(path);
}

function firstWildcard(p: string): number {
  const i = [p.indexOf("+"), p.indexOf("*")].filter((x) => x >= 0);
  return i.length ? Math.min(...i) : p.length;
}

/** Vault's priority matching: true when `a` is of lower priority than `b`. */
function lower(a: string, b: string): boolean {
  const wa = firstWildcard(a);
  const wb = firstWildcard(b);
  if (wa !== wb) return wa < wb;
  const sa = a.endsWith("*");
  const sb = b.endsWith("*");
  if (sa !== sb) return sa;
  const pa = a.split("+").length;
  const pb = b.split("+").length;
  if (pa !== pb) return pa > pb;
  if (a.length !== b.length) return a.length < b.length;
  return a < b;
}

/** The capabilities a token with `policies` has on `path`, sorted, as `sys/capabilities-self` reports them. */
export function capabilitiesOn(policies: readonly string[], named: ReadonlyMap<string, PolicyRules>, path: string): string[] {
  if (policies.includes("root")) return ["root"];
  const rules = mergedRules(policies, named);
  let best: string | undefined;
  if (rules.has(path)) best = path;
  else {
    for (const pattern of rules.keys()) {
      if ((pattern.includes("*") || pattern.includes("+")) && matches(pattern, path) && (best === undefined || lower(best, pattern))) best = pattern;
    }
  }
  const caps = best === undefined ? undefined : rules.get(best);
  if (!caps || caps.size === 0 || caps.has("deny")) return ["deny"];
  return [...caps].sort();
}

/** Whether the token may do `op` on `path` (`root` may do anything). */
export function allows(policies: readonly string[], named: ReadonlyMap<string, PolicyRules>, path: string, op: Capability): boolean {
  const caps = capabilitiesOn(policies, named, path);
  return caps.includes("root") || caps.includes(op);
}

/** Path patterns the token has any non-deny rule for (the mounts preflight check). */
export function grantedPatterns(policies: readonly string[], named: ReadonlyMap<string, PolicyRules>): string[] {
  return [...mergedRules(policies, named)].filter(([, caps]) => caps.size > 0 && !caps.has("deny")).map(([p]) => p);
}
