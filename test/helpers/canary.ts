import { randomBytes } from "node:crypto";

/**
 * A secret value that must never appear in anything emissary prints. The global teardown
 * searches every line the daemons printed for the marker "CANARY".
 */
export function canary(label = "secret"): string {
  return `${label}-CANARY-${randomBytes(6).toString("hex")}`;
}
