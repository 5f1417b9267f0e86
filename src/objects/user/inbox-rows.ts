// What an inbox row is and what is read from it: its columns (InboxRow, INBOX_COLUMNS, read by readRow),
// the counts derived from it (unread, in SQL for the total too; the read position after a receipt;
// whether a message mentions the user) and the entry a client is shown (toEntry, and `shown`: what of it
// is worth a frame). Nothing here writes: the `inbox` table is written by inbox.ts and inbox-live.ts.
//
// Unread is counted in messages, not seqs (docs/protocol.md 15.6): change entries (edits, deletes, reactions)
// take seqs too. Summaries carry `lastCount` and targets `readCount` (messages up to lastSeq and readSeq);
// unread = lastCount - readCount. A row not told counts (conversation code from before them) falls back to
// lastSeq - readSeq. The preview is the newest message that is not deleted, in its current state.
import type { InboxEntry } from "../../protocol/user";

export interface InboxRow extends Record<string, SqlStorageValue> {
  conversationId: string;
  type: string;
  title: string | null;
  peerId: string | null;
  peerUsername: string | null;
  lastSeq: number;
  /** Messages up to lastSeq; null when not told (then unread counts seqs). */
  lastCount: number | null;
  /** The preview: the newest message that is not deleted (its seq may be below lastSeq). */
  lastMsgSeq: number | null;
  lastSender: string | null;
  lastPreview: string | null;
  lastAt: number | null;
  lastEditedAt: number | null;
  deliveredSeq: number;
  readSeq: number;
  /** Messages up to readSeq; null when not told. */
  readCount: number | null;
  /** Unread messages from others mentioning this user (read through mentionsOf: never above unread). */
  mentions: number;
  updatedAt: number;
  pull: number;
}

export const INBOX_COLUMNS = `conversation_id AS conversationId, type, title, peer_id AS peerId, peer_username AS peerUsername,
  last_seq AS lastSeq, last_count AS lastCount, last_msg_seq AS lastMsgSeq, last_sender AS lastSender,
  last_preview AS lastPreview, last_at AS lastAt, last_edited_at AS lastEditedAt,
  delivered_seq AS deliveredSeq, read_seq AS readSeq, read_count AS readCount, unread_mentions AS mentions, updated_at AS updatedAt, pull`;

/** unreadOf() in SQL, for the inbox total. */
export const UNREAD_SQL = `CASE WHEN read_seq >= last_seq THEN 0
  WHEN last_count IS NOT NULL AND read_count IS NOT NULL THEN max(last_count - read_count, 0)
  ELSE last_seq - read_seq END`;

/** One conversation's row, as stored (without the live events: inbox-live.ts). */
export function readRow(sql: SqlStorage, conversationId: string): InboxRow | null {
  return sql.exec<InboxRow>(`SELECT ${INBOX_COLUMNS} FROM inbox WHERE conversation_id = ?`, conversationId).toArray()[0] ?? null;
}

/** Unread messages: counted in messages when the conversation told the counts, else in seqs (older code). */
export function unreadOf(r: InboxRow): number {
  if (r.readSeq >= r.lastSeq) return 0;
  if (r.lastCount !== null && r.readCount !== null) return Math.max(0, r.lastCount - r.readCount);
  return r.lastSeq - r.readSeq;
}

/**
 * The user read up to `readSeq` (a receipt confirmed by the conversation): the count there, and the unread
 * mentions, as far as this inbox can tell. Read to the end: exact (nothing unread). Short of it: the entries
 * after readSeq are at most that many messages, so unread is at most that; the fan-out brings the exact count.
 */
export function readAt(view: InboxRow, readSeq: number): { readCount: number | null; mentions: number } {
  if (readSeq >= view.lastSeq) return { readCount: view.lastCount, mentions: 0 };
  if (view.lastCount === null || view.readCount === null) return { readCount: null, mentions: Math.min(view.mentions, view.lastSeq - readSeq) };
  const readCount = Math.min(view.lastCount, Math.max(view.readCount, view.lastCount - (view.lastSeq - readSeq)));
  return { readCount, mentions: Math.min(view.mentions, view.lastCount - readCount) };
}

/** The message mentions `userId`, or everyone. */
export function mentionsUser(m: { mentions?: string[]; mentionsAll?: true }, userId: string): boolean {
  return m.mentionsAll === true || (m.mentions?.includes(userId) ?? false);
}

/** What a client shows of an entry: lastSeq alone moving (past a reaction) is not worth a frame. */
export function shown(e: InboxEntry): string {
  return JSON.stringify({ ...e, lastSeq: 0 });
}

/** The entry a client is shown of a row (or of its view with the live events: inbox-live.ts). */
export function toEntry(r: InboxRow): InboxEntry {
  const unread = unreadOf(r);
  return {
    conversationId: r.conversationId,
    type: r.type === "direct" ? "direct" : "group",
    title: r.title,
    peer: r.peerId ? { userId: r.peerId, username: r.peerUsername ?? "" } : null,
    lastSeq: r.lastSeq,
    lastMessage:
      r.lastSender !== null && r.lastAt !== null
        ? {
            seq: r.lastMsgSeq ?? r.lastSeq,
            senderId: r.lastSender,
            preview: r.lastPreview ?? "",
            createdAt: r.lastAt,
            ...(r.lastEditedAt !== null ? { editedAt: r.lastEditedAt } : {}),
          }
        : null,
    unread,
    unreadMentions: Math.min(r.mentions, unread),
    deliveredSeq: r.deliveredSeq,
    readSeq: r.readSeq,
    updatedAt: r.updatedAt,
  };
}
