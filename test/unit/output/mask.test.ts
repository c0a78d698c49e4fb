import { describe, expect, it } from "vitest";
import { MASK, maskOutput, secretForms, storedTexts, valueTexts } from "../../../src/output/mask.js";
import { CommandQueue, type CommandEvent } from "../../../src/output/commands.js";
import { silentLogger } from "../../../src/observe/log.js";
import { canary } from "../../helpers/canary.js";

describe("maskOutput", () => {
  it("masks a value as it is, base64 (padded, unpadded, URL-safe), JSON-escaped, HTML-escaped and with CRLF", () => {
    const v = `${canary("v")}"<a&b>/?\n+line`;
    const forms = secretForms([v]);
    const b64 = Buffer.from(v).toString("base64");
    const printed = [v, b64, b64.replace(/=+$/, ""), Buffer.from(v).toString("base64url"), JSON.stringify(v).slice(1, -1), v.replace(/\n/g, "\r\n")];
    for (const p of printed) expect(maskOutput(`before ${p} after`, forms)).toBe(`before ${MASK} after`);
    expect(maskOutput("nothing secret here", forms)).toBe("nothing secret here");
  });

  it("masks a value containing another one whole (longest first)", () => {
    const inner = canary("inner");
    const outer = `${inner}-and-more`;
    expect(maskOutput(`x ${outer} y ${inner}`, secretForms([inner, outer]))).toBe(`x ${MASK} y ${MASK}`);
  });

  it("masks the end of a value at the start of the text (the tail was cut inside it)", () => {
    const v = canary("cut");
    expect(maskOutput(`${v.slice(7)} rest of the output`, secretForms([v]))).toBe(`${MASK} rest of the output`);
    expect(maskOutput(`${v.slice(-3)} three characters are not a value's end`, secretForms([v]))).toBe(`${v.slice(-3)} three characters are not a value's end`);
  });

  it("withholds the whole text when it contains a value too short to mask", () => {
    const out = maskOutput("exit status 42 after 3 tries", secretForms(["42"]));
    expect(out).not.toContain("42");
    expect(out).toMatch(/withheld/);
    expect(maskOutput("no short value here", secretForms(["42"]))).toBe("no short value here");
  });

  it("valueTexts: the value and the string and number leaves of an object; not true/false/null", () => {
    const key = canary("leaf");
    const data = { user: "app", key, pin: 123456, on: true, port: 1, none: null, nested: { list: [" padded-value "] } };
    const texts = valueTexts({ kind: "object", text: JSON.stringify(data), data });
    expect(texts).toEqual(expect.arrayContaining([JSON.stringify(data), key, "123456", " padded-value ", "padded-value"]));
    expect(texts).not.toContain("true");
    expect(texts).not.toContain("1");
    expect(valueTexts({ kind: "json", text: "false", data: false })).toEqual([]);
    expect(valueTexts({ kind: "json", text: "0", data: 0 })).toEqual(["0"]);
  });
});

describe("CommandQueue masks a failing command's output", () => {
  it("in the command event and in the debug line, with the values of every template of the job", async () => {
    const a = canary("a");
    const b = canary("b");
    const lines: Record<string, unknown>[] = [];
    const logger = silentLogger();
    const capture = { ...logger, child: () => capture, debug: (o: Record<string, unknown>) => lines.push(o), warn: () => undefined } as unknown as typeof logger;
    const events: CommandEvent[] = [];
    const q = new CommandQueue({ logger: capture, env: { PATH: process.env.PATH }, onDone: (e) => events.push(e) });
    // One run for two templates (the runner merges a pass's identical commands and their values).
    q.enqueue([{ argv: ["/bin/sh", "-c", `printf '%s %s\\n' '${a}' '${b}'; exit 1`], timeoutMs: 10_000, templates: ["x.tpl", "y.tpl"], mask: [a, b] }]);
    await q.whenIdle();
    expect(events).toHaveLength(1);
    expect(events[0]!.outputTail).toBe(`${MASK} ${MASK}\n`);
    const tail = lines.find((l) => "outputTail" in l);
    expect(tail?.outputTail).toBe(`${MASK} ${MASK}`);
  });

  it("masks every other value emissary holds too (a command may print another template's file), without withholding for short ones", async () => {
    const mine = canary("mine");
    const theirs = canary("theirs");
    const field = canary("field");
    const events: CommandEvent[] = [];
    const q = new CommandQueue({
      logger: silentLogger(),
      env: { PATH: process.env.PATH },
      onDone: (e) => events.push(e),
      otherSecrets: () => [...storedTexts({ value: `  ${theirs}\n` }), ...storedTexts({ value: JSON.stringify({ user: "app", pw: field, port: 1 }) }), ...storedTexts({ value: "42" })],
    });
    q.enqueue([{ argv: ["/bin/sh", "-c", `printf '%s %s %s port 42\\n' '${mine}' '${theirs}' '${field}'; exit 1`], timeoutMs: 10_000, templates: ["x.tpl"], mask: [mine] }]);
    await q.whenIdle();
    expect(events[0]!.outputTail).toBe(`${MASK} ${MASK} ${MASK} port 42\n`);
  });
});
