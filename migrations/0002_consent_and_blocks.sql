-- Consent and blocking (docs/protocol.md 14): who may add a user to groups, and who blocked whom.
-- Read by the Worker when a group is created or members are added, and for presence visibility;
-- never on the message hot path.

-- A user's choice; no row means the deployment's GROUP_ADDS_DEFAULT.
CREATE TABLE privacy_settings (
  user_id    TEXT PRIMARY KEY,
  group_adds TEXT NOT NULL CHECK (group_adds IN ('anyone', 'contacts', 'nobody')),
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE blocks (
  blocker_id TEXT NOT NULL,
  blocked_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);
