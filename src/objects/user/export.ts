// The steps of an export job (docs/protocol.md 17; the job itself is admin-jobs.ts): one NDJSON file in R2
// (HISTORY, exports/<userId>/<jobId>.ndjson) with a line for the export, the account, each conversation the user
// is or was in, each message they sent (current state, every tier, seq order per conversation), each reaction they
// have, and an end line. Owns the `export_chunks` and `export_files` tables and the `export_cleanup` job.
//
// The file is written as an R2 multipart upload, so it is never whole in memory: lines go to `export_chunks` in
// the same transaction as the cursor that produced them, and every PART_BYTES of them become one part (R2 wants
// every part but the last to be the same size, at least 5 MiB). A part is uploaded before its bytes leave the
// table, under a part number fixed by the parts before it, so a crash in between only uploads the same part again.
// The upload's id and its parts are in the job's cursor: a resumed job continues the same upload.
import type { ExportLine } from "../../protocol/admin";
import { findUserById } from "../../db/users";
import { listBlocks, MAX_BLOCKS, ownGroupAdds } from "../../db/privacy";
import { finishJob } from "../../db/admin-jobs";
import { AppError, unwrap } from "../../lib/errors";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { conversationStub } from "../shared/stubs";
import type { AdminJobs, JobSteps, LocalJob, StepOutcome } from "./admin-jobs";
import type { UserJob } from "./index";

/** Every part but the last: R2's minimum part size (its parts must all be one size). */
export const PART_BYTES = 5 * 1024 * 1024;
/** Expired export files deleted per cleanup run (R2 deletes up to 1,000 keys a call). */
const CLEANUP_BATCH = 500;

export function exportKey(userId: string, jobId: string): string {
  return `exports/${userId}/${jobId}.ndjson`;
}

export class ExportSteps implements JobSteps {
  readonly #env: Env;
  readonly #sql: SqlStorage;
  readonly #admin: AdminJobs;
  readonly #jobs: JobRunner<UserJob>;
  readonly #ttlSeconds: () => number;

  constructor(deps: { env: Env; sql: SqlStorage; admin: AdminJobs; jobs: JobRunner<UserJob>; ttlSeconds: () => number }) {
    this.#env = deps.env;
    this.#sql = deps.sql;
    this.#admin = deps.admin;
    this.#jobs = deps.jobs;
    this.#ttlSeconds = deps.ttlSeconds;
    deps.jobs.define("export_cleanup", () => this.#cleanup());
  }

  get #bucket(): R2Bucket {
    return this.#env.HISTORY;
  }

  async step(job: LocalJob): Promise<StepOutcome> {
    // A part may be ready from the step before (written, then a crash before its upload).
    if (job.cursor.upload && !job.cursor.completed) await this.#uploadFullParts(job);
    switch (job.progress.phase) {
      case "start":
        return this.#begin(job);
      case "account":
        return this.#account(job);
      case "list":
        if (await this.#admin.list(job)) job.progress.phase = "conversations";
        this.#admin.commit(job);
        return "more";
      case "conversations":
        return this.#conversation(job);
      case "finish":
        return this.#finish(job);
      default:
        throw new Error(`an export has no phase ${job.progress.phase}`);
    }
  }

  async abandon(job: LocalJob): Promise<void> {
    const upload = job.cursor.upload;
    if (upload) await this.#bucket.resumeMultipartUpload(upload.key, upload.uploadId).abort().catch(() => undefined);
    this.#sql.exec("DELETE FROM export_chunks WHERE job_id = ?", job.id);
  }

  /** Open the upload and write the first line. */
  async #begin(job: LocalJob): Promise<StepOutcome> {
    const key = exportKey(job.userId, job.id);
    const upload = await this.#bucket.createMultipartUpload(key, {
      httpMetadata: { contentType: "application/x-ndjson; charset=utf-8" },
      customMetadata: { user: job.userId, job: job.id },
    });
    job.cursor.upload = { key, uploadId: upload.uploadId, parts: [] };
    job.cursor.lines = 0;
    job.progress.bytes = 0;
    job.progress.phase = "account";
    this.#admin.commit(job, () => this.#write(job, [{ type: "export", format: 1, jobId: job.id, userId: job.userId, createdAt: job.createdAt }]));
    return "more";
  }

  /** The account: never its password hash, only whether it has one. */
  async #account(job: LocalJob): Promise<StepOutcome> {
    const db = this.#env.DB;
    const user = await findUserById(db, job.userId);
    if (!user) throw new AppError("user_not_found", "the user no longer exists");
    const [groupAdds, blocks] = await Promise.all([ownGroupAdds(db, job.userId), listBlocks(db, job.userId, MAX_BLOCKS)]);
    const line: ExportLine = {
      type: "account",
      id: user.id,
      username: user.username,
      createdAt: user.createdAt,
      passwordSet: user.passwordHash !== null,
      settings: { groupAdds },
      blocks: blocks.map((b) => ({ userId: b.userId, blockedAt: b.blockedAt })),
    };
    job.progress.phase = "list";
    this.#admin.commit(job, () => this.#write(job, [line]));
    return "more";
  }

  /** One page of one conversation (conversation/member-data.ts exportPage). */
  async #conversation(job: LocalJob): Promise<StepOutcome> {
    const id = this.#admin.nextConversation(job);
    if (id === null) {
      job.progress.phase = "finish";
      this.#admin.commit(job);
      return "more";
    }
    const after = job.cursor.conversation?.after ?? 0;
    const page = await unwrap(conversationStub(this.#env, id).exportMember(job.userId, after));
    const lines: ExportLine[] = [];
    const c = page.conversation;
    if (c) {
      lines.push({ type: "membership", conversationId: c.id, conversationType: c.type, title: c.title, createdAt: c.createdAt, createdBy: c.createdBy, role: c.role, joinedAt: c.joinedAt });
    }
    for (const m of page.messages) lines.push({ type: "message", conversationId: id, ...m });
    for (const r of page.reactions) lines.push({ type: "reaction", conversationId: id, ...r });
    job.progress.messages += page.messages.length;
    job.progress.reactions += page.reactions.length;
    if (page.next === null) this.#admin.conversationDone(job);
    else job.cursor.conversation = { id, after: page.next };
    this.#admin.commit(job, () => this.#write(job, lines));
    return "more";
  }

  /** The end line, the last part, the upload completed; then the job is done in D1 with its file. */
  async #finish(job: LocalJob): Promise<StepOutcome> {
    const upload = job.cursor.upload!;
    let completed = job.cursor.completed;
    if (!completed) {
      if (!job.cursor.ended) {
        job.cursor.ended = true;
        this.#admin.commit(job, () => this.#write(job, [{ type: "end", lines: (job.cursor.lines ?? 0) + 1 }]));
        await this.#uploadFullParts(job);
      }
      const rest = this.#buffered(job.id);
      if (rest > 0) await this.#uploadPart(job, rest);
      const r2 = this.#bucket.resumeMultipartUpload(upload.key, upload.uploadId);
      const object = await r2.complete(upload.parts).catch(async (err: unknown) => {
        // Completed before a crash: the object is there (an upload completes once).
        const head = await this.#bucket.head(upload.key);
        if (head && head.customMetadata?.job === job.id) return head;
        throw err;
      });
      completed = { expiresAt: Date.now() + this.#ttlSeconds() * 1000, bytes: object.size };
      job.cursor.completed = completed;
      const expiresAt = completed.expiresAt;
      this.#admin.commit(job, () => this.#sql.exec("INSERT OR REPLACE INTO export_files (key, expires_at) VALUES (?, ?)", upload.key, expiresAt));
      this.#jobs.ensure("export_cleanup", expiresAt);
    }
    job.progress.bytes = completed.bytes;
    await finishJob(this.#env.DB, job.id, { progress: job.progress, result: { expiresAt: completed.expiresAt, bytes: completed.bytes, lines: job.cursor.lines ?? 0 } });
    return "finished";
  }

  /** Append lines to the buffer (call inside the commit that saves the cursor which produced them). */
  #write(job: LocalJob, lines: ExportLine[]): void {
    if (lines.length === 0) return;
    const bytes = new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    this.#sql.exec("INSERT INTO export_chunks (job_id, data) VALUES (?, ?)", job.id, bytes.slice().buffer);
    job.cursor.lines = (job.cursor.lines ?? 0) + lines.length;
    job.progress.bytes = (job.progress.bytes ?? 0) + bytes.byteLength;
  }

  #buffered(jobId: string): number {
    return this.#sql.exec<{ n: number | null }>("SELECT sum(length(data)) AS n FROM export_chunks WHERE job_id = ?", jobId).one().n ?? 0;
  }

  async #uploadFullParts(job: LocalJob): Promise<void> {
    while (this.#buffered(job.id) >= PART_BYTES) await this.#uploadPart(job, PART_BYTES);
  }

  /** Upload the first `size` buffered bytes as the next part; then they leave the buffer, with the part in the cursor. */
  async #uploadPart(job: LocalJob, size: number): Promise<void> {
    const upload = job.cursor.upload!;
    const part = new Uint8Array(size);
    let filled = 0;
    let lastId = 0;
    let rest: Uint8Array | null = null;
    for (const row of this.#sql.exec<{ id: number; data: ArrayBuffer }>("SELECT id, data FROM export_chunks WHERE job_id = ? ORDER BY id", job.id)) {
      const data = new Uint8Array(row.data);
      const take = Math.min(data.byteLength, size - filled);
      part.set(data.subarray(0, take), filled);
      filled += take;
      lastId = row.id;
      if (filled === size) {
        rest = data.subarray(take);
        break;
      }
    }
    const partNumber = upload.parts.length + 1;
    const uploaded = await this.#bucket.resumeMultipartUpload(upload.key, upload.uploadId).uploadPart(partNumber, part);
    upload.parts.push({ partNumber: uploaded.partNumber, etag: uploaded.etag });
    this.#admin.commit(job, () => {
      this.#sql.exec("DELETE FROM export_chunks WHERE job_id = ? AND id < ?", job.id, lastId);
      if (rest && rest.byteLength > 0) this.#sql.exec("UPDATE export_chunks SET data = ? WHERE id = ?", rest.slice().buffer, lastId);
      else this.#sql.exec("DELETE FROM export_chunks WHERE id = ?", lastId);
    });
  }

  /** Delete export files whose link has expired. */
  async #cleanup(): Promise<JobOutcome> {
    const now = Date.now();
    const due = this.#sql.exec<{ key: string }>("SELECT key FROM export_files WHERE expires_at <= ? LIMIT ?", now, CLEANUP_BATCH).toArray().map((r) => r.key);
    if (due.length > 0) {
      await this.#bucket.delete(due);
      for (const key of due) this.#sql.exec("DELETE FROM export_files WHERE key = ?", key);
      if (due.length === CLEANUP_BATCH) return { at: now };
    }
    const next = this.#sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM export_files").one().at;
    return next === null ? "done" : { at: next };
  }
}
