// Reading the stream across every tier: the hot tail in this object's SQLite, and for everything older the
// archive (tiers.ts: D1, then R2 segments). History pages (REST), threads, single messages (receipts) and the
// backlog a resuming socket is sent before it goes live all read through here, so the hot/archive boundary is
// handled in one place.
import { BACKLOG_PAGE_SIZE, type ChatMessage } from "../../protocol/frames";
import type { HistoryPage, HistoryQuery } from "../../protocol/api";
import { AppError } from "../../lib/errors";
import type { Changes } from "./changes";
import type { ArchivedTiers } from "./tiers";
import type { Meta } from "./meta";
import { wire, type MessageStream, type StoredMessage } from "./stream";

/** Where a backlog goes: one socket, which may close while the backlog is read. */
export interface BacklogSink {
  isOpen(): boolean;
  /** One `backlog` frame, already serialised (its length is what the pacing counts). */
  sendText(text: string): void;
  /** Called in the same synchronous step as the read that reached the newest seq: from here on the socket gets live broadcasts. */
  goLive(): void;
  /** Whose backlog it is (reactions carry `me` for them). */
  userId: string;
}

/** What bounds a backlog page and paces the pages (ConversationObject.limits: read at use, so tests can lower them). */
export interface BacklogLimits {
  /** Serialised bytes per `backlog` frame (a page always carries at least one message). */
  backlogPageBytes: number;
  backlogSocketBytesPerSecond: number;
  backlogObjectBytesPerSecond: number;
}

/** Default bytes per backlog page: ~8 maximal (8 KB) messages, or 100 short ones. */
export const BACKLOG_PAGE_BYTES = 64 * 1024;

const FRAME_HEAD = '{"type":"backlog","messages":[';
const FRAME_TAIL = "]}";

/**
 * Paces the backlog pages of every socket of one object. workerd's server-side WebSocket has no
 * `bufferedAmount` (and send() never blocks), so the object cannot see how much a reader has not read yet;
 * instead each page reserves its bytes on two clocks, the socket's and the object's, and the next page waits
 * until both budgets allow it. A socket's unsent data can therefore grow at most at the socket rate, and all
 * backlogs of one object together at most at the object rate, however many readers there are.
 */
export class BacklogPacer {
  readonly #limits: BacklogLimits;
  /** When the object's budget allows the next page (ms). */
  #objectNextAt = 0;

  constructor(limits: BacklogLimits) {
    this.#limits = limits;
  }

  /** A page of `bytes` went to the socket whose clock is `socket`: wait until its next page may go. Always yields. */
  async spent(socket: { nextAt: number }, bytes: number): Promise<void> {
    const now = Date.now();
    socket.nextAt = Math.max(now, socket.nextAt) + (bytes * 1000) / this.#limits.backlogSocketBytesPerSecond;
    this.#objectNextAt = Math.max(now, this.#objectNextAt) + (bytes * 1000) / this.#limits.backlogObjectBytesPerSecond;
    const wait = Math.max(socket.nextAt, this.#objectNextAt) - now;
    // A timer, even of 0 ms, ends this step: sends and other sockets' pages run before the next page.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.ceil(wait))));
  }
}

export class History {
  readonly #meta: Meta;
  readonly #stream: MessageStream;
  readonly #archived: ArchivedTiers;
  readonly #limits: BacklogLimits;
  readonly #pacer: BacklogPacer;
  readonly #changes: Changes;

  constructor(meta: Meta, stream: MessageStream, archived: ArchivedTiers, limits: BacklogLimits, changes: Changes) {
    this.#changes = changes;
    this.#meta = meta;
    this.#stream = stream;
    this.#archived = archived;
    this.#limits = limits;
    this.#pacer = new BacklogPacer(limits);
  }

  /** A page of history for `viewer`, ascending by seq, each entry in its current state. */
  async page(query: HistoryQuery, viewer: string): Promise<HistoryPage> {
    const last = this.#stream.lastSeq;
    const limit = query.limit;
    // Nothing below the retention floor exists any more (retention.ts): pages stop there.
    const floor = this.#meta.retainedFrom;
    let lo: number;
    let hi: number;
    if (query.after !== undefined) {
      lo = Math.max(query.after + 1, floor);
      hi = Math.min(last, lo + limit - 1);
    } else {
      hi = Math.min(last, (query.before ?? last + 1) - 1);
      lo = Math.max(floor, hi - limit + 1);
    }
    const messages = hi >= lo ? this.#changes.forViewer(await this.range(lo, hi), viewer) : [];
    // Where the page ends: its highest seq, or for an empty page the seq just below where it would start.
    const end = Math.max(hi, lo - 1);
    return {
      messages,
      nextBefore: hi >= lo && lo > floor ? lo : null,
      nextAfter: end < last ? end : null,
      lastSeq: last,
      epoch: this.#meta.epoch,
      firstSeq: floor,
    };
  }

  /** Messages lo..hi (all of them, or an `unavailable` error), whichever tier holds them. */
  async range(lo: number, hi: number): Promise<ChatMessage[]> {
    lo = Math.max(lo, this.#meta.retainedFrom);
    if (hi < lo) return [];
    // Read the hot part first, synchronously, so a prune during the D1 await cannot remove it.
    const oldestHot = this.#stream.oldestHotSeq() ?? hi + 1;
    const hot = this.#stream.hotRange(Math.max(lo, oldestHot), hi);
    if (lo >= oldestHot) return hot;
    const coldTo = Math.min(hi, oldestHot - 1);
    const cold = await this.#readCold(lo, coldTo);
    if (cold.length !== coldTo - lo + 1) throw new AppError("unavailable", "history archive is incomplete; try again");
    return [...cold, ...hot];
  }

  /** Entries lo..hi from the archive (D1 and R2, queued rewrites laid over), wire shape. */
  async #readCold(lo: number, hi: number): Promise<ChatMessage[]> {
    return (await this.#archived.read(lo, hi)).map(wire);
  }

  /**
   * A thread: `parent` and up to `limit` of its replies after `after`, oldest first, in both tiers, for `viewer`.
   * Throws message_not_found when `parent` is not a message.
   */
  async thread(parent: number, after: number, limit: number, viewer: string): Promise<{ parent: ChatMessage; messages: ChatMessage[]; nextAfter: number | null }> {
    if (this.#changes.needs([parent]).length > 0) await this.#changes.load([parent]);
    const root = this.#changes.current(parent);
    if (!root || root.change) throw new AppError("message_not_found", `no message at seq ${parent}`);
    const oldestHot = this.#stream.oldestHotSeq() ?? this.#stream.lastSeq + 1;
    let replies: StoredMessage[] = [];
    if (after + 1 < oldestHot) replies = await this.#archived.replies(parent, after, oldestHot, limit);
    if (replies.length < limit) {
      const from = Math.max(after, replies.length > 0 ? replies[replies.length - 1]!.seq : after, oldestHot - 1);
      replies = [...replies, ...this.#stream.hotReplies(parent, from, limit - replies.length)];
    }
    const messages = this.#changes.forViewer(replies.map(wire), viewer);
    const [decorated] = this.#changes.forViewer([wire(root)], viewer);
    return { parent: decorated!, messages, nextAfter: messages.length === limit ? messages[messages.length - 1]!.seq : null };
  }

  /**
   * Send every message after `since` in bounded pages, then let the socket go live. Each page is at most
   * BACKLOG_PAGE_SIZE messages and `backlogPageBytes` bytes, and the pages are paced (BacklogPacer): between
   * two pages this yields, so sends and other sockets run, and no socket is handed its whole backlog at once.
   * While a socket is not live, broadcasts skip it and the pager picks new messages up from storage instead;
   * the read that reaches the newest seq and the switch to live happen in one synchronous step, so there is
   * no gap and no duplicate between backlog and live. Throws if the archive cannot be read (the caller closes
   * the socket).
   */
  async streamBacklog(since: number, sink: BacklogSink): Promise<void> {
    const clock = { nextAt: 0 };
    let sent = since;
    /** Messages read from D1 and not sent yet (at most one D1 page). */
    let cold: ChatMessage[] = [];
    while (sink.isOpen()) {
      let source: Iterable<ChatMessage>;
      if (cold.length > 0) source = cold;
      else {
        const oldestHot = this.#stream.oldestHotSeq() ?? this.#stream.lastSeq + 1;
        if (sent + 1 < oldestHot) {
          // Older than the hot tail: a page from D1 (awaits, so live sends may interleave; they are in storage).
          const to = Math.min(sent + BACKLOG_PAGE_SIZE, oldestHot - 1);
          cold = await this.#readCold(sent + 1, to);
          if (cold.length !== to - sent) throw new Error(`archive returned ${cold.length} of ${to - sent} messages`);
          if (!sink.isOpen()) return;
          source = cold;
        } else source = this.#stream.hotCursor(sent, BACKLOG_PAGE_SIZE);
      }
      const page = this.#page(source, sink.userId);
      if (page.count > 0) {
        sink.sendText(page.text);
        sent = page.lastSeq;
        if (source === cold) cold = cold.slice(page.count);
      }
      if (cold.length === 0 && sent >= this.#stream.lastSeq) {
        // Caught up: nothing newer is stored, and nothing can be stored before the socket is live.
        sink.goLive();
        return;
      }
      await this.#pacer.spent(clock, page.text.length);
    }
  }

  /** Serialise messages from `source` (ascending) into one backlog frame of at most BACKLOG_PAGE_SIZE messages and about backlogPageBytes. */
  #page(source: Iterable<ChatMessage>, viewer: string): { text: string; count: number; lastSeq: number } {
    const picked: ChatMessage[] = [];
    const texts: string[] = [];
    let bytes = FRAME_HEAD.length + FRAME_TAIL.length;
    for (const m of source) {
      const text = JSON.stringify(m);
      // Always at least one message, so a page moves forward whatever the limit.
      if (picked.length > 0 && (picked.length >= BACKLOG_PAGE_SIZE || bytes + text.length + 1 > this.#limits.backlogPageBytes)) break;
      picked.push(m);
      texts.push(text);
      bytes += text.length + 1;
    }
    // `me` on reactions adds a few bytes per reaction after the page was sized; only those messages are serialised again.
    const parts = this.#changes.forViewer(picked, viewer).map((m, i) => (m === picked[i] ? texts[i]! : JSON.stringify(m)));
    return { text: FRAME_HEAD + parts.join(",") + FRAME_TAIL, count: picked.length, lastSeq: picked[picked.length - 1]?.seq ?? 0 };
  }
}
