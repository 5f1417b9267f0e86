// `npm run test:large`: the 5,000-member end-to-end run (e2e/large/), kept out of `npm test` (see the file).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { include: ["e2e/large/**/*.test.ts"], testTimeout: 600_000, hookTimeout: 120_000, fileParallelism: false },
});
