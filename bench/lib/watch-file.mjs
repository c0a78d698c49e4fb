// @ts-check
/**
 * Waits until a file holds an expected text, reacting to inotify events on its directory (so
 * the wait adds well under a millisecond) with a slow poll as a safety net for a missed event.
 * @module
 */
import { watch, readFileSync } from "node:fs";
import { basename, dirname } from "node:path";

/**
 * Watches one file; `until(text)` resolves with performance.now() at the moment the file was
 * seen holding `text`.
 */
export class FileWaiter {
  /** @type {import("node:fs").FSWatcher} */
  #fsw;
  /** @type {{ text: string, resolve: (r: { t: number, viaPoll: boolean }) => void } | undefined} */
  #want;
  /** @type {NodeJS.Timeout | undefined} */
  #poll;
  #path;

  /** @param {string} path - the file (its directory must exist) */
  constructor(path) {
    this.#path = path;
    const name = basename(path);
    this.#fsw = watch(dirname(path), (_ev, f) => {
      if (f === null || f === name) this.#check(false);
    });
  }

  /** @param {boolean} viaPoll */
  #check(viaPoll) {
    if (!this.#want) return;
    let text;
    try {
      text = readFileSync(this.#path, "utf8");
    } catch {
      return;
    }
    if (text === this.#want.text) {
      const w = this.#want;
      this.#want = undefined;
      clearInterval(this.#poll);
      w.resolve({ t: performance.now(), viaPoll });
    }
  }

  /**
   * @param {string} text - expected content
   * @param {number} timeoutMs
   * @returns {Promise<{ t: number, viaPoll: boolean }>} performance.now() when seen, and whether the
   *   safety-net poll (not an inotify event) saw it — then `t` may be late by up to 250 ms
   */
  until(text, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#want = undefined;
        clearInterval(this.#poll);
        reject(new Error(`${this.#path} did not get the expected content within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#want = {
        text,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
      this.#poll = setInterval(() => this.#check(true), 250);
      this.#check(false);
    });
  }

  close() {
    clearInterval(this.#poll);
    this.#fsw.close();
  }
}
