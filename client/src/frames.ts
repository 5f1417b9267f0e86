// Server frames as the SDK parses them. Conversation-socket frames, typing and receipts included, are
// validated by the shared schema (`parseServerFrame`, src/protocol/frames.ts). User-socket frames get a
// structural check here: src/protocol/user.ts describes them as a type, without a schema.
import { parseServerFrame, type ServerFrame } from "../../src/protocol/frames";
import type { InboxEntry, Presence, ReceiptCursor, UserServerFrame } from "../../src/protocol/user";

/** A frame of the conversation socket: the shared ServerFrame union (the name is part of the SDK's API). */
export type ConversationServerFrame = ServerFrame;

/** Null for anything the shared schema refuses, e.g. a frame type from a newer server. */
export function parseConversationFrame(raw: string): ConversationServerFrame | null {
  const parsed = parseServerFrame(raw);
  return parsed.ok ? parsed.frame : null;
}

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
