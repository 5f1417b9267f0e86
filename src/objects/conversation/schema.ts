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
];
