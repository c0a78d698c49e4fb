// @ts-check
/**
 * B5's agent process: N emissary instances — the real library (createEmissary: scheduler,
 * store, runner, writer, the awssm backend with its own SDK client each) — in one Node process,
 * started at random moments within the boot window. Driven by the bench over IPC:
 *
 *   parent → { type: "go", agents, bootSeconds, root, work, config }
 *   child  → { type: "started", i, t } | { type: "write", i, template, t } | { type: "error", i, message }
 *   parent → { type: "stop" }  → child stops every agent and exits
 *
 * Not a module to import: run it with an IPC channel.
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

if (!process.send) throw new Error("fleet-agents.mjs must be started with an IPC channel");
const send = /** @type {(m: unknown) => void} */ (process.send.bind(process));

/** @type {any[]} */
const agents = [];
/** @type {NodeJS.Timeout[]} */
const timers = [];

process.on("message", async (/** @type {any} */ msg) => {
  if (msg.type === "go") {
    const lib = await import(pathToFileURL(join(msg.root, "dist/src/index.js")).href);
    const logger = lib.silentLogger();
    for (let i = 0; i < msg.agents; i++) {
      const delay = Math.random() * msg.bootSeconds * 1000;
      timers.push(
        setTimeout(async () => {
          try {
            const e = await lib.createEmissary({ templates: join(msg.work, `a${i}`, "tpl"), config: msg.config, cwd: join(msg.work, `a${i}`), logger, watch: false });
            e.on("write", (/** @type {{ template: string }} */ ev) => send({ type: "write", i, template: ev.template, t: Date.now() }));
            agents.push(e);
            send({ type: "started", i, t: Date.now() });
            await e.start();
          } catch (err) {
            send({ type: "error", i, message: /** @type {Error} */ (err).message });
          }
        }, delay),
      );
    }
  } else if (msg.type === "stop") {
    for (const t of timers) clearTimeout(t);
    await Promise.all(agents.map((a) => a.stop().catch(() => undefined)));
    process.exit(0);
  }
});
