// The archive job: the one writer of the tiers below the hot tail, so its steps never interleave. Each run:
//   1. copies the next batch of the stream to D1 in seq order (idempotently: a retried batch that already
//      landed changes nothing), checks that D1 now holds exactly these messages at these seqs, and advances
//      `archived_seq` (never backwards);
//   2. prunes the hot tail (by count, and by age with HOT_TAIL_DAYS), but only behind archived_seq, so nothing
//      is ever only in neither place;
//   3. applies queued rewrites (edits, deletes, reactions, quotes) to D1 and to cold segments (rewrites.ts);
//   4. moves rows past the warm window from D1 into an R2 segment (segments.ts), and deletes them from D1
//      only once the segment is indexed;
//   5. enforces retention (retention.ts) and deletes replaced segment objects.
// D1 or R2 being down only delays it (the hot tail keeps everything meanwhile); D1 holding other messages at
// our seqs stops it, loudly. Each run also measures the object's storage (capacity.ts), so the ceiling is
// current while the archive cannot catch up.
import { ArchiveConflict, type HistoryArchive } from "../../db/archive";
import type { Config } from "../../lib/config";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { Capacity } from "./capacity";
import type { Job } from "./index";
import type { Meta } from "./meta";
import type { Retention } from "./retention";
import type { D1Rewrites } from "./rewrites";
import type { ColdSegments } from "./segments";
import type { MessageStream } from "./stream";

/** New messages wait this long so one D1 batch carries many. */
const ARCHIVE_DELAY_MS = 250;
const ARCHIVE_BATCH = 500;
const PRUNE_BATCH = 2_000;
/** After a conflict the job stops; it looks again this much later (an operator may have repaired D1 meanwhile). */
const CONFLICT_RECHECK_MS = 5 * 60_000;
/** With age bounds (HOT_TAIL_DAYS, WARM_DAYS, retention), an idle conversation looks for rows that aged out at most this often... */
const AGE_CHECK_MS = 24 * 60 * 60_000;
/** ... and at least this long apart. */
const AGE_CHECK_MIN_MS = 60 * 60_000;
const DAY_MS = 86_400_000;
/** A segment short of SEGMENT_MESSAGES waits this long past the warm window before it is cut. */
const PARTIAL_SEGMENT_WAIT_MS = 7 * DAY_MS;

export type ArchiveLimits = Pick<Config, "hotTailMessages" | "hotTailDays" | "warmDays" | "warmMessages" | "segmentMessages">;

export class Archiver {
  readonly #meta: Meta;
  readonly #stream: MessageStream;
  readonly #jobs: JobRunner<Job>;
  readonly #d1: () => HistoryArchive;
  readonly #limits: ArchiveLimits;
  readonly #capacity: Capacity;
  readonly #rewrites: D1Rewrites;
  readonly #cold: ColdSegments;
  readonly #retention: Retention;
  /** Set when D1 was found holding other messages at our seqs: new messages do not wake the job before this. */
  #haltedUntil = 0;
  /** No row of the warm tier was old enough to move at the last look: look again (by age) after this. */
  #coldCheckAt = 0;

  constructor(parts: {
    meta: Meta;
    stream: MessageStream;
    jobs: JobRunner<Job>;
    d1: () => HistoryArchive;
    limits: ArchiveLimits;
    capacity: Capacity;
    rewrites: D1Rewrites;
    cold: ColdSegments;
    retention: Retention;
  }) {
    this.#meta = parts.meta;
    this.#stream = parts.stream;
    this.#jobs = parts.jobs;
    this.#d1 = parts.d1;
    this.#limits = parts.limits;
    this.#capacity = parts.capacity;
    this.#rewrites = parts.rewrites;
    this.#cold = parts.cold;
    this.#retention = parts.retention;
    parts.jobs.define("archive", () => this.#run());
  }

  /** New messages were committed: archive them soon. Costs nothing when already scheduled. */
  schedule(): void {
    if (Date.now() < this.#haltedUntil) return;
    this.#jobs.ensure("archive", Date.now() + ARCHIVE_DELAY_MS);
  }

  /** Run the job until it has nothing left to do now (ops, tests, verify). Stops early if D1 or R2 fails. */
  async flushAll(): Promise<{ archivedSeq: number; lastSeq: number; coldSeq: number }> {
    this.#coldCheckAt = 0;
    for (let i = 0; i < 10_000; i++) {
      const before = this.#progress();
      const rewriting = this.#rewrites.hasPending();
      await this.#jobs.runNow("archive");
      if (this.#progress() === before && !rewriting) break;
    }
    return { archivedSeq: this.#meta.archivedSeq, lastSeq: this.#stream.lastSeq, coldSeq: this.#cold.coldSeq };
  }

  #progress(): string {
    return [this.#meta.archivedSeq, this.#stream.oldestHotSeq(), this.#cold.coldSeq, this.#meta.retainedFrom, this.#cold.stats().segments].join();
  }

  async #run(): Promise<JobOutcome> {
    this.#capacity.measure();
    const more = [await this.#archiveNew(), this.#prune()];
    // Rewrites first: a row moved to R2 below carries every change queued before it was read.
    more.push(await this.#rewrites.apply(this.#d1(), this.#meta.id, this.#cold));
    more.push(await this.#moveCold(), await this.#retention.run(), await this.#clearWarm(), await this.#cold.collectGarbage());
    this.#capacity.measure();
    if (Date.now() < this.#haltedUntil) return { at: this.#haltedUntil };
    if (more.some(Boolean)) return { at: Date.now() };
    const next = this.#nextAgeCheck();
    return next === null ? "done" : { at: next };
  }

  /** Step 1: copy the next batch of unarchived entries to D1. Returns true if more wait. */
  async #archiveNew(): Promise<boolean> {
    const archived = this.#meta.archivedSeq;
    const rows = this.#stream.archiveRows(archived, ARCHIVE_BATCH);
    if (rows.length === 0) return false;
    let upTo = rows[rows.length - 1]!.message.seq;
    try {
      // A failure throws: everything stays, and the job runner retries with backoff. Nothing is dropped.
      await this.#d1().writeMessages(this.#meta.id, rows);
    } catch (err) {
      if (!(err instanceof ArchiveConflict)) throw err;
      // Rows below the first conflict are verified; nothing at or above it is pruned. Loud: this needs a person.
      upTo = err.seqs[0]! - 1;
      this.#haltedUntil = Date.now() + CONFLICT_RECHECK_MS;
      console.error(
        JSON.stringify({
          at: "archive_conflict",
          conversation: this.#meta.id,
          seqs: err.seqs.slice(0, 20),
          conflicts: err.seqs.length,
          archivedSeq: Math.max(archived, upTo),
          action: "archive and pruning stopped: D1 holds other messages at these seqs (storage restored?); compare and repair D1, the object's copy is kept",
        }),
      );
    }
    // Never backwards, whatever order runs finish in (Meta.advance is a guarded write).
    this.#meta.advance("archived_seq", upTo);
    return this.#stream.lastSeq > upTo && Date.now() >= this.#haltedUntil;
  }

  /** Step 2: drop archived rows beyond the hot tail (by count, and by age). Returns true if more remain to prune. */
  #prune(): boolean {
    const { hotTailMessages, hotTailDays } = this.#limits;
    let beyond = this.#stream.lastSeq - hotTailMessages;
    if (hotTailDays > 0) beyond = Math.max(beyond, this.#stream.newestBefore(Date.now() - hotTailDays * DAY_MS));
    const cut = Math.min(this.#meta.archivedSeq, beyond);
    const oldest = this.#stream.oldestHotSeq();
    if (oldest === null || cut < oldest) return false;
    const to = Math.min(cut, oldest + PRUNE_BATCH - 1);
    this.#stream.prune(to);
    return to < cut;
  }

  /**
   * Step 4: move the oldest rows of the warm tier past its window (WARM_MESSAGES newer rows, or older than
   * WARM_DAYS) into one R2 segment of up to SEGMENT_MESSAGES rows. A segment short of that is cut only once its
   * oldest row has waited a week past the window, so a quiet conversation writes a segment a week at most (each
   * is an R2 write and a D1 delete), not one per run. Returns true if another segment is ready.
   */
  async #moveCold(): Promise<boolean> {
    const { warmDays, warmMessages, segmentMessages } = this.#limits;
    if (warmDays === 0 && warmMessages === 0) return false;
    const from = Math.max(this.#cold.coldSeq, this.#meta.retainedFrom - 1) + 1;
    const inD1 = this.#meta.archivedSeq;
    if (from > inD1) return false;
    const top = Math.min(inD1, from + segmentMessages - 1);
    const byCount = warmMessages > 0 ? this.#stream.lastSeq - warmMessages : 0;
    // Without a full segment by count, only age can make one: that needs a D1 read, at most every AGE_CHECK_MS.
    if (byCount < top && (warmDays === 0 || Date.now() < this.#coldCheckAt)) return false;
    const rows = await this.#d1().readRows(this.#meta.id, from, top);
    if (rows.length !== top - from + 1 || rows[0]?.seq !== from) {
      throw new Error(`warm tier holds ${rows.length} of the ${top - from + 1} rows ${from}-${top}: not moving them to R2`);
    }
    const now = Date.now();
    const cutoff = now - warmDays * DAY_MS;
    let n = 0;
    while (n < rows.length && (rows[n]!.seq <= byCount || (warmDays > 0 && rows[n]!.createdAt < cutoff))) n++;
    const partialDue = warmDays > 0 && n > 0 && rows[0]!.createdAt < cutoff - PARTIAL_SEGMENT_WAIT_MS;
    if (n < segmentMessages && !partialDue) {
      this.#coldCheckAt = now + AGE_CHECK_MS;
      return false;
    }
    const moving = rows.slice(0, n);
    // Indexed first, deleted from D1 after (step "clear warm"): a crash between leaves rows in both, never in neither.
    await this.#cold.append(moving);
    return n === segmentMessages && top < inD1;
  }

  /** Delete from D1 what is in R2 now or past retention (resumable: `d1_cleared` says how far it got). Returns true if more remain. */
  async #clearWarm(): Promise<boolean> {
    const cleared = this.#meta.d1Cleared;
    const upTo = Math.min(Math.max(this.#cold.coldSeq, this.#meta.retainedFrom - 1), this.#meta.archivedSeq);
    if (upTo <= cleared) return false;
    const to = Math.min(upTo, cleared + PRUNE_BATCH);
    await this.#d1().deleteRows(this.#meta.id, cleared + 1, to);
    this.#meta.advance("d1_cleared", to);
    return to < upTo;
  }

  /** When an idle conversation should look again for rows an age bound moves or deletes; null if nothing can age out. */
  #nextAgeCheck(): number | null {
    const { hotTailDays, warmDays } = this.#limits;
    const now = Date.now();
    const due: number[] = [];
    const oldestHotAt = hotTailDays > 0 ? this.#stream.oldestHotCreatedAt() : null;
    if (oldestHotAt !== null) due.push(oldestHotAt + hotTailDays * DAY_MS);
    if (warmDays > 0 && this.#cold.coldSeq < this.#meta.archivedSeq) due.push(Math.max(this.#coldCheckAt, now + AGE_CHECK_MIN_MS));
    if (this.#retention.active() && this.#stream.lastSeq >= this.#meta.retainedFrom) due.push(now + AGE_CHECK_MS);
    if (due.length === 0) return null;
    return Math.min(Math.max(Math.min(...due), now + AGE_CHECK_MIN_MS), now + AGE_CHECK_MS);
  }
}
