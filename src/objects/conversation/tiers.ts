// Reads of everything older than the hot tail, as one ordered stream: the warm tier (this conversation's D1
// shard) above coldSeq and the cold tier (R2 segments, segments.ts) at or below it, with the rewrites still
// queued (rewrites.ts) laid over both, so an edit or delete is served at once whichever tier the row is in.
// Rows deleted by retention (below meta.retainedFrom) are never asked for. The archive job moves rows from
// D1 to R2 while a read is in flight: a read that comes back short because the boundary moved under it is
// read again.
import type { HistoryArchive } from "../../db/archive";
import { AppError } from "../../lib/errors";
import type { Meta } from "./meta";
import type { D1Rewrites, PendingRewrites } from "./rewrites";
import type { ColdSegments } from "./segments";
import type { StoredMessage } from "./stream";

/** Reads again at most this often when the warm/cold boundary moved during a read. */
const BOUNDARY_RETRIES = 3;

export class ArchivedTiers {
  readonly #meta: Meta;
  readonly #d1: () => HistoryArchive;
  readonly #cold: ColdSegments;
  readonly #rewrites: D1Rewrites;

  constructor(meta: Meta, d1: () => HistoryArchive, cold: ColdSegments, rewrites: D1Rewrites) {
    this.#meta = meta;
    this.#d1 = d1;
    this.#cold = cold;
    this.#rewrites = rewrites;
  }

  /**
   * Stored entries lo..hi (ascending, current state) from D1 and R2. May return fewer when a tier lacks rows;
   * throws `unavailable` (retryable) when one cannot be read.
   */
  read(lo: number, hi: number): Promise<StoredMessage[]> {
    return unavailableOnFailure(() => this.#read(lo, hi));
  }

  /** Up to `limit` replies to `parent` with `after < seq < below`, ascending, current state; `unavailable` when a tier fails. */
  replies(parent: number, after: number, below: number, limit: number): Promise<StoredMessage[]> {
    return unavailableOnFailure(() => this.#replies(parent, after, below, limit));
  }

  async #read(lo: number, hi: number): Promise<StoredMessage[]> {
    lo = Math.max(lo, this.#meta.retainedFrom);
    if (hi < lo) return [];
    let out: StoredMessage[] = [];
    for (let attempt = 0; attempt < BOUNDARY_RETRIES; attempt++) {
      const before = this.#rewrites.snapshot(lo, hi);
      const coldSeq = this.#cold.coldSeq;
      const [cold, warm] = await Promise.all([
        lo <= coldSeq ? this.#cold.read(lo, Math.min(hi, coldSeq)) : [],
        hi > coldSeq ? this.#d1().readMessages(this.#meta.id, Math.max(lo, coldSeq + 1), hi) : [],
      ]);
      out = this.#rewrites.overlay([...cold, ...warm], before, this.#rewrites.snapshot(lo, hi));
      if (out.length === hi - lo + 1 || this.#cold.coldSeq === coldSeq) break;
    }
    return out;
  }

  async #replies(parent: number, after: number, below: number, limit: number): Promise<StoredMessage[]> {
    after = Math.max(after, this.#meta.retainedFrom - 1);
    if (after + 1 >= below) return [];
    let before!: PendingRewrites;
    let rows: StoredMessage[] = [];
    for (let attempt = 0; attempt < BOUNDARY_RETRIES; attempt++) {
      before = this.#rewrites.snapshot(after + 1, below - 1);
      const coldSeq = this.#cold.coldSeq;
      rows = after < coldSeq ? (await this.#cold.replies(parent, after, limit)).filter((m) => m.seq < below) : [];
      if (rows.length < limit && below - 1 > coldSeq) {
        const from = Math.max(after, coldSeq, rows[rows.length - 1]?.seq ?? 0);
        rows = [...rows, ...(await this.#d1().readReplies(this.#meta.id, parent, from, below, limit - rows.length))];
      }
      if (this.#cold.coldSeq === coldSeq) break;
    }
    return this.#rewrites.overlay(rows, before, this.#rewrites.snapshot(after + 1, below - 1));
  }
}

/** A D1 or R2 failure as the error clients get: `unavailable`, retry in a second (logged once here with its cause). */
async function unavailableOnFailure<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof AppError) throw err;
    console.warn(JSON.stringify({ at: "archive_read", error: String(err) }));
    throw new AppError("unavailable", "history older than the recent messages cannot be read right now; retry", { retryAfterMs: 1_000 });
  }
}
