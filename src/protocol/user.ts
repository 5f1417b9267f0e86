// Per-user protocol: the user socket (GET /v1/me/ws), inbox, presence, receipts and typing shapes.
// Contract first: the server (src/objects/user.ts) and the client SDK both build on these.
import * as v from "valibot";

/** One row of the inbox (GET /v1/me/conversations and `inbox_update` frames). */
export interface InboxEntry {
  conversationId: string;
  type: "direct" | "group";
  /** Group title; null for a direct conversation (show `peer.username`). */
  title: string | null;
  /** The other user of a direct conversation. */
  peer: { userId: string; username: string } | null;
  /** The newest seq this inbox knows of: messages and change entries (edits, deletes, reactions) alike. */
  lastSeq: number;
  /**
   * The newest message that is not deleted, in its current state: its seq may be below `lastSeq` (change
   * entries came after it). `editedAt`: when its body was last edited (absent when never edited).
   */
  lastMessage: { seq: number; senderId: string; preview: string; createdAt: number; editedAt?: number } | null;
  /** Messages after readSeq not sent by this user; change entries never count. */
  unread: number;
  /** How many of the unread messages mention this user, by id or everyone (at most `unread`). */
  unreadMentions: number;
  deliveredSeq: number;
  readSeq: number;
  /** Last activity (ms): the newest message, or when the user joined. Inbox order is by this, newest first. */
  updatedAt: number;
}

export interface InboxPage {
  conversations: InboxEntry[];
  /** Opaque; pass as `cursor` for the next page. Null on the last page. */
  nextCursor: string | null;
  totalUnread: number;
}

export interface Presence {
  userId: string;
  online: boolean;
  /** Last moment the user was seen connected (ms), null if never. */
  lastSeenAt: number | null;
}

/** A member's position in a conversation: received up to deliveredSeq, read up to readSeq. */
export interface ReceiptCursor {
  userId: string;
  deliveredSeq: number;
  readSeq: number;
}

export interface ReceiptState {
  seq: number;
  /** Members other than the sender. */
  of: number;
  delivered: number;
  read: number;
  /** Present when at most 100 members count (members other than the sender who had joined by then). */
  deliveredTo?: string[];
  readBy?: string[];
}

/**
 * Conversations of up to this many members push every member's cursor changes to every live socket (`receipts`
 * frames, and the snapshot after caught_up); above it each member hears only their own, and counts are asked for.
 */
export const RECEIPTS_LIVE_MAX_MEMBERS = 100;

export const MAX_PRESENCE_SUBSCRIPTIONS = 500;
export const TYPING_THROTTLE_MS = 3_000;
export const TYPING_TTL_MS = 6_000;
/** In a conversation of more than RECEIPTS_LIVE_MAX_MEMBERS members, at most this many typing indicators show at once (protocol 12.6). */
export const TYPING_SHOWN_MAX_LARGE = 3;
export const PRESENCE_TTL_MS = 30_000;

const Seq = v.pipe(v.number("must be a number"), v.integer("must be an integer"), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER));
const Id = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,64}$/, "invalid id"));

/** Cursor report; `read` implies delivered up to the same seq. */
export const ReceiptBodySchema = v.pipe(
  v.object({ delivered: v.optional(Seq), read: v.optional(Seq) }),
  v.check((b) => b.delivered !== undefined || b.read !== undefined, "give delivered, read, or both"),
);

// ---------------------------------------------------------------- conversation socket additions

export const TypingFrameSchema = v.object({ type: v.literal("typing"), active: v.optional(v.boolean(), true) });
export const ReceiptFrameSchema = v.object({
  type: v.literal("receipt"),
  delivered: v.optional(Seq),
  read: v.optional(Seq),
});

// ---------------------------------------------------------------- user socket: client -> server

export const PresenceSubscribeFrameSchema = v.object({
  type: v.literal("presence_subscribe"),
  userIds: v.pipe(v.array(Id), v.maxLength(MAX_PRESENCE_SUBSCRIPTIONS, `at most ${MAX_PRESENCE_SUBSCRIPTIONS} user ids`)),
});
export const UserReceiptFrameSchema = v.object({
  type: v.literal("receipt"),
  conversationId: Id,
  delivered: v.optional(Seq),
  read: v.optional(Seq),
});
export const UserClientFrameSchema = v.variant("type", [
  PresenceSubscribeFrameSchema,
  UserReceiptFrameSchema,
  v.object({ type: v.literal("ping") }),
]);
export type UserClientFrame = v.InferOutput<typeof UserClientFrameSchema>;

// ---------------------------------------------------------------- user socket: server -> client

export type UserServerFrame =
  | { type: "hello"; protocol: number; userId: string; totalUnread: number }
  | { type: "inbox_update"; entry: InboxEntry; totalUnread: number }
  | { type: "inbox_remove"; conversationId: string; totalUnread: number }
  | { type: "presence"; presence: Presence[] }
  | { type: "receipts"; conversationId: string; cursors: ReceiptCursor[] }
  | { type: "error"; code: string; message: string; retryAfterMs?: number }
  | { type: "pong" };
