// Attachments of this conversation: who uploaded what, its state, and the byte quota. Owns the
// `attachments` table. The bytes live in R2 under `c/<conversationId>/<attachmentId>` (never the file
// name); the Worker streams them, this module only decides who may and keeps the metadata.
//
// Life of an attachment: `uploading` (a multipart upload is open) → `ready` (all bytes in R2, not yet
// referenced: only its uploader sees it) → `used` (a message references it: every member sees it).
// Uploads never referenced are deleted, bytes and row, 24 hours after they began (the `attachments` job).
import {
  MAX_PENDING_UPLOADS,
  UNREFERENCED_TTL_MS,
  type AttachmentInfo,
  type AttachmentMeta,
  type MessageAttachment,
  type UploadedAttachment,
} from "../../protocol/attachments";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { Job } from "./index";
import type { Meta } from "./meta";

interface AttachmentRow extends Record<string, SqlStorageValue> {
  id: string;
  uploaderId: string;
  name: string;
  size: number;
  contentType: string;
  width: number | null;
  height: number | null;
  preview: string | null;
  /** `expiring`: being collected (never readable or referenceable again). */
  state: UploadedAttachment["state"] | "expiring";
  uploadId: string | null;
  createdAt: number;
}

const COLUMNS = `id, uploader_id AS uploaderId, name, size, content_type AS contentType, width, height, preview, state,
  upload_id AS uploadId, created_at AS createdAt`;

/** Unreferenced uploads deleted per job run (R2 deletes up to 1,000 keys per call). */
const GC_BATCH = 500;

export function attachmentKey(conversationId: string, attachmentId: string): string {
  return `c/${conversationId}/${attachmentId}`;
}

export class Attachments {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #bucket: R2Bucket;
  readonly #jobs: JobRunner<Job>;
  readonly #quotaBytes: number;

  constructor(sql: SqlStorage, meta: Meta, bucket: R2Bucket, jobs: JobRunner<Job>, quotaBytes: number) {
    this.#sql = sql;
    this.#meta = meta;
    this.#bucket = bucket;
    this.#jobs = jobs;
    this.#quotaBytes = quotaBytes;
    jobs.define("attachments", () => this.#collect());
  }

  /**
   * A member starts an upload. The size is reserved against the conversation's quota now, before any
   * byte is stored. Returns the new attachment (state `uploading`) and its R2 key.
   */
  begin(uploaderId: string, meta: AttachmentMeta, now = Date.now()): { attachment: UploadedAttachment; key: string } {
    const pending = this.#sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM attachments WHERE uploader_id = ? AND state != 'used'", uploaderId)
      .one().n;
    if (pending >= MAX_PENDING_UPLOADS) {
      throw new AppError("too_many_uploads", `at most ${MAX_PENDING_UPLOADS} uploads not yet sent in a message, per conversation; send or delete some first`);
    }
    const used = this.#sql.exec<{ bytes: number | null }>("SELECT sum(size) AS bytes FROM attachments").one().bytes ?? 0;
    if (used + meta.size > this.#quotaBytes) {
      throw new AppError("attachment_quota_exceeded", `this conversation holds at most ${this.#quotaBytes} bytes of attachments`);
    }
    const id = `${newId("at", now)}.${this.#meta.id}`;
    this.#sql.exec(
      `INSERT INTO attachments (id, uploader_id, name, size, content_type, width, height, preview, state, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'uploading', ?)`,
      id,
      uploaderId,
      meta.name,
      meta.size,
      meta.contentType,
      meta.width ?? null,
      meta.height ?? null,
      meta.preview ?? null,
      now,
    );
    this.#jobs.ensure("attachments", now + UNREFERENCED_TTL_MS);
    return { attachment: this.#describe(this.#get(id)!), key: attachmentKey(this.#meta.id, id) };
  }

  /** Remember the R2 multipart upload of an attachment still `uploading`. */
  setUploadId(uploaderId: string, id: string, uploadId: string): void {
    this.#own(uploaderId, id, "uploading");
    this.#sql.exec("UPDATE attachments SET upload_id = ? WHERE id = ?", uploadId, id);
  }

  /** The multipart upload of an attachment its uploader is still writing. */
  uploading(uploaderId: string, id: string): { key: string; uploadId: string; size: number; contentType: string } {
    const row = this.#own(uploaderId, id, "uploading");
    if (!row.uploadId) throw new AppError("conflict", "this attachment is not a multipart upload");
    return { key: attachmentKey(this.#meta.id, id), uploadId: row.uploadId, size: row.size, contentType: row.contentType };
  }

  /** Every byte is in R2 (checked by the Worker): the attachment can be referenced. */
  uploaded(uploaderId: string, id: string): UploadedAttachment {
    this.#own(uploaderId, id, "uploading");
    this.#sql.exec("UPDATE attachments SET state = 'ready', upload_id = NULL WHERE id = ?", id);
    return this.#describe(this.#get(id)!);
  }

  /**
   * The uploader takes back an upload no message references (or one that failed). Returns what to delete
   * in R2: the object, or the open multipart upload.
   */
  discard(uploaderId: string, id: string): { key: string; uploadId: string | null } {
    const row = this.#get(id);
    if (!row || row.uploaderId !== uploaderId || row.state === "expiring") throw new AppError("not_found", "no such attachment");
    if (row.state === "used") throw new AppError("conflict", "a message references this attachment; delete the message instead");
    this.#sql.exec("DELETE FROM attachments WHERE id = ?", id);
    return { key: attachmentKey(this.#meta.id, id), uploadId: row.uploadId };
  }

  /**
   * A new message (seq `seq`) by `senderId` references `ids`: each must be this sender's upload in this
   * conversation, completely uploaded and not used by another message. Called inside the message's
   * transaction, so the claim and the message commit together. Returns their metadata in the given order.
   */
  claim(senderId: string, ids: string[], seq: number): { attachments: MessageAttachment[] } | { refused: string } {
    const attachments: MessageAttachment[] = [];
    for (const id of ids) {
      const row = this.#get(id);
      if (!row || row.uploaderId !== senderId || row.state === "expiring") return { refused: `attachment ${id} is not one of your uploads in this conversation` };
      if (row.state === "uploading") return { refused: `attachment ${id} is still uploading; complete it first` };
      if (row.state === "used") return { refused: `attachment ${id} is already in another message; upload it again` };
      const { state: _state, conversationId: _c, uploaderId: _u, createdAt: _t, ...info } = this.#describe(row);
      attachments.push(info);
    }
    this.#sql.exec("UPDATE attachments SET state = 'used', message_seq = ? WHERE id IN (SELECT value FROM json_each(?))", seq, JSON.stringify(ids));
    return { attachments };
  }

  /** Who may read an attachment: any member once a message references it; before that, its uploader only. */
  readable(userId: string, id: string): { attachment: UploadedAttachment; key: string } {
    const row = this.#get(id);
    const visible = row && (row.state === "used" || (row.state === "ready" && row.uploaderId === userId));
    if (!row || !visible) throw new AppError("not_found", "no such attachment");
    return { attachment: this.#describe(row), key: attachmentKey(this.#meta.id, id) };
  }

  #own(uploaderId: string, id: string, state: UploadedAttachment["state"]): AttachmentRow {
    const row = this.#get(id);
    if (!row || row.uploaderId !== uploaderId || row.state === "expiring") throw new AppError("not_found", "no such attachment");
    if (row.state !== state) throw new AppError("conflict", `this attachment is ${row.state}, not ${state}`);
    return row;
  }

  #get(id: string): AttachmentRow | null {
    return this.#sql.exec<AttachmentRow>(`SELECT ${COLUMNS} FROM attachments WHERE id = ?`, id).toArray()[0] ?? null;
  }

  #describe(row: AttachmentRow): UploadedAttachment {
    const info: AttachmentInfo = { id: row.id, name: row.name, size: row.size, contentType: row.contentType };
    if (row.width !== null) info.width = row.width;
    if (row.height !== null) info.height = row.height;
    if (row.preview !== null) info.preview = row.preview;
    return { ...info, conversationId: this.#meta.id, uploaderId: row.uploaderId, createdAt: row.createdAt, state: row.state as UploadedAttachment["state"] };
  }

  /** Messages up to `upTo` were deleted by retention: their attachments go from R2 too. */
  messagesDropped(upTo: number): void {
    if (this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM attachments WHERE message_seq <= ? AND state = 'used'", upTo).one().n === 0) return;
    this.#sql.exec("UPDATE attachments SET state = 'expiring' WHERE message_seq <= ? AND state = 'used'", upTo);
    this.#jobs.ensure("attachments", Date.now());
  }

  /** The message at `seq` was deleted: its attachments go from R2 now (never readable again from this step on). */
  messageDeleted(seq: number): void {
    this.#sql.exec("UPDATE attachments SET state = 'expiring' WHERE message_seq = ?", seq);
    if (this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM attachments WHERE message_seq = ?", seq).one().n > 0) this.#jobs.ensure("attachments", Date.now());
  }

  /**
   * Erasure (protocol 17): up to `limit` more uploads of `userId`, referenced or not, are to go from R2 (the
   * attachments job). Returns how many were marked; 0 once every one is.
   */
  uploaderErased(userId: string, limit: number): number {
    const ids = this.#sql
      .exec<{ id: string }>("SELECT id FROM attachments WHERE uploader_id = ? AND state != 'expiring' LIMIT ?", userId, limit)
      .toArray()
      .map((r) => r.id);
    if (ids.length === 0) return 0;
    this.#sql.exec("UPDATE attachments SET state = 'expiring' WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids));
    this.#jobs.ensure("attachments", Date.now());
    return ids.length;
  }

  /** How many attachments of `userId` are still kept (in any state). */
  uploadsOf(userId: string): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM attachments WHERE uploader_id = ?", userId).one().n;
  }

  /**
   * Delete uploads no message referenced within a day. They are marked `expiring` first, in the same
   * synchronous step that picks them, so no message can reference one while R2 is deleting it; the rows go
   * after R2 (a crash in between only repeats the R2 delete).
   */
  async #collect(): Promise<JobOutcome> {
    const now = Date.now();
    const picked = JSON.stringify(
      this.#sql
        .exec<{ id: string }>("SELECT id FROM attachments WHERE state != 'used' AND created_at <= ? ORDER BY created_at LIMIT ?", now - UNREFERENCED_TTL_MS, GC_BATCH)
        .toArray()
        .map((r) => r.id),
    );
    this.#sql.exec("UPDATE attachments SET state = 'expiring' WHERE id IN (SELECT value FROM json_each(?))", picked);
    const stale = this.#sql
      .exec<{ id: string; uploadId: string | null }>("SELECT id, upload_id AS uploadId FROM attachments WHERE state = 'expiring' LIMIT ?", GC_BATCH)
      .toArray();
    if (stale.length > 0) {
      const conversationId = this.#meta.id;
      await this.#bucket.delete(stale.map((r) => attachmentKey(conversationId, r.id)));
      for (const r of stale.filter((r) => r.uploadId)) {
        await this.#bucket
          .resumeMultipartUpload(attachmentKey(conversationId, r.id), r.uploadId!)
          .abort()
          .catch(() => undefined); // already completed or aborted
      }
      this.#sql.exec("DELETE FROM attachments WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(stale.map((r) => r.id)));
      if (stale.length === GC_BATCH) return { at: now };
    }
    const next = this.#sql.exec<{ at: number | null }>("SELECT min(created_at) AS at FROM attachments WHERE state != 'used'").one().at;
    return next === null ? "done" : { at: next + UNREFERENCED_TTL_MS };
  }
}
