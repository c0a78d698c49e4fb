/**
 * What a reload command gets, and what is logged of what it prints.
 *
 * - Its environment holds none of emissary's credentials: the whole AWS chain (keys, session
 *   tokens, container-credentials endpoint and authorization token, web identity), Vault tokens,
 *   a password in `VAULT_ADDR`, a path token in `EMISSARY_HTTP_URL`, any URL with a password. A
 *   real command dumps the environment it received and the dump is searched.
 * - A failing command's output tail is logged with every value of its templates' secrets masked —
 *   as they are, base64 and JSON-escaped — even at trace level.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canary } from "../helpers/canary.js";
import { spawnEmissary, tmpDir, waitFor } from "../helpers/e2e.js";
import { startHttpSecrets } from "../helpers/http-secrets.js";

const read = (f: string): string | undefined => (existsSync(f) ? readFileSync(f, "utf8") : undefined);

describe("a reload command's environment", () => {
  it("inherits no AWS-chain credential, Vault token, password in VAULT_ADDR or path token in EMISSARY_HTTP_URL; keeps settings", async () => {
    const dir = tmpDir("emissary-cmdenv2-");
    for (const d of ["tpl", "out"]) mkdirSync(join(dir, d));
    const pathToken = canary("pathtoken").replace(/-/g, "");
    const http = await startHttpSecrets({ [`${pathToken}/app/key`]: canary("httpvalue") });
    const vaultPassword = canary("vaultaddrpass");
    const secretEnv: Record<string, string> = {
      AWS_ACCESS_KEY_ID: canary("akid"),
      AWS_SECRET_ACCESS_KEY: canary("awssecret"),
      AWS_SESSION_TOKEN: canary("awssession"),
      AWS_SECURITY_TOKEN: canary("awssecurity"),
      AWS_CONTAINER_AUTHORIZATION_TOKEN: canary("ecsauth"),
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: `/run/${canary("ecsauthfile")}`,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:9/creds/${canary("fulluri")}`,
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: `/v2/credentials/${canary("reluri")}`,
      AWS_WEB_IDENTITY_TOKEN_FILE: `/var/run/${canary("webidentity")}`,
      VAULT_TOKEN: canary("vaulttoken"),
      VAULT_ADDR: `https://emissary:${vaultPassword}@vault.example:8200`,
      BAO_TOKEN: canary("baotoken"),
      EMISSARY_HTTP_URL: `${http.url}/${pathToken}/`,
      DATABASE_URL: `postgres://app:${canary("dbpass")}@db:5432/app`,
    };
    const dump = join(dir, "env.dump");
    writeFileSync(
      join(dir, "tpl", "app.tpl"),
      `---\ndest: ${join(dir, "out", "app.conf")}\ncommand: ["/bin/sh", "-c", "tr '\\\\0' '\\\\n' < /proc/self/environ > ${dump}.tmp && mv ${dump}.tmp ${dump}"]\nsecrets:\n  h: http:app/key\n---\nh={{h}}\n`,
    );
    const daemon = spawnEmissary(["run", "--templates", join(dir, "tpl")], {
      env: { ...secretEnv, AWS_REGION: "eu-west-1", AWS_PROFILE: "ops", VAULT_NAMESPACE: "team", PLAIN_URL: "https://example.com/healthz", UNRELATED_SETTING: "kept" },
    });
    try {
      await waitFor(() => existsSync(dump), 15_000, "the command ran and dumped its environment");
      const env = read(dump)!;
      const names = new Set(env.split("\n").map((l) => l.slice(0, l.indexOf("="))));
      for (const [name, value] of Object.entries(secretEnv)) {
        expect(names.has(name), `${name} reached the command`).toBe(false);
        expect(env.includes(value), `the value of ${name} reached the command`).toBe(false);
      }
      expect(env).not.toContain(pathToken);
      expect(env).not.toContain(vaultPassword);
      expect(env).not.toContain("CANARY");
      for (const kept of ["AWS_REGION=eu-west-1", "AWS_PROFILE=ops", "VAULT_NAMESPACE=team", "PLAIN_URL=https://example.com/healthz", "UNRELATED_SETTING=kept"]) {
        expect(env.split("\n")).toContain(kept);
      }
    } finally {
      expect((await daemon.stop()).code).toBe(0);
      await http.close();
    }
  }, 60_000);
});

describe("a failing command's output tail", () => {
  it("is logged at trace with every value of its templates' secrets masked: raw, base64, JSON-escaped", async () => {
    const dir = tmpDir("emissary-cmdout-");
    for (const d of ["tpl", "out", "secrets"]) mkdirSync(join(dir, d));
    const password = canary("pw");
    const apiKey = canary("apikey");
    const cert = `-----BEGIN KEY-----\n${canary("pem")}\n-----END KEY-----`;
    const quoted = `${canary("quoted")}"with\\quotes"`;
    writeFileSync(join(dir, "secrets", "db.json"), JSON.stringify({ user: "app", password, nested: { key: apiKey, cert } }));
    writeFileSync(join(dir, "secrets", "q"), quoted);
    // A second template with the same command: one run for both, masking the values of both.
    const other = canary("othertpl");
    writeFileSync(join(dir, "secrets", "other"), other);
    // Both use this one: changing it makes both templates write in one pass, so one command run.
    writeFileSync(join(dir, "secrets", "common"), "c1");
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    // The command prints the values in several forms (printf: dash's echo would read backslashes).
    const script = join(dir, "print.sh");
    writeFileSync(
      script,
      [
        "#!/bin/sh",
        `printf 'raw: %s\\n' "$(cat ${join(dir, "secrets", "db.json")})"`,
        `printf 'b64: %s %s\\n' '${b64(password)}' '${b64(apiKey)}'`,
        `printf 'json: %s\\n' '${JSON.stringify(quoted).slice(1, -1)}'`,
        `cat ${join(dir, "secrets", "q")}; echo`,
        `printf 'other: %s\\n' "$(cat ${join(dir, "secrets", "other")})"`,
        "echo 'reload refused: bad config' >&2",
        "exit 3",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    writeFileSync(
      join(dir, "tpl", "app.tpl"),
      `---\ndest: ${join(dir, "out", "app.conf")}\ncommand: ["${script}"]\nsecrets:\n  db: file:${join(dir, "secrets", "db.json")}\n  pw: file:${join(dir, "secrets", "db.json")}#password\n  q: file:${join(dir, "secrets", "q")}\n  c: file:${join(dir, "secrets", "common")}\n---\n{{db.user}} {{pw}} {{db.nested.key}} {{q}} {{c}}\n`,
    );
    writeFileSync(join(dir, "tpl", "other.tpl"), `---\ndest: ${join(dir, "out", "other.conf")}\ncommand: ["${script}"]\nsecrets:\n  o: file:${join(dir, "secrets", "other")}\n  c: file:${join(dir, "secrets", "common")}\n---\n{{o}} {{c}}\n`);
    const daemon = spawnEmissary(["run", "--templates", join(dir, "tpl"), "--log-level", "trace"]);
    try {
      await daemon.waitForLog((l) => l.msg === "output of the failed command", 15_000, "the output tail at debug");
      writeFileSync(join(dir, "secrets", "common"), "c2");
      const both = (l: Record<string, unknown>): boolean => l.msg === "output of the failed command" && Array.isArray(l.templates) && l.templates.length === 2;
      const line = await daemon.waitForLog(both, 15_000, "one run for both templates");
      const tail = String(line.outputTail);
      expect(tail).toContain("[redacted]");
      expect(tail).toContain("reload refused: bad config"); // what is not a secret value stays readable
      expect(tail).toContain("raw: [redacted]\n"); // the whole object is a value of the template too
      expect(tail).toContain("other: [redacted]\n");
      expect(line.templates).toEqual([join(dir, "tpl", "app.tpl"), join(dir, "tpl", "other.tpl")]);
      for (const v of [password, apiKey, cert, quoted, other, b64(password), b64(apiKey), JSON.stringify(quoted).slice(1, -1)]) {
        expect(tail.includes(v), `a secret form is in the logged tail`).toBe(false);
      }
      expect(tail).not.toContain("CANARY");
      expect(daemon.lines.filter((l) => l.includes("CANARY"))).toEqual([]);
    } finally {
      expect((await daemon.stop()).code).toBe(0);
    }
  }, 60_000);
});
