-- An archive shard (ARCHIVE_SHARDS in wrangler.toml): one more D1 database holding the warm tier of the
-- conversations whose metadata names it (src/db/shards.ts). Only the messages table lives here; accounts and the
-- directory stay in the primary database (DB). This is the final shape of `messages` in migrations/ (0001, 0003,
-- 0004): a change to that table needs a migration in both directories.
CREATE TABLE messages (
  conversation_id TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  id              TEXT NOT NULL,
  sender_id       TEXT NOT NULL,
  client_msg_id   TEXT NOT NULL,
  body            TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  attachments     TEXT,
  reply_to        INTEGER,
  target          INTEGER,
  extra           TEXT,
  PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE INDEX messages_replies ON messages (conversation_id, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_targets ON messages (conversation_id, target, seq) WHERE target IS NOT NULL;
