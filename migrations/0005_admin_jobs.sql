-- Admin jobs (docs/protocol.md 17): exporting one user's data, erasing one user. The status lives here, in the
-- primary database, so it outlives the user object an erasure wipes; the work and its cursor live in that user
-- object (src/objects/user/admin-jobs.ts). At most one job runs per user at a time (the partial unique index):
-- a repeated request finds the running one instead of starting another.
CREATE TABLE admin_jobs (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL CHECK (kind IN ('export', 'erase')),
  user_id    TEXT NOT NULL,
  state      TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  progress   TEXT NOT NULL,   -- JSON: JobProgress (src/protocol/admin.ts)
  result     TEXT,            -- JSON, once done: what the job produced (a failed job: its error)
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX admin_jobs_one_running ON admin_jobs (user_id) WHERE state = 'running';
CREATE INDEX admin_jobs_by_user ON admin_jobs (user_id, kind, created_at);
