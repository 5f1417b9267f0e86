// Which D1 database holds a conversation's warm tier. The archive is spread over the D1 databases named in
// ARCHIVE_SHARDS (bindings in wrangler.toml); a new conversation picks one by a stable hash of its id and
// records the binding's name in its metadata (meta `d1_shard`), and from then on only that record counts.
// Adding a shard later changes where new conversations go, never where an existing one is. Conversations
// created before sharding have no record and archive into the primary database, `DB` (LEGACY_SHARD).
// Accounts and the directory always stay in DB.

/** Where conversations that predate sharding keep their archive. */
export const LEGACY_SHARD = "DB";

/** FNV-1a (32 bit) of the id's UTF-16 code units: stable across runtimes and releases, well spread for random ids. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The shard a new conversation archives into: by hash over the shards configured when it is created. */
export function pickShard(conversationId: string, shards: readonly string[]): string {
  if (shards.length === 0) return LEGACY_SHARD;
  return shards[fnv1a(conversationId) % shards.length]!;
}

/** The D1 database bound as `name`; throws (the caller's job retries, reads answer `unavailable`) when it is not bound. */
export function shardDatabase(env: Env, name: string): D1Database {
  const db = (env as unknown as Record<string, unknown>)[name];
  if (!isD1(db)) throw new Error(`archive shard ${name} is not a D1 binding of this Worker (wrangler.toml [[d1_databases]])`);
  return db;
}

function isD1(value: unknown): value is D1Database {
  return typeof value === "object" && value !== null && typeof (value as D1Database).prepare === "function" && typeof (value as D1Database).batch === "function";
}
