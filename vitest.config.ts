// Tests that run inside workerd (the real runtime, real SQLite Durable Objects, real local D1).
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("migrations");
  return {
    plugins: [
      cloudflareTest({
        main: "./src/worker.ts",
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            AUTH_SECRET: "test-auth-secret-0123456789",
            ADMIN_SECRET: "test-admin-secret",
            // A small hot tail so that tests cross from the object's SQLite into the D1 archive.
            HOT_TAIL_MESSAGES: "20",
            CORS_ORIGINS: "https://app.example.test",
            // Bulk-sending tests would trip the 10/s limit; the limits test installs the default bucket itself.
            SEND_RATE_PER_SECOND: "100000",
            SEND_BURST: "100000",
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      setupFiles: ["./test/setup.ts"],
      testTimeout: 30_000,
    },
  };
});
