// The D1 archive job: copies the stream to D1 in seq order (idempotently: a retried batch that already
// landed changes nothing), checks that D1 now holds exactly these messages at these seqs, advances
// `archived_seq` (never backwards), and prunes the hot tail, but only behind archived_seq, so nothing is ever
// only in neither place. D1 being down only delays it; D1 holding other messages at our seqs stops it, loudly.
// Each run also measures the object's storage (capacity.ts), so the ceiling is current while D1 is down.
import { ArchiveConflict, type HistoryArchive } from "../../db/archive";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { Capacity } from "./capacity";
import type { Job } from "./index";
import type { Meta } from "./meta";
import type { D1Rewrites } from "./rewrites";
import type { MessageStream } from "./stream";

/** New messages wait this long so one D1 batch carries many. */
const ARCHIVE_DELAY_MS = 250;
const ARCHIVE_BATCH = 500;
const PRUNE_BATCH = 2_000;
/** After a conflict the job stops; it looks again this much later (an operator may have repaired D1 meanwhile). */
const CONFLICT_RECHECK_MS = 5 * 60_000;

export class Archiver {
  readonly #meta: Meta;
  readonly #stream: MessageStream;
  readonly #jobs: JobRunner<Job>;
  readonly #d1: () => HistoryArchive;
  readonly #limits: { hotTailMessages: number };
  readonly #capacity: Capacity;
  readonly #rewrites: D1Rewrites;
  /** Set when D1 was found holding other messages at our seqs: new messages do not wake the job before this. */
  #haltedUntil = 0;

  constructor(
    meta: Meta,
    stream: MessageStream,
    jobs: JobRunner<Job>,
    d1: () => HistoryArchive,
    limits: { hotTailMessages: number },
    capacity: Capacity,
    rewrites: D1Rewrites,
  ) {
    this.#rewrites = rewrites;
    this.#meta = meta;
    this.#stream = stream;
    this.#jobs = jobs;
    this.#d1 = d1;
    this.#limits = limits;
    this.#capacity = capacity;
    jobs.define("archive", () => this.#batch());
  }

  /** New messages were committed: archive them soon. Costs nothing when already scheduled. */
  schedule(): void {
    if (Date.now() < this.#haltedUntil) return;
    this.#jobs.ensure("archive", Date.now() + ARCHIVE_DELAY_MS);
  }

  /** Archive everything and prune to the hot tail now (ops, tests, verify). Stops early if D1 fails. */
  async flushAll(): Promise<{ archivedSeq: number; lastSeq: number }> {
    for (let i = 0; i < 10_000; i++) {
      const before = this.#meta.archivedSeq;
      const oldest = this.#stream.oldestHotSeq();
      const rewriting = this.#rewrites.hasPending();
      await this.#jobs.runNow("archive");
      if (this.#meta.archivedSeq === before && this.#stream.oldestHotSeq() === oldest && !rewriting) break;
    }
    return { archivedSeq: this.#meta.archivedSeq, lastSeq: this.#stream.lastSeq };
  }

  /** Copy the next batch of unarchived messages to D1, then prune what D1 now holds beyond the hot tail. */
  async #batch(): Promise<JobOutcome> {
    this.#capacity.measure();
    const archived = this.#meta.archivedSeq;
    const rows = this.#stream.archiveRows(archived, ARCHIVE_BATCH);
    if (rows.length === 0) {
      // Nothing new: only rewrites of archived rows (edits, deletes, reactions) may be waiting.
      return (await this.#rewrites.apply(this.#d1(), this.#meta.id)) ? { at: Date.now() } : "done";
    }
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
    // Changes queued while (or before) these rows were written: a row written with an old state is corrected.
    const moreRewrites = await this.#rewrites.apply(this.#d1(), this.#meta.id);
    const morePruning = this.#prune();
    this.#capacity.measure();
    if (Date.now() < this.#haltedUntil) return { at: this.#haltedUntil };
    return this.#stream.lastSeq > upTo || morePruning || moreRewrites ? { at: Date.now() } : "done";
  }

  /** Drop archived rows beyond the hot tail. Returns true if more remain to prune. */
  #prune(): boolean {
    const cut = Math.min(this.#meta.archivedSeq, this.#stream.lastSeq - this.#limits.hotTailMessages);
    const oldest = this.#stream.oldestHotSeq();
    if (oldest === null || cut < oldest) return false;
    const to = Math.min(cut, oldest + PRUNE_BATCH - 1);
    this.#stream.prune(to);
    return to < cut;
  }
}
