// Receipt cursors: each member's delivered/read position (the delivered_seq/read_seq columns of
// `members`, monotonic, clamped to the stream) and `dirty_members`, the members whose cursors changed
// since the last fan-out. Answers "who has read message N" and the snapshot a new socket gets.
import { AppError } from "../../lib/errors";
import type { ChatMessage } from "../../protocol/frames";
import { RECEIPTS_LIVE_MAX_MEMBERS, type ReceiptCursor, type ReceiptState } from "../../protocol/user";
import type { MemberRow, Members } from "./members";

/** Conversations up to this size push every receipt change to every member (sockets and inboxes). */
export const RECEIPT_PUSH_LIMIT = RECEIPTS_LIVE_MAX_MEMBERS;
/** Large conversations: delivery reports from sockets are applied together, at most this long after the first. */
const DELIVERY_BATCH_MS = 250;

export class Cursors {
  readonly #sql: SqlStorage;
  readonly #members: Members;
  readonly #lastSeq: () => number;
  /** A cursor moved: the coalesced fan-out must run. */
  readonly #changed: () => void;
  /** Large conversations: delivery reports not applied yet (user id → seq), and whether a batch is scheduled. */
  #deliveries = new Map<string, number>();
  #batchScheduled = false;

  constructor(sql: SqlStorage, members: Members, lastSeq: () => number, changed: () => void) {
    this.#sql = sql;
    this.#members = members;
    this.#lastSeq = lastSeq;
    this.#changed = changed;
  }

  /**
   * Move a member's cursors forward (never back; `read` implies delivered; clamped to the stream). Up to
   * RECEIPT_PUSH_LIMIT members every move is announced at the next fan-out; above it only a read (the member's
   * inbox and other devices show it): delivery reports come from every client for every message, and there no
   * one is told of them (GET …/receipts counts them from the row).
   */
  advance(userId: string, delivered: number, read: number): MemberRow {
    return this.#move(this.#member(userId), delivered, read);
  }

  /**
   * A socket's report. A delivery alone in a large conversation joins a batch applied in one event (one commit)
   * within DELIVERY_BATCH_MS: every member reports every message there, and one commit per report would take the
   * object's thread. It has no answer and tells no one, so the wait shows only in GET …/receipts; a restart in it
   * loses the reports of that moment (the next report of each member carries them). Anything else applies now.
   */
  report(userId: string, delivered: number, read: number): void {
    const before = this.#member(userId);
    if (read > before.readSeq || this.#announcesEveryMove()) {
      this.#move(before, delivered, read);
      return;
    }
    if (delivered <= before.deliveredSeq) return;
    this.#deliveries.set(userId, Math.max(this.#deliveries.get(userId) ?? 0, delivered));
    if (this.#batchScheduled) return;
    this.#batchScheduled = true;
    setTimeout(() => this.#applyDeliveries(), DELIVERY_BATCH_MS);
  }

  #applyDeliveries(): void {
    const batch = this.#deliveries;
    this.#deliveries = new Map();
    this.#batchScheduled = false;
    for (const [userId, seq] of batch) {
      const before = this.#members.get(userId);
      if (before) this.#move(before, seq, 0); // members removed meanwhile are skipped
    }
  }

  #member(userId: string): MemberRow {
    const row = this.#members.get(userId);
    if (!row) throw new AppError("not_a_member", "you are not a member of this conversation");
    return row;
  }

  /** Up to RECEIPT_PUSH_LIMIT members every cursor move is announced to everyone; above it only reads, to their owner. */
  #announcesEveryMove(): boolean {
    return !this.#members.isLarge();
  }

  #move(before: MemberRow, delivered: number, read: number): MemberRow {
    const last = this.#lastSeq();
    const d = Math.min(Math.max(delivered, read), last);
    const r = Math.min(read, last);
    if (d <= before.deliveredSeq && r <= before.readSeq) return before;
    this.#sql.exec("UPDATE members SET delivered_seq = max(delivered_seq, ?), read_seq = max(read_seq, ?) WHERE user_id = ?", d, r, before.userId);
    if (r > before.readSeq || this.#announcesEveryMove()) {
      this.markDirty(before.userId);
      this.#changed();
    }
    // The row as the UPDATE left it (the same max), without reading it again.
    return { ...before, deliveredSeq: Math.max(before.deliveredSeq, d), readSeq: Math.max(before.readSeq, r) };
  }

  /** Record that a member's inbox must hear about this conversation at the next fan-out. */
  markDirty(userId: string): void {
    this.#sql.exec("INSERT INTO dirty_members (user_id) VALUES (?)", userId);
  }

  /** Members marked dirty so far, and the mark to clear up to once they have been told. */
  dirty(): { upTo: number; userIds: string[] } {
    const upTo = this.#sql.exec<{ m: number | null }>("SELECT max(id) AS m FROM dirty_members").one().m ?? 0;
    const userIds = this.#sql
      .exec<{ userId: string }>("SELECT DISTINCT user_id AS userId FROM dirty_members WHERE id <= ?", upTo)
      .toArray()
      .map((r) => r.userId);
    return { upTo, userIds };
  }

  clearDirty(upTo: number): void {
    this.#sql.exec("DELETE FROM dirty_members WHERE id <= ?", upTo);
  }

  hasDirty(): boolean {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM dirty_members").one().n > 0;
  }

  /** Every member's cursors, for a new socket, in conversations small enough to push receipts; else null. */
  snapshot(): ReceiptCursor[] | null {
    // Counted first, so connecting to a 5,000-member group does not read every member row.
    if (!this.#announcesEveryMove()) return null;
    return this.#members.list().map((m) => ({ userId: m.userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq }));
  }

  /** Who has received and read `message` (members other than its sender who were members when it was sent). */
  stateOf(message: ChatMessage): ReceiptState {
    const seq = message.seq;
    const others = this.#sql
      .exec<{ n: number; d: number; r: number }>(
        // Members who joined after the message are not counted: their cursors start at the join point.
        "SELECT count(*) AS n, sum(delivered_seq >= ?1) AS d, sum(read_seq >= ?1) AS r FROM members WHERE user_id != ?2 AND joined_at <= ?3",
        seq,
        message.senderId,
        message.createdAt,
      )
      .one();
    const state: ReceiptState = { seq, of: others.n, delivered: others.d ?? 0, read: others.r ?? 0 };
    if (others.n <= RECEIPT_PUSH_LIMIT) {
      const rows = this.#sql
        .exec<{ userId: string; d: number; r: number }>(
          "SELECT user_id AS userId, delivered_seq >= ?1 AS d, read_seq >= ?1 AS r FROM members WHERE user_id != ?2 AND joined_at <= ?3 ORDER BY user_id",
          seq,
          message.senderId,
          message.createdAt,
        )
        .toArray();
      state.deliveredTo = rows.filter((r) => r.d).map((r) => r.userId);
      state.readBy = rows.filter((r) => r.r).map((r) => r.userId);
    }
    return state;
  }
}
