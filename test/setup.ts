import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The archive shards (wrangler.toml ARCHIVE_SHARDS): only the messages table.
await applyD1Migrations(env.ARCHIVE_1, env.TEST_ARCHIVE_MIGRATIONS);
await applyD1Migrations(env.ARCHIVE_2, env.TEST_ARCHIVE_MIGRATIONS);
