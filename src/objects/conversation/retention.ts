// Retention: messages older than the period in force (the conversation's own `retention_days`, else the
// deployment's RETENTION_DAYS; 0 keeps everything) are deleted from every tier. A step of the archive job
// (archive.ts), so it never interleaves with archiving, rewrites or moves to R2.
// The floor (meta `retained_from`) is raised first and only ever goes up: from that moment no read serves
// anything below it (tiers.ts, history.ts). Then the work toward the floor is done in bounded steps, each
// resumable because it compares what is stored with the floor: hot rows, reactions, mentions and attachments
// here; segments in R2 (segments.ts); rows in D1 (the archive job's clear step).
import type { HistoryArchive } from "../../db/archive";
import type { Attachments } from "./attachments";
import type { Meta } from "./meta";
import type { ColdSegments } from "./segments";
import type { MessageStream } from "./stream";

const DAY_MS = 86_400_000;
/** How often the floor is recomputed (it moves by days; each look may read D1 once). */
const FLOOR_CHECK_MS = 60 * 60_000;
/** Seqs deleted per step. */
const DROP_BATCH = 2_000;

export class Retention {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #stream: MessageStream;
  readonly #d1: () => HistoryArchive;
  readonly #cold: ColdSegments;
  readonly #attachments: () => Attachments;
  readonly #limits: { retentionDays: number };
  #checkAt = 0;

  constructor(parts: {
    sql: SqlStorage;
    meta: Meta;
    stream: MessageStream;
    d1: () => HistoryArchive;
    cold: ColdSegments;
    attachments: () => Attachments;
    limits: { retentionDays: number };
  }) {
    this.#sql = parts.sql;
    this.#meta = parts.meta;
    this.#stream = parts.stream;
    this.#d1 = parts.d1;
    this.#cold = parts.cold;
    this.#attachments = parts.attachments;
    this.#limits = parts.limits;
  }

  /** The conversation's own period (days; 0 = forever), or null when it follows the deployment's. */
  get own(): number | null {
    const own = this.#meta.get("retention_days");
    return own === null ? null : Number(own);
  }

  /** The period in force, in days; 0: forever. */
  get days(): number {
    return this.own ?? this.#limits.retentionDays;
  }

  active(): boolean {
    return this.days > 0;
  }

  /** Set the conversation's own period (null: follow the deployment). Takes effect at the next run, which it schedules. */
  set(days: number | null): void {
    if (days === null) this.#meta.remove("retention_days");
    else this.#meta.set("retention_days", String(days));
    this.#checkAt = 0;
  }

  /** One step: raise the floor if due, then delete a bounded batch below it. Returns true if more work remains. */
  async run(): Promise<boolean> {
    const days = this.days;
    const now = Date.now();
    if (days > 0 && now >= this.#checkAt) {
      this.#checkAt = now + FLOOR_CHECK_MS;
      // Only what D1 already has (so nothing is deleted before it could ever be archived), up to the newest too old.
      const cut = Math.min(await this.#newestBefore(now - days * DAY_MS), this.#meta.archivedSeq);
      if (cut >= this.#meta.retainedFrom) {
        this.#meta.advance("retained_from", cut + 1);
        console.log(JSON.stringify({ at: "retention", conversation: this.#meta.id, days, retainedFrom: cut + 1 }));
      }
    }
    // Deleting toward the floor: `retention_done` says how far it got.
    const target = this.#meta.retainedFrom - 1;
    const done = this.#meta.retentionDone;
    if (done >= target) return false;
    const to = Math.min(target, done + DROP_BATCH);
    const oldest = this.#stream.oldestHotSeq();
    if (oldest !== null && oldest <= to) this.#stream.prune(to);
    this.#sql.exec("DELETE FROM reactions WHERE seq <= ?", to);
    this.#sql.exec("DELETE FROM mentions WHERE seq <= ?", to);
    this.#sql.exec("DELETE FROM deleted_messages WHERE seq <= ?", to);
    this.#attachments().messagesDropped(to);
    await this.#cold.dropThrough(to);
    this.#meta.advance("retention_done", to);
    return to < target;
  }

  /** The newest seq created before `time` in any tier (0: none). Rows are in seq order, and so in time order. */
  async #newestBefore(time: number): Promise<number> {
    const hot = this.#stream.newestBefore(time);
    if (hot > 0) return hot;
    const oldestHot = this.#stream.oldestHotSeq();
    if (oldestHot !== null && oldestHot <= this.#meta.retainedFrom) return 0;
    const warm = await this.#d1().newestBefore(this.#meta.id, time);
    if (warm > 0) return warm;
    return this.#cold.newestBefore(time);
  }
}
