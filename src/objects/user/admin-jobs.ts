// The admin jobs this user's object runs for its user (docs/protocol.md 17): an export of their data, or their
// erasure. Owns the `admin_jobs` and `job_conversations` tables, and the `admin` job on the object's alarm.
//
// The Worker records a job in D1 (src/db/admin-jobs.ts: the status clients read, which outlives this object's
// storage) and hands it here (`start`). Here it runs in bounded steps on the alarm: each step does one small
// piece (a D1 page, one call to one conversation object, one R2 part) and saves its cursor in this object's
// SQLite before the next, so a crash, an eviction or a deploy resumes where it stopped, and a repeated step
// changes nothing (every step is idempotent). A failing step is retried with the job runner's backoff and its
// error shown in the job's progress; after FAIL_AFTER_MS of failing the job is marked failed. The steps of each
// kind are export.ts and erasure.ts; going through the user's conversations is shared, here.
import type { JobKind, JobProgress } from "../../protocol/admin";
import { finishJob, initialProgress, reportProgress } from "../../db/admin-jobs";
import { listMemberships } from "../../db/memberships";
import { AppError } from "../../lib/errors";
import { backoffDelay } from "../../lib/backoff";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { UserJob } from "./index";
import type { Inbox } from "./inbox";

/** A job as this object keeps it: what the D1 row says, plus where it is. */
export interface LocalJob {
  id: string;
  kind: JobKind;
  userId: string;
  createdAt: number;
  progress: JobProgress;
  cursor: JobCursor;
}

/** Where a job is. Each kind uses the fields of its steps. */
export interface JobCursor {
  /** While listing conversations: which source is being read (the D1 directory, then the inbox's current and left ones), and after which id. */
  list?: { source: ListSource; after: string };
  /** The conversation being worked on, and where in it (export: after seq; erasure: its EraseCursor, as JSON). */
  conversation?: { id: string; after?: number; erase?: unknown };
  /** An export's R2 multipart upload. */
  upload?: { key: string; uploadId: string; parts: R2UploadedPart[] };
  /** Export: lines written (into parts or the buffer); the end line is written; the upload is complete. */
  lines?: number;
  ended?: boolean;
  completed?: { expiresAt: number; bytes: number };
}

/** Where the list of a user's conversations comes from, in this order. */
type ListSource = "directory" | "inbox" | "departed";
const LIST_SOURCES: readonly ListSource[] = ["directory", "inbox", "departed"];

/** What a step asks for next: go on at once, wait (a conversation settling), or the job is finished. */
export type StepOutcome = "more" | "finished" | { waitMs: number };

/** The steps of one kind of job. */
export interface JobSteps {
  step(job: LocalJob): Promise<StepOutcome>;
  /** The job failed for good: release what it holds (an export's upload). */
  abandon(job: LocalJob): Promise<void>;
}

/** Steps one alarm run does at most, and for about how long, before it hands over to the next run. */
const STEPS_PER_RUN = 20;
const RUN_BUDGET_MS = 2_000;
/** Progress is written to D1 at most this often (and at every phase change). */
const REPORT_EVERY_MS = 1_000;
/** A job whose steps keep failing this long is marked failed. */
export const FAIL_AFTER_MS = 24 * 60 * 60_000;
/** Directory rows read per listing step. */
const LIST_PAGE = 500;
const WAIT = { base: 1_000, cap: 60_000, jitter: 0.2 };

export class AdminJobs {
  readonly #storage: DurableObjectStorage;
  readonly #sql: SqlStorage;
  readonly #db: D1Database;
  readonly #jobs: JobRunner<UserJob>;
  readonly #inbox: Inbox;
  readonly #steps: Record<JobKind, JobSteps>;
  #reportedAt = 0;

  constructor(deps: { storage: DurableObjectStorage; db: D1Database; jobs: JobRunner<UserJob>; inbox: Inbox; steps: (jobs: AdminJobs) => Record<JobKind, JobSteps> }) {
    this.#storage = deps.storage;
    this.#sql = deps.storage.sql;
    this.#db = deps.db;
    this.#jobs = deps.jobs;
    this.#inbox = deps.inbox;
    this.#steps = deps.steps(this);
    deps.jobs.define("admin", () => this.#run());
  }

  /** The Worker recorded a job in D1: keep it and run it now. Idempotent (a repeated request only wakes it). */
  start(job: { id: string; kind: JobKind; userId: string; createdAt: number }): void {
    this.#sql.exec(
      "INSERT OR IGNORE INTO admin_jobs (id, kind, user_id, created_at, progress, cursor) VALUES (?, ?, ?, ?, ?, '{}')",
      job.id,
      job.kind,
      job.userId,
      job.createdAt,
      JSON.stringify(initialProgress()),
    );
    // Woken by hand: a job waiting out a backoff tries again now.
    this.#sql.exec("UPDATE admin_jobs SET waits = 0 WHERE id = ?", job.id);
    this.#jobs.ensure("admin", Date.now());
  }

  async #run(): Promise<JobOutcome> {
    const started = Date.now();
    for (let i = 0; i < STEPS_PER_RUN && Date.now() - started < RUN_BUDGET_MS; i++) {
      const job = this.#current();
      if (!job) return "done";
      let outcome: StepOutcome;
      const phase = job.progress.phase;
      try {
        outcome = await this.#steps[job.kind].step(job);
      } catch (err) {
        if (await this.#failing(job, err)) continue; // failed for good: on to the next job, if any
        throw err; // the runner retries with backoff
      }
      if (outcome === "finished") {
        this.#forget(job.id);
        continue;
      }
      delete job.progress.lastError;
      if (typeof outcome !== "object") delete job.progress.waiting;
      const waits = typeof outcome === "object" ? this.#waits(job.id) + 1 : 0;
      this.#save(job, { failingSince: null, waits });
      if (job.progress.phase !== phase || Date.now() - this.#reportedAt >= REPORT_EVERY_MS) await this.report(job);
      if (typeof outcome === "object") return { at: Date.now() + Math.max(outcome.waitMs, backoffDelay(waits, WAIT)) };
    }
    return this.#current() ? { at: Date.now() } : "done";
  }

  /** Record a failed step; true when the job has failed long enough to be given up (then marked failed in D1). */
  async #failing(job: LocalJob, err: unknown): Promise<boolean> {
    const now = Date.now();
    const since = this.#sql.exec<{ s: number | null }>("SELECT failing_since AS s FROM admin_jobs WHERE id = ?", job.id).one().s ?? now;
    const message = String(err instanceof Error ? err.message : err).slice(0, 500);
    const stored = this.#load(job.id)!;
    stored.progress.lastError = { message, at: now };
    this.#save(stored, { failingSince: since, waits: 0 });
    console.warn(JSON.stringify({ at: "admin_job", job: job.id, kind: job.kind, phase: stored.progress.phase, error: message }));
    const final = err instanceof AppError && err.code === "user_not_found";
    if (!final && now - since < FAIL_AFTER_MS) {
      await this.report(stored).catch(() => undefined);
      return false;
    }
    await this.#steps[job.kind].abandon(stored);
    await finishJob(this.#db, job.id, { progress: stored.progress, error: { code: err instanceof AppError ? err.code : "internal_error", message } });
    this.#forget(job.id);
    return true;
  }

  /** Save a step's cursor and progress together with its own writes (`writes`), in one transaction. */
  commit(job: LocalJob, writes: () => void = () => undefined): void {
    this.#storage.transactionSync(() => {
      writes();
      this.#save(job, { failingSince: null, waits: this.#waits(job.id) });
    });
  }

  /** Write the job's progress to its D1 row. */
  async report(job: LocalJob): Promise<void> {
    this.#reportedAt = Date.now();
    await reportProgress(this.#db, job.id, job.progress);
  }

  // ------------------------------------------------------------------ the user's conversations (both kinds)

  /**
   * One listing step: the next page of the D1 directory (where the user is a member), then of the inbox's
   * current and left conversations (one they left still holds their messages). Saves the page and the cursor;
   * returns true once the list is complete (its total is in the progress).
   */
  async list(job: LocalJob): Promise<boolean> {
    const { source, after } = job.cursor.list ?? { source: "directory", after: "" };
    const page =
      source === "directory" ? await listMemberships(this.#db, job.userId, after, LIST_PAGE) : this.#inbox.knownConversations(source, after, LIST_PAGE);
    const nextSource = LIST_SOURCES[LIST_SOURCES.indexOf(source) + 1];
    if (page.length === LIST_PAGE) job.cursor.list = { source, after: page[page.length - 1]! };
    else if (nextSource) job.cursor.list = { source: nextSource, after: "" };
    else delete job.cursor.list;
    this.commit(job, () => {
      for (const id of page) this.#sql.exec("INSERT OR IGNORE INTO job_conversations (job_id, conversation_id) VALUES (?, ?)", job.id, id);
      job.progress.conversations.total = this.#count(job.id, "all");
    });
    return job.cursor.list === undefined;
  }

  /** Add conversations found after the list was made (an erasure's sweep). Returns how many were new. */
  addConversations(job: LocalJob, ids: string[]): number {
    let added = 0;
    for (const id of ids) added += this.#sql.exec("INSERT OR IGNORE INTO job_conversations (job_id, conversation_id) VALUES (?, ?)", job.id, id).rowsWritten > 0 ? 1 : 0;
    job.progress.conversations.total = this.#count(job.id, "all");
    return added;
  }

  /** The conversation to work on next (the current one first), or null when every one is done. */
  nextConversation(job: LocalJob): string | null {
    if (job.cursor.conversation) return job.cursor.conversation.id;
    const row = this.#sql
      .exec<{ id: string }>("SELECT conversation_id AS id FROM job_conversations WHERE job_id = ? AND done = 0 ORDER BY conversation_id LIMIT 1", job.id)
      .toArray()[0];
    if (!row) return null;
    job.cursor.conversation = { id: row.id };
    return row.id;
  }

  /** The current conversation is finished. */
  conversationDone(job: LocalJob): void {
    const id = job.cursor.conversation?.id;
    if (id !== undefined) this.#sql.exec("UPDATE job_conversations SET done = 1 WHERE job_id = ? AND conversation_id = ?", job.id, id);
    delete job.cursor.conversation;
    job.progress.conversations.done = this.#count(job.id, "done");
  }

  /** Whether this job has gone through `conversationId` already. */
  isListed(job: LocalJob, conversationId: string): boolean {
    return this.#sql.exec("SELECT 1 FROM job_conversations WHERE job_id = ? AND conversation_id = ?", job.id, conversationId).toArray().length > 0;
  }

  // ------------------------------------------------------------------ storage of jobs

  #current(): LocalJob | null {
    const row = this.#sql.exec<{ id: string }>("SELECT id FROM admin_jobs ORDER BY created_at, id LIMIT 1").toArray()[0];
    return row ? this.#load(row.id) : null;
  }

  #load(id: string): LocalJob | null {
    const row = this.#sql
      .exec<{ id: string; kind: JobKind; userId: string; createdAt: number; progress: string; cursor: string }>(
        "SELECT id, kind, user_id AS userId, created_at AS createdAt, progress, cursor FROM admin_jobs WHERE id = ?",
        id,
      )
      .toArray()[0];
    if (!row) return null;
    return { id: row.id, kind: row.kind, userId: row.userId, createdAt: row.createdAt, progress: JSON.parse(row.progress) as JobProgress, cursor: JSON.parse(row.cursor) as JobCursor };
  }

  #save(job: LocalJob, state: { failingSince: number | null; waits: number }): void {
    this.#sql.exec(
      "UPDATE admin_jobs SET progress = ?, cursor = ?, failing_since = ?, waits = ? WHERE id = ?",
      JSON.stringify(job.progress),
      JSON.stringify(job.cursor),
      state.failingSince,
      state.waits,
      job.id,
    );
  }

  #waits(id: string): number {
    return this.#sql.exec<{ w: number }>("SELECT waits AS w FROM admin_jobs WHERE id = ?", id).toArray()[0]?.w ?? 0;
  }

  #forget(id: string): void {
    this.#sql.exec("DELETE FROM job_conversations WHERE job_id = ?", id);
    this.#sql.exec("DELETE FROM admin_jobs WHERE id = ?", id);
  }

  #count(jobId: string, which: "all" | "done"): number {
    const where = which === "done" ? "AND done = 1" : "";
    return this.#sql.exec<{ n: number }>(`SELECT count(*) AS n FROM job_conversations WHERE job_id = ? ${where}`, jobId).one().n;
  }
}
