// SQLite schema of one conversation object. Forward-only: append a migration, never edit one.
export const CONVERSATION_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  CREATE TABLE members (
    user_id   TEXT PRIMARY KEY,
    username  TEXT NOT NULL,
    role      TEXT NOT NULL,
    joined_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- The hot tail. seq is assigned here: max(seq) + 1, in the same synchronous turn as the insert.
  CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL,
    sender_id     TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX messages_idempotency ON messages (sender_id, client_msg_id);

  -- Idempotency keys of messages pruned from the hot tail (they live on in D1), kept forever
  -- so that a resend is recognised however late it comes.
  CREATE TABLE pruned_client_ids (
    sender_id     TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    id            TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (sender_id, client_msg_id)
  ) WITHOUT ROWID;

  -- Directory writes to D1 (conversation row, membership), applied in id order by the alarm.
  CREATE TABLE d1_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    statements TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  `
  -- Per-member receipt cursors (monotonic), and members whose cursors changed since the last fan-out.
  ALTER TABLE members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE members ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE dirty_members (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL);
  `,
  `
  -- Large conversations (fan-out on read): user objects with a user socket open that asked for live events.
  CREATE TABLE inbox_listeners (user_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  -- Large conversations: the newest seq a member's inbox was sent for a push; none again until they read it.
  ALTER TABLE members ADD COLUMN pushed_seq INTEGER NOT NULL DEFAULT 0;
  -- Members whose presence lease this object holds in their user object (one per user, not per socket).
  CREATE TABLE presence_held (user_id TEXT PRIMARY KEY, renewed_at INTEGER NOT NULL) WITHOUT ROWID;
  `,
  `
  -- pruned_client_ids keeps only the newest IDEMPOTENCY_KEYS_KEPT keys: this index finds the oldest to drop.
  CREATE INDEX pruned_client_ids_seq ON pruned_client_ids (seq);
  `,
  `
  -- Attachments (attachments.ts): metadata and state; the bytes are in R2 under c/<conversation>/<id>.
  CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    uploader_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    width        INTEGER,
    height       INTEGER,
    preview      TEXT,
    state        TEXT NOT NULL,
    upload_id    TEXT,
    created_at   INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX attachments_by_uploader ON attachments (uploader_id, state);
  `,
  `
  -- Attachments a message references (JSON array of protocol 13.1 objects, without state), null when none.
  ALTER TABLE messages ADD COLUMN attachments TEXT;
  ALTER TABLE attachments ADD COLUMN message_seq INTEGER;
  `,
  `
  -- Messages that change (changes.ts, docs/protocol.md 15). A row of messages is an entry of the stream: a
  -- message, or a change entry (edit, delete, reaction) naming its target. n counts messages (not change
  -- entries) up to this seq: unread counts are differences of n. Rows stored before this migration are all
  -- messages, and n IS NULL means n = seq. extra is the JSON of the entry's other wire fields (replyTo,
  -- mentions, edited, deleted, reaction counts, replies, change), rewritten as the message changes.
  ALTER TABLE messages ADD COLUMN n INTEGER;
  ALTER TABLE messages ADD COLUMN reply_to INTEGER;
  ALTER TABLE messages ADD COLUMN target INTEGER;
  ALTER TABLE messages ADD COLUMN extra TEXT;
  CREATE INDEX messages_by_reply_to ON messages (reply_to, seq) WHERE reply_to IS NOT NULL;
  CREATE INDEX messages_by_target ON messages (target, seq) WHERE target IS NOT NULL;
  ALTER TABLE pruned_client_ids ADD COLUMN n INTEGER;

  -- Who reacted with what, for every message in every tier (the counts are also in the message's extra).
  -- entry_seq is the change entry that added it.
  CREATE TABLE reactions (
    seq        INTEGER NOT NULL,
    emoji      TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    entry_seq  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (seq, emoji, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX reactions_by_user ON reactions (user_id, seq);

  -- Who a message mentions ('*' for mentionsAll), for unread mention counts. Dropped when the message is deleted.
  CREATE TABLE mentions (
    user_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    sender_id TEXT NOT NULL,
    PRIMARY KEY (user_id, seq)
  ) WITHOUT ROWID;

  -- Rows already in D1 that changed since (archive.ts applies them after each batch, in id order):
  -- kind 'row' rewrites seq's body, attachments and extra to row (JSON); kind 'quote' sets replyTo (JSON in
  -- row) on every archived reply to seq. Reads of the archive overlay what is still here.
  CREATE TABLE d1_rewrites (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    seq  INTEGER NOT NULL,
    row  TEXT NOT NULL
  );
  CREATE INDEX d1_rewrites_by_seq ON d1_rewrites (seq, kind);
  `,
  `
  -- Messages deleted (changes.ts): a deleted message is not unread, so a member's read position counts the
  -- deleted messages after it as read (fanout.ts, docs/protocol.md 12.5).
  CREATE TABLE deleted_messages (seq INTEGER PRIMARY KEY);
  `,
  `
  -- The cold tier (segments.ts): immutable gzip NDJSON segments in R2 (HISTORY), one index row each. A rewrite
  -- writes a new version under a new key; keys no longer (or not yet) indexed wait in r2_garbage to be deleted.
  -- cold_replies: which cold rows reply to which parent (a parent's new quote rewrites their segments).
  CREATE TABLE segments (
    first_seq  INTEGER PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    key        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    oldest_at  INTEGER NOT NULL,
    newest_at  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX segments_by_last ON segments (last_seq);
  CREATE TABLE cold_replies (parent INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (parent, seq)) WITHOUT ROWID;
  CREATE INDEX cold_replies_by_seq ON cold_replies (seq);
  CREATE TABLE r2_garbage (key TEXT PRIMARY KEY) WITHOUT ROWID;
  `,
];
