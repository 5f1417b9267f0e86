// The live overlay of the inbox: what live events (`Inbox.live`, the moment a message is committed) showed
// the user sockets that the stored rows do not have yet. Kept in memory only, per conversation, until the
// stored fan-out catches up or an inbox read stores it (`settle`), so a burst of messages costs no storage
// write here; lost on eviction, which is harmless (the fan-out's update follows). Owns that memory, and
// the one write that stores it.
import type { ConversationSummary } from "../shared/updates";
import { mentionsUser, readRow, unreadOf, type InboxRow } from "./inbox-rows";

/** What live events changed, not yet in the stored row. */
interface LiveOverlay {
  lastSeq: number;
  /** Messages up to lastSeq; null when the event carried no count (older conversation code). */
  lastCount: number | null;
  /** The preview as of lastSeq (null: no message left that is not deleted). */
  last: { seq: number; senderId: string; preview: string; createdAt: number; editedAt: number | null } | null;
  /** This user's own newest message in the overlay, and the count there: sending marks read. */
  ownSeq: number;
  ownCount: number | null;
  /** New messages from others in the overlay that mention this user (or everyone). */
  mentionSeqs: number[];
}

export class LiveOverlays {
  readonly #sql: SqlStorage;
  /** conversationId → live events not yet in the stored row. */
  readonly #live = new Map<string, LiveOverlay>();

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  /**
   * A live event `e` of the conversation whose stored row is `row` (`me`: whose inbox). Null when it is not
   * newer than what the sockets were shown; else the overlay moved to it, and the row as shown before and after.
   */
  record(row: InboxRow, e: ConversationSummary, me: string | null): { before: InboxRow; after: InboxRow } | null {
    const overlay = this.#live.get(e.conversationId);
    if (e.lastSeq <= Math.max(row.lastSeq, overlay?.lastSeq ?? 0)) return null;
    const before = this.view(row);
    const last = e.lastMessage;
    // The event is a new message when its preview is the entry itself; else a change entry (an edit, a delete).
    const message = last !== null && last.seq === e.lastSeq ? last : null;
    const own = message !== null && message.senderId === me;
    const mentionsMe = message !== null && !own && me !== null && mentionsUser(message, me);
    this.#live.set(e.conversationId, {
      lastSeq: e.lastSeq,
      lastCount: e.lastCount ?? null,
      last: last ? { seq: last.seq, senderId: last.senderId, preview: last.preview, createdAt: last.createdAt, editedAt: last.editedAt ?? null } : null,
      ownSeq: own ? e.lastSeq : (overlay?.ownSeq ?? 0),
      ownCount: own ? (e.lastCount ?? null) : (overlay?.ownCount ?? null),
      mentionSeqs: mentionsMe ? [...(overlay?.mentionSeqs ?? []), e.lastSeq] : (overlay?.mentionSeqs ?? []),
    });
    return { before, after: this.view(row) };
  }

  /** A stored row as the sockets see it: with the live events it has not caught up with. */
  view(row: InboxRow): InboxRow {
    const overlay = this.#live.get(row.conversationId);
    if (!overlay) return row;
    if (overlay.lastSeq <= row.lastSeq) {
      this.#live.delete(row.conversationId);
      return row;
    }
    // Sending marks read: the user's own message in the overlay is past everything the row knows of.
    const own = overlay.ownSeq > row.readSeq;
    const readSeq = own ? overlay.ownSeq : row.readSeq;
    const last = overlay.last;
    return {
      ...row,
      lastSeq: overlay.lastSeq,
      lastCount: overlay.lastCount,
      lastMsgSeq: last?.seq ?? null,
      lastSender: last?.senderId ?? null,
      lastPreview: last?.preview ?? null,
      lastAt: last?.createdAt ?? null,
      lastEditedAt: last?.editedAt ?? null,
      readSeq,
      readCount: own ? overlay.ownCount : row.readCount,
      deliveredSeq: Math.max(row.deliveredSeq, readSeq),
      mentions: (own ? 0 : row.mentions) + overlay.mentionSeqs.filter((seq) => seq > readSeq).length,
      updatedAt: Math.max(row.updatedAt, last?.createdAt ?? 0),
    };
  }

  /** The conversation left the inbox: its live events go with it. */
  delete(conversationId: string): void {
    this.#live.delete(conversationId);
  }

  /** What the live events add to the stored rows' unread total (an overlay whose row is gone is dropped). */
  unreadDelta(): number {
    let delta = 0;
    for (const id of [...this.#live.keys()]) {
      const row = readRow(this.#sql, id);
      if (!row) {
        this.#live.delete(id);
        continue;
      }
      delta += unreadOf(this.view(row)) - unreadOf(row);
    }
    return delta;
  }

  /**
   * Store what live events showed (an inbox read orders and pages by the stored rows): one write per
   * conversation with live events, per read, instead of one per message. Fields only move forward, so the
   * fan-out's update that follows changes nothing.
   */
  settle(): void {
    for (const id of [...this.#live.keys()]) {
      const row = readRow(this.#sql, id);
      if (!row) continue;
      // The row as the sockets saw it; read and written in one synchronous step, so nothing interleaves.
      const v = this.view(row);
      if (v === row) continue;
      this.#sql.exec(
        `UPDATE inbox SET last_seq = ?, last_count = ?, last_msg_seq = ?, last_sender = ?, last_preview = ?, last_at = ?, last_edited_at = ?,
           read_seq = ?, read_count = ?, delivered_seq = ?, unread_mentions = ?, updated_at = ?
         WHERE conversation_id = ?`,
        v.lastSeq,
        v.lastCount,
        v.lastMsgSeq,
        v.lastSender,
        v.lastPreview,
        v.lastAt,
        v.lastEditedAt,
        v.readSeq,
        v.readCount,
        v.deliveredSeq,
        v.mentions,
        v.updatedAt,
        id,
      );
    }
    this.#live.clear();
  }
}
