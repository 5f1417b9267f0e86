// The D1 archive job: copies the stream to D1 in seq order (idempotently: a retried batch that already
// landed changes nothing), advances `archived_seq`, and prunes the hot tail, but only behind
// archived_seq, so nothing is ever only in neither place. D1 being down only delays it.
import type { HistoryArchive } from "../../db/archive";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { Job } from "./index";
import type { Meta } from "./meta";
import type { MessageStream } from "./stream";

/** New messages wait this long so one D1 batch carries many. */
const ARCHIVE_DELAY_MS = 250;
const ARCHIVE_BATCH = 500;
const PRUNE_BATCH = 2_000;

export class Archiver {
  readonly #meta: Meta;
  readonly #stream: MessageStream;
  readonly #jobs: JobRunner<Job>;
  readonly #d1: () => HistoryArchive;
  readonly #hotTailMessages: number;

  constructor(meta: Meta, stream: MessageStream, jobs: JobRunner<Job>, d1: () => HistoryArchive, hotTailMessages: number) {
    this.#meta = meta;
    this.#stream = stream;
    this.#jobs = jobs;
    this.#d1 = d1;
    this.#hotTailMessages = hotTailMessages;
    jobs.define("archive", () => this.#batch());
  }

  /** New messages were committed: archive them soon. Costs nothing when already scheduled. */
  schedule(): void {
    this.#jobs.ensure("archive", Date.now() + ARCHIVE_DELAY_MS);
  }

  /** Archive everything and prune to the hot tail now (ops, tests, verify). Stops early if D1 fails. */
  async flushAll(): Promise<{ archivedSeq: number; lastSeq: number }> {
    for (let i = 0; i < 10_000; i++) {
      const before = this.#meta.archivedSeq;
      const oldest = this.#stream.oldestHotSeq();
      await this.#jobs.runNow("archive");
      if (this.#meta.archivedSeq === before && this.#stream.oldestHotSeq() === oldest) break;
    }
    return { archivedSeq: this.#meta.archivedSeq, lastSeq: this.#stream.lastSeq };
  }

  /** Copy the next batch of unarchived messages to D1, then prune what D1 now holds beyond the hot tail. */
  async #batch(): Promise<JobOutcome> {
    const archived = this.#meta.archivedSeq;
    const rows = this.#stream.hotAfter(archived, ARCHIVE_BATCH);
    if (rows.length === 0) return "done";
    // A failure throws: everything stays, and the job runner retries with backoff. Nothing is dropped.
    await this.#d1().writeMessages(this.#meta.id, rows);
    const upTo = rows[rows.length - 1]!.seq;
    this.#meta.set("archived_seq", String(Math.max(archived, upTo)));
    const morePruning = this.#prune();
    return this.#stream.lastSeq > upTo || morePruning ? { at: Date.now() } : "done";
  }

  /** Drop archived rows beyond the hot tail. Returns true if more remain to prune. */
  #prune(): boolean {
    const cut = Math.min(this.#meta.archivedSeq, this.#stream.lastSeq - this.#hotTailMessages);
    const oldest = this.#stream.oldestHotSeq();
    if (oldest === null || cut < oldest) return false;
    const to = Math.min(cut, oldest + PRUNE_BATCH - 1);
    this.#stream.prune(to);
    return to < cut;
  }
}
