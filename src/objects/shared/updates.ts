// The messages that flow from conversation objects to user objects (directly by RPC for small
// conversations, through FANOUT_QUEUE for large ones) and from user objects to PUSH_QUEUE. Keep these
// shapes backwards compatible: during a rollout old and new code run side by side.
import type { ReceiptCursor } from "../../protocol/user";

/**
 * The stored fan-out is background work: user objects are updated STORED_FANOUT_PACE.chunk at a time, with a pause
 * between chunks (lib/concurrency.ts), so that a burst of inbox commits never holds the runtime for long while live
 * events and sends wait. Measured on one local runtime (bench scenario 8, 100 members, 150 ms gaps): updating 100
 * user objects at once delayed the message sent during it by up to ~200 ms, every second.
 */
export const STORED_FANOUT_PACE = { chunk: 10, pauseMs: 5 };

/**
 * A member of a small conversation whose user object answered "not listening" to a live event (no user socket
 * open) is not sent live events for this long, unless its user object asks first (`inboxPosition` with
 * `listen`, when a user socket opens). The bound covers a user object that lost track of having answered
 * (evicted and woken, or on code from before quiet members): its inbox then follows the stored fan-out alone
 * (at most one update a second) for up to this long.
 */
export const LIVE_QUIET_MS = 2 * 60_000;

export interface ConversationSummary {
  conversationId: string;
  type: "direct" | "group";
  title: string | null;
  /** For direct conversations: both members, so each side can name the other. */
  directMembers: { userId: string; username: string }[] | null;
  lastSeq: number;
  /**
   * Messages (not change entries: edits, deletes, reactions) with seq <= lastSeq. Unread counts are
   * differences of this count (docs/protocol.md 15.6). Absent from older builds: every entry was a message, use lastSeq.
   */
  lastCount?: number;
  /**
   * The newest message that is not deleted, in its current state (an edit updates the preview). Its seq may be
   * below lastSeq (change entries came after it). `mentions`/`mentionsAll` as the message carries them.
   */
  lastMessage: { seq: number; senderId: string; preview: string; createdAt: number; editedAt?: number; mentions?: string[]; mentionsAll?: true } | null;
  /** Cursor changes of members (sent only for conversations small enough to push receipts to everyone). */
  receipts: ReceiptCursor[];
  /**
   * True for large conversations (fan-out on read): new messages are not written to every member's inbox;
   * the user object asks the conversation for its position when the inbox is read or a user socket
   * connects, and hears live events while a user socket is open. Absent from older builds: false.
   */
  pull?: boolean;
}

export interface FanoutTarget {
  userId: string;
  deliveredSeq: number;
  readSeq: number;
  /** When the member joined (ms): the inbox orders a conversation without messages by this. */
  joinedAt: number;
  /**
   * Messages with seq <= readSeq, plus the deleted messages above it (a deleted message is not unread); so
   * unread = lastCount - readCount (see ConversationSummary.lastCount). Absent from older builds: readSeq.
   */
  readCount?: number;
  /** Unread messages from others that mention this member (or everyone). Absent from older builds: 0. */
  mentions?: number;
}

/** One queue message: a summary and up to FANOUT_TARGETS_PER_MESSAGE members to apply it to. */
export interface FanoutJob {
  kind: "conversation_update";
  summary: ConversationSummary;
  targets: FanoutTarget[];
}

export interface PushJob {
  userId: string;
  conversationId: string;
  seq: number;
  senderId: string;
  preview: string;
  unread: number;
  totalUnread: number;
  createdAt: number;
  /** The message mentions this user (by id, or everyone). */
  mentioned?: boolean;
}
