// Tests that run inside workerd (the real runtime, real SQLite Durable Objects, real local D1).
// The fault tests restart one conversation object at a time (ctx.abort(), test/helpers.ts), never every
// object in the process, so they run beside the others.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type ViteUserConfig } from "vitest/config";

export async function workerdConfig(files: { include: string[]; exclude: string[]; parallel: boolean }): Promise<ViteUserConfig> {
  const migrations = await readD1Migrations("migrations");
  const archiveMigrations = await readD1Migrations("migrations-archive");
  return {
    plugins: [
      cloudflareTest({
        main: "./src/worker.ts",
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            TEST_ARCHIVE_MIGRATIONS: archiveMigrations,
            AUTH_SECRET: "test-auth-secret-0123456789",
            // At least 32 characters, or the admin API refuses to serve (src/routes/admin.ts).
            ADMIN_SECRET: "test-admin-secret-0123456789abcdef",
            // A small hot tail so that tests cross from the object's SQLite into the D1 archive.
            HOT_TAIL_MESSAGES: "20",
            CORS_ORIGINS: "https://app.example.test",
            // Bulk-sending tests would trip the 10/s limit; the limits test installs the default bucket itself.
            SEND_RATE_PER_SECOND: "100000",
            SEND_BURST: "100000",
            // Small enough that the quota test reaches it with a few declared sizes.
            ATTACHMENT_QUOTA_BYTES: String(64 * 1024 * 1024),
            // Most tests put strangers in groups and create many conversations; the consent and quota tests set
            // a user's setting themselves (PATCH /v1/me/settings) and install small buckets (UserObject.quotas).
            GROUP_ADDS_DEFAULT: "anyone",
            CREATE_CONVERSATIONS_BURST: "100000",
            MEMBER_CHANGES_BURST: "100000",
            PRESENCE_SUBSCRIBES_BURST: "100000",
            // Small, so that a test's bulk add is sent over many events (test/member-changes-paced-*.test.ts).
            MEMBER_FRAMES_SLICE_BYTES: "16384",
          },
          // The per-address admin budget is 6,000 a minute in wrangler.toml; 200 here so that one test can spend
          // it (test/admin-api-long-secret-and-rate-limits.test.ts). Other tests mint from random addresses.
          ratelimits: { ADMIN_LIMITER: { simple: { limit: 200, period: 60 } } },
        },
      }),
    ],
    test: {
      include: files.include,
      exclude: files.exclude,
      fileParallelism: files.parallel,
      setupFiles: ["./test/setup.ts"],
      testTimeout: 30_000,
      // Console output from Durable Objects goes straight to workerd's stdout instead of through vitest's
      // interceptor, which forwards a log line with cross-object I/O that never completes when the object that
      // logs was just aborted, and the run then hangs (cloudflare/workers-sdk#14180, fixed only in pool
      // versions that need Node 22).
      disableConsoleIntercept: true,
    },
  };
}

export default defineConfig(() => workerdConfig({ include: ["test/**/*.test.ts"], exclude: [], parallel: true }));
