import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Runs this example's own tests: `npx vitest run --config examples/custom-backend/vitest.config.ts`
// from the repository, or `npx vitest run` in a copy of this directory.
export default defineConfig({
  test: {
    root: dirname(fileURLToPath(import.meta.url)),
    include: ["*.test.ts"],
    testTimeout: 20_000,
  },
});
