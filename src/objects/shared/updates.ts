// The messages that flow from conversation objects to user objects (directly by RPC for small
// conversations, through FANOUT_QUEUE for large ones) and from user objects to PUSH_QUEUE. Keep these
// shapes backwards compatible: during a rollout old and new code run side by side.
import type { ReceiptCursor } from "../../protocol/user";

export interface ConversationSummary {
  conversationId: string;
  type: "direct" | "group";
  title: string | null;
  /** For direct conversations: both members, so each side can name the other. */
  directMembers: { userId: string; username: string }[] | null;
  lastSeq: number;
  lastMessage: { seq: number; senderId: string; preview: string; createdAt: number } | null;
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
}
