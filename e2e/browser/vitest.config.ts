// Browser end-to-end tests: playwright-core drives Debian's /usr/bin/chromium against the real Worker.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ["**/*.test.ts"],
    // One build and one server for all files (global-setup.ts); each file launches its own Chromium.
    globalSetup: ["./global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 90_000,
    fileParallelism: false,
    reporters: ["verbose"],
  },
});
