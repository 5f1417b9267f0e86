// SQLite schema of one user object. Forward-only: append a migration, never edit one.
export const USER_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  -- One row per conversation the user is in. unread = last_seq - read_seq (sending marks read).
  CREATE TABLE inbox (
    conversation_id TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    title           TEXT,
    peer_id         TEXT,
    peer_username   TEXT,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    last_sender     TEXT,
    last_preview    TEXT,
    last_at         INTEGER,
    delivered_seq   INTEGER NOT NULL DEFAULT 0,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX inbox_by_activity ON inbox (updated_at DESC, conversation_id DESC);

  -- Conversation sockets of this user, held by conversation objects, as renewable leases.
  CREATE TABLE leases (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;

  -- Users who asked to be told about this user's presence.
  CREATE TABLE subscribers (user_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;

  -- Which of this user's sockets watch whose presence.
  CREATE TABLE watching (socket_key TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (socket_key, user_id)) WITHOUT ROWID;
  CREATE INDEX watching_by_user ON watching (user_id);
  `,
  `
  -- Conversations the user left or was removed from, with when (the conversation's clock): a fan-out
  -- update still in flight for the old membership must not bring the conversation back.
  CREATE TABLE departed (conversation_id TEXT PRIMARY KEY, removed_at INTEGER NOT NULL) WITHOUT ROWID;
  `,
  `
  -- Large conversations are fanned out on read: their row is refreshed from the conversation when read.
  ALTER TABLE inbox ADD COLUMN pull INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- Messages that change (docs/protocol.md 15): change entries take seqs too, so unread is counted in
  -- messages: last_count and read_count are the messages up to last_seq and read_seq (NULL: not told, as by
  -- conversation code from before counts; unread is then last_seq - read_seq). The preview is the newest
  -- message that is not deleted: last_msg_seq may be below last_seq; last_edited_at when its body was edited.
  -- unread_mentions: unread messages from others mentioning this user (or everyone).
  ALTER TABLE inbox ADD COLUMN last_count INTEGER;
  ALTER TABLE inbox ADD COLUMN read_count INTEGER;
  ALTER TABLE inbox ADD COLUMN last_msg_seq INTEGER;
  ALTER TABLE inbox ADD COLUMN last_edited_at INTEGER;
  ALTER TABLE inbox ADD COLUMN unread_mentions INTEGER NOT NULL DEFAULT 0;
  UPDATE inbox SET last_msg_seq = last_seq WHERE last_sender IS NOT NULL;
  `,
  `
  -- Admin jobs this object runs for its user (admin-jobs.ts, docs/protocol.md 17): the job with its cursor and
  -- progress (the status clients read is in D1, admin_jobs), and the conversations it goes through.
  CREATE TABLE admin_jobs (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    progress      TEXT NOT NULL,
    cursor        TEXT NOT NULL,
    failing_since INTEGER,
    waits         INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE job_conversations (
    job_id          TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, conversation_id)
  ) WITHOUT ROWID;
  CREATE INDEX job_conversations_todo ON job_conversations (job_id, done, conversation_id);
  -- An export's bytes not yet in a part of its R2 multipart upload (parts are all one size), in order (export.ts);
  -- and finished export files, deleted from R2 when their link expires.
  CREATE TABLE export_chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, data BLOB NOT NULL);
  CREATE TABLE export_files (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
  `,
];
