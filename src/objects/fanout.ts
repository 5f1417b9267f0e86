// The messages that flow from conversation objects to user objects (directly by RPC for small
// conversations, through FANOUT_QUEUE for large ones). Keep these shapes backwards compatible:
// during a rollout old and new code run side by side.
import type { ReceiptCursor } from "../protocol/user";

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

export const FANOUT_TARGETS_PER_MESSAGE = 100;
/** At or below this many targets, the conversation object calls the user objects itself. */
export const DIRECT_FANOUT_LIMIT = 50;
/** Conversations up to this size push every receipt change to every member's user socket. */
export const RECEIPT_PUSH_LIMIT = 100;

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

/** The first 140 characters on one line; cut on code points so an emoji is never split in half. */
export function previewOf(body: string): string {
  const chars = Array.from(body.replace(/\s+/g, " ").trim());
  return chars.length > 140 ? `${chars.slice(0, 139).join("")}…` : chars.join("");
}
