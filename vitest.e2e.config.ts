// Node-side end-to-end tests: a real local server (workerd) and real `ws` clients over 127.0.0.1.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    exclude: ["e2e/browser/**", "e2e/large/**", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
