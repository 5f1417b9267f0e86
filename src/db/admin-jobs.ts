// D1 access for admin jobs (table `admin_jobs`, migrations/0005): their status, which outlives the user object
// an erasure wipes. At most one job runs per user (a partial unique index), so starting one is a single
// transaction that either inserts it or finds the one already running.
import type { AdminJob, JobKind, JobProgress } from "../protocol/admin";
import { newId } from "../lib/ids";

interface JobRow {
  id: string;
  kind: JobKind;
  userId: string;
  state: AdminJob["state"];
  progress: string;
  result: string | null;
  createdAt: number;
  updatedAt: number;
}

const COLUMNS = "id, kind, user_id AS userId, state, progress, result, created_at AS createdAt, updated_at AS updatedAt";

export function initialProgress(): JobProgress {
  return { phase: "start", conversations: { done: 0, total: 0 }, messages: 0, reactions: 0 };
}

function toJob(row: JobRow): AdminJob {
  const job: AdminJob = { id: row.id, kind: row.kind, userId: row.userId, state: row.state, progress: JSON.parse(row.progress) as JobProgress, createdAt: row.createdAt, updatedAt: row.updatedAt };
  if (row.result !== null) {
    const result = JSON.parse(row.result) as AdminJob["result"] | { error: NonNullable<AdminJob["error"]> };
    if (result && "error" in result) job.error = result.error;
    else if (result) job.result = result;
  }
  return job;
}

/** Start a job of `kind` for `userId`, or find the job already running for this user (of either kind). */
export async function startJob(db: D1Database, kind: JobKind, userId: string): Promise<{ job: AdminJob; created: boolean }> {
  const now = Date.now();
  const id = newId("job", now);
  const [insert, running] = await db.batch<JobRow>([
    db
      .prepare("INSERT INTO admin_jobs (id, kind, user_id, state, progress, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT DO NOTHING")
      .bind(id, kind, userId, JSON.stringify(initialProgress()), now, now),
    db.prepare(`SELECT ${COLUMNS} FROM admin_jobs WHERE user_id = ? AND state = 'running'`).bind(userId),
  ]);
  const row = running!.results[0];
  if (!row) throw new Error("admin job neither inserted nor found running");
  return { job: toJob(row), created: insert!.meta.changes === 1 };
}

export async function findJob(db: D1Database, id: string): Promise<AdminJob | null> {
  const row = await db.prepare(`SELECT ${COLUMNS} FROM admin_jobs WHERE id = ?`).bind(id).first<JobRow>();
  return row ? toJob(row) : null;
}

/** The job running for `userId`, if any. */
export async function findRunningJob(db: D1Database, userId: string): Promise<AdminJob | null> {
  const row = await db.prepare(`SELECT ${COLUMNS} FROM admin_jobs WHERE user_id = ? AND state = 'running'`).bind(userId).first<JobRow>();
  return row ? toJob(row) : null;
}

/** The newest finished erasure of `userId` (a repeated erase request for a user already erased finds it). */
export async function findErasure(db: D1Database, userId: string): Promise<AdminJob | null> {
  const row = await db
    .prepare(`SELECT ${COLUMNS} FROM admin_jobs WHERE user_id = ? AND kind = 'erase' AND state = 'done' ORDER BY created_at DESC LIMIT 1`)
    .bind(userId)
    .first<JobRow>();
  return row ? toJob(row) : null;
}

/** Record progress of a running job (a finished one is never changed again). */
export async function reportProgress(db: D1Database, id: string, progress: JobProgress): Promise<void> {
  await db.prepare("UPDATE admin_jobs SET progress = ?, updated_at = ? WHERE id = ? AND state = 'running'").bind(JSON.stringify(progress), Date.now(), id).run();
}

/** Finish a job: done with its result, or failed with its error. Idempotent. */
export async function finishJob(db: D1Database, id: string, outcome: { progress: JobProgress } & ({ result: unknown } | { error: { code: string; message: string } })): Promise<void> {
  const state = "error" in outcome ? "failed" : "done";
  const result = "error" in outcome ? { error: outcome.error } : outcome.result;
  await db
    .prepare("UPDATE admin_jobs SET state = ?, progress = ?, result = ?, updated_at = ? WHERE id = ? AND state = 'running'")
    .bind(state, JSON.stringify(outcome.progress), JSON.stringify(result), Date.now(), id)
    .run();
}
