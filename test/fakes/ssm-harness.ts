/**
 * Test harness for the ssm backend: builds it with a captured logger (see aws-harness.ts), and
 * small helpers to call fetchMany.
 */
import createSsmBackend, { type SsmBackend } from "../../backends/ssm.js";
import type { Secret, SecretRef } from "../../src/index.js";
import type { CapturedLog } from "./aws-harness.js";

export { CapturedLog, fetchCtx } from "./aws-harness.js";

/** An `ssm:` reference. */
export function ssmRef(id: string, options: SecretRef["options"] = {}): SecretRef {
  return { backend: "ssm", id, options };
}

/** Builds an ssm backend with `config` and `env`, logging into `log`. */
export function makeSsm(log: CapturedLog, config: Record<string, unknown>, env: Record<string, string | undefined> = {}): SsmBackend {
  return createSsmBackend({ config, env, logger: log.logger });
}

/** Calls fetchMany with a fresh signal. */
export function fetchAll(b: SsmBackend, log: CapturedLog, refs: readonly SecretRef[], previous: ReadonlyMap<string, Secret> = new Map()): Promise<Map<string, Secret | Error>> {
  return b.fetchMany!(refs, { signal: new AbortController().signal, logger: log.logger, previous });
}

/** The results of a fetchMany that resolved, for passing back as `previous`. */
export function resolved(out: ReadonlyMap<string, Secret | Error>): Map<string, Secret> {
  const m = new Map<string, Secret>();
  for (const [k, v] of out) if (!(v instanceof Error)) m.set(k, v);
  return m;
}
