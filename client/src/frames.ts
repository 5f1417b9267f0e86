// Server frames as the SDK sees them: the shared ServerFrame union, plus the per-user additions
// (typing, receipts, user-socket frames) that src/protocol/user.ts describes. Validation of the core
// frames is the shared `parseServerFrame`; the additions get a structural check here until the
// shared module carries their schemas, after which the first branch handles them too.
import { parseServerFrame, type ServerFrame } from "../../src/protocol/frames";
import type { InboxEntry, Presence, ReceiptCursor, UserServerFrame } from "../../src/protocol/user";

export interface TypingServerFrame {
  type: "typing";
  userId: string;
  username: string;
  active: boolean;
  expiresAt: number;
}
export interface ReceiptsServerFrame {
  type: "receipts";
  conversationId: string;
  cursors: ReceiptCursor[];
}
export type ConversationServerFrame = ServerFrame | TypingServerFrame | ReceiptsServerFrame;

type Json = Record<string, unknown>;
const isObj = (x: unknown): x is Json => typeof x === "object" && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === "string";
const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

function isCursor(x: unknown): x is ReceiptCursor {
  return isObj(x) && isStr(x.userId) && isNum(x.deliveredSeq) && isNum(x.readSeq);
}

function isPresence(x: unknown): x is Presence {
  return isObj(x) && isStr(x.userId) && typeof x.online === "boolean" && (x.lastSeenAt === null || isNum(x.lastSeenAt));
}

function isInboxEntry(x: unknown): x is InboxEntry {
  return isObj(x) && isStr(x.conversationId) && (x.type === "direct" || x.type === "group") && isNum(x.lastSeq) && isNum(x.unread);
}

function parseJson(raw: string): Json | null {
  try {
    const data: unknown = JSON.parse(raw);
    return isObj(data) ? data : null;
  } catch {
    return null;
  }
}

export function parseConversationFrame(raw: string): ConversationServerFrame | null {
  const core = parseServerFrame(raw);
  if (core.ok) return core.frame;
  const d = parseJson(raw);
  if (!d) return null;
  if (d.type === "typing" && isStr(d.userId) && typeof d.active === "boolean") {
    return {
      type: "typing",
      userId: d.userId,
      username: isStr(d.username) ? d.username : d.userId,
      active: d.active,
      expiresAt: isNum(d.expiresAt) ? d.expiresAt : 0,
    };
  }
  if (d.type === "receipts" && Array.isArray(d.cursors) && d.cursors.every(isCursor)) {
    return { type: "receipts", conversationId: isStr(d.conversationId) ? d.conversationId : "", cursors: d.cursors };
  }
  return null;
}

export function parseUserFrame(raw: string): UserServerFrame | null {
  const d = parseJson(raw);
  if (!d) return null;
  switch (d.type) {
    case "hello":
      return isStr(d.userId) ? { type: "hello", protocol: isNum(d.protocol) ? d.protocol : 1, userId: d.userId, totalUnread: isNum(d.totalUnread) ? d.totalUnread : 0 } : null;
    case "inbox_update":
      return isInboxEntry(d.entry) ? { type: "inbox_update", entry: d.entry, totalUnread: isNum(d.totalUnread) ? d.totalUnread : 0 } : null;
    case "inbox_remove":
      return isStr(d.conversationId) ? { type: "inbox_remove", conversationId: d.conversationId, totalUnread: isNum(d.totalUnread) ? d.totalUnread : 0 } : null;
    case "presence":
      return Array.isArray(d.presence) && d.presence.every(isPresence) ? { type: "presence", presence: d.presence } : null;
    case "receipts":
      return isStr(d.conversationId) && Array.isArray(d.cursors) && d.cursors.every(isCursor)
        ? { type: "receipts", conversationId: d.conversationId, cursors: d.cursors }
        : null;
    case "error":
      return { type: "error", code: isStr(d.code) ? d.code : "unknown", message: isStr(d.message) ? d.message : "" };
    case "pong":
      return { type: "pong" };
    default:
      return null;
  }
}
