// Reading the stream across both tiers: the hot tail in this object's SQLite and the D1 archive for
// everything older. History pages (REST), single messages (receipts) and the backlog a resuming socket
// is sent before it goes live all read through here, so the tier boundary is handled in one place.
import { BACKLOG_PAGE_SIZE, type ChatMessage, type ServerFrame } from "../../protocol/frames";
import type { HistoryPage, HistoryQuery } from "../../protocol/api";
import type { HistoryArchive } from "../../db/archive";
import { AppError } from "../../lib/errors";
import type { Meta } from "./meta";
import type { MessageStream } from "./stream";

/** Where a backlog goes: one socket, which may close while the backlog is read. */
export interface BacklogSink {
  isOpen(): boolean;
  send(frame: ServerFrame): void;
  /** Called in the same synchronous step as the last read: from here on the socket gets live broadcasts. */
  goLive(): void;
}

export class History {
  readonly #meta: Meta;
  readonly #stream: MessageStream;
  readonly #d1: () => HistoryArchive;

  constructor(meta: Meta, stream: MessageStream, d1: () => HistoryArchive) {
    this.#meta = meta;
    this.#stream = stream;
    this.#d1 = d1;
  }

  /** A page of history, ascending by seq. */
  async page(query: HistoryQuery): Promise<HistoryPage> {
    const last = this.#stream.lastSeq;
    const limit = query.limit;
    let lo: number;
    let hi: number;
    if (query.after !== undefined) {
      lo = query.after + 1;
      hi = Math.min(last, query.after + limit);
    } else {
      hi = Math.min(last, (query.before ?? last + 1) - 1);
      lo = Math.max(1, hi - limit + 1);
    }
    const messages = hi >= lo ? await this.range(lo, hi) : [];
    // Where the page ends: its highest seq, or for an empty page the seq just below where it would start.
    const end = Math.max(hi, lo - 1);
    return {
      messages,
      nextBefore: hi >= lo && lo > 1 ? lo : null,
      nextAfter: end < last ? end : null,
      lastSeq: last,
      epoch: this.#meta.epoch,
    };
  }

  /** Messages lo..hi (all of them, or an `unavailable` error), whichever tier holds them. */
  async range(lo: number, hi: number): Promise<ChatMessage[]> {
    // Read the hot part first, synchronously, so a prune during the D1 await cannot remove it.
    const oldestHot = this.#stream.oldestHotSeq() ?? hi + 1;
    const hot = this.#stream.hotRange(Math.max(lo, oldestHot), hi);
    if (lo >= oldestHot) return hot;
    const coldTo = Math.min(hi, oldestHot - 1);
    const cold = await this.#d1().readMessages(this.#meta.id, lo, coldTo);
    if (cold.length !== coldTo - lo + 1) throw new AppError("unavailable", "history archive is incomplete; try again");
    return [...cold, ...hot];
  }

  /**
   * Send every message after `since`, then let the socket go live. While a socket is not live,
   * broadcasts skip it and its backlog read picks the new messages up from storage instead; the final
   * read and the switch to live happen in one synchronous step, so there is no gap and no duplicate
   * between backlog and live. Throws if the archive cannot be read (the caller closes the socket).
   */
  async streamBacklog(since: number, sink: BacklogSink): Promise<void> {
    let sent = since;
    while (sink.isOpen()) {
      const oldestHot = this.#stream.oldestHotSeq() ?? this.#stream.lastSeq + 1;
      if (sent + 1 < oldestHot) {
        // Older than the hot tail: page from D1 (awaits, so live sends may interleave; they are in storage).
        const to = Math.min(sent + BACKLOG_PAGE_SIZE, oldestHot - 1);
        const page = await this.#d1().readMessages(this.#meta.id, sent + 1, to);
        if (page.length !== to - sent) throw new Error(`archive returned ${page.length} of ${to - sent} messages`);
        sink.send({ type: "backlog", messages: page });
        sent = to;
        continue;
      }
      // The rest is in SQLite: read synchronously to the end, then go live without yielding.
      while (sent < this.#stream.lastSeq) {
        const page = this.#stream.hotAfter(sent, BACKLOG_PAGE_SIZE);
        if (page.length === 0) break;
        sink.send({ type: "backlog", messages: page });
        sent = page[page.length - 1]!.seq;
      }
      sink.goLive();
      return;
    }
  }
}
