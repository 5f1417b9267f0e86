// The wire protocol of a conversation socket: one discriminated union per direction.
// Imported by the Worker, the Durable Objects and the client SDK, so both ends cannot drift.
// docs/protocol.md is the prose version of this file.
import * as v from "valibot";
import type { ErrorCode } from "./errors";
import { ReactionSchema } from "./reactions";
import { ReceiptFrameSchema, TypingFrameSchema, type ReceiptCursor } from "./user";

/**
 * The newest protocol version. Version 2 adds change entries to the stream (edits, deletes, reactions:
 * docs/protocol.md 15) and the frames that make them. A version-1 socket receives the very same frames; a
 * version-1 client shows a change entry as a message with its fallback `body` (15.6).
 */
export const PROTOCOL_VERSION = 2;
/** The WebSocket subprotocol. Browsers carry the access token as a second entry, `bearer.<token>`. */
export const SUBPROTOCOL = "edgechat.v1";
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1, 2];

/** The application ping. Sent byte-for-byte, it is answered by the runtime without waking the object. */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/** Hard cap on one incoming frame, checked before JSON.parse. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Default cap on a message body in UTF-8 bytes (the server's MAX_BODY_BYTES may differ). */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024;
/** Messages per `backlog` frame on connect; and the most messages in one `send_batch`. */
export const BACKLOG_PAGE_SIZE = 100;
export const MAX_BATCH_MESSAGES = 50;

export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const ClientMsgIdSchema = v.pipe(
  v.string("clientMsgId must be a string"),
  v.regex(/^[A-Za-z0-9_.:-]{1,64}$/, "clientMsgId must be 1-64 characters of A-Z a-z 0-9 _ . : -"),
);

/** Structural check only; the byte limit is enforced by the server with its configured maximum. */
export const BodySchema = v.pipe(
  v.string("body must be a string"),
  v.minLength(1, "body must not be empty"),
  v.maxLength(256 * 1024, "body is too large"),
  v.check((s) => !LONE_SURROGATE.test(s), "body must be well-formed Unicode (no lone surrogates)"),
);
/** The body of a message with attachments may be empty. */
const BodyOrEmptySchema = v.pipe(
  v.string("body must be a string"),
  v.maxLength(256 * 1024, "body is too large"),
  v.check((s) => !LONE_SURROGATE.test(s), "body must be well-formed Unicode (no lone surrogates)"),
);

/** `at_<time+random>.<conversationId>` (protocol 13). Defined here, where messages reference attachments. */
export const ATTACHMENT_ID_RE = /^at_[0-9a-z]{26}\.[A-Za-z0-9_-]{1,64}$/;
/** Attachments one message may reference. */
export const MAX_MESSAGE_ATTACHMENTS = 10;
export const AttachmentIdsSchema = v.pipe(
  v.array(v.pipe(v.string("attachment ids are strings"), v.regex(ATTACHMENT_ID_RE, "not an attachment id")), "attachments must be an array of ids"),
  v.maxLength(MAX_MESSAGE_ATTACHMENTS, `at most ${MAX_MESSAGE_ATTACHMENTS} attachments per message`),
  v.check((ids) => new Set(ids).size === ids.length, "an attachment can be referenced once per message"),
);

/** Members one message may mention by id (docs/protocol.md 15.5). */
export const MAX_MESSAGE_MENTIONS = 50;
const SeqSchema = v.pipe(v.number("seq must be a number"), v.integer("seq must be an integer"), v.minValue(1, "seq must be at least 1"), v.maxValue(Number.MAX_SAFE_INTEGER));
export const MentionsSchema = v.pipe(
  v.array(v.pipe(v.string("mentions are user ids"), v.regex(/^[A-Za-z0-9_-]{1,64}$/, "not a user id")), "mentions must be an array of user ids"),
  v.maxLength(MAX_MESSAGE_MENTIONS, `at most ${MAX_MESSAGE_MENTIONS} mentions per message`),
  v.check((ids) => new Set(ids).size === ids.length, "a user can be mentioned once per message"),
);

const MESSAGE_FIELDS = {
  clientMsgId: ClientMsgIdSchema,
  body: BodyOrEmptySchema,
  attachments: v.optional(AttachmentIdsSchema),
  /** The seq of an earlier message of this conversation this one replies to (15.4). */
  replyTo: v.optional(SeqSchema),
  /** Members mentioned (15.5). */
  mentions: v.optional(MentionsSchema),
  /** Mentions everyone (groups: owners and admins only). */
  mentionsAll: v.optional(v.boolean("mentionsAll must be a boolean")),
};
/** A message needs a body, attachments, or both. */
const hasContent = (m: { body: string; attachments?: string[] }) => m.body.length > 0 || (m.attachments?.length ?? 0) > 0;

export const OutgoingMessageSchema = v.pipe(
  v.object(MESSAGE_FIELDS),
  v.forward(
    v.check((m) => hasContent(m), "body must not be empty"),
    ["body"],
  ),
);
export type OutgoingMessage = v.InferOutput<typeof OutgoingMessageSchema>;

// ---------------------------------------------------------------- client -> server

export const SendFrameSchema = v.pipe(
  v.object({ type: v.literal("send"), ...MESSAGE_FIELDS }),
  v.forward(
    v.check((m) => hasContent(m), "body must not be empty"),
    ["body"],
  ),
);

/** Several messages in one frame: one storage commit for all of them (group commit). */
export const SendBatchFrameSchema = v.object({
  type: v.literal("send_batch"),
  messages: v.pipe(
    v.array(OutgoingMessageSchema, "messages must be an array"),
    v.minLength(1, "messages must not be empty"),
    v.maxLength(MAX_BATCH_MESSAGES, `at most ${MAX_BATCH_MESSAGES} messages per batch`),
  ),
});

export const PingFrameSchema = v.object({ type: v.literal("ping") });

// Changes to a message (docs/protocol.md 15). Each is answered like a send: an `ack` naming its clientMsgId
// (the seq of the change entry it stored) or an `error`; and the entry reaches every live socket as a
// `message` frame whose message has a `change`.

/** The sender replaces a message's body (15.1). Empty only for a message with attachments (checked by the server). */
export const EditFrameSchema = v.object({ type: v.literal("edit"), clientMsgId: ClientMsgIdSchema, seq: SeqSchema, body: BodyOrEmptySchema });
/** The sender, or a group's owner or admin, deletes a message (15.2). */
export const DeleteFrameSchema = v.object({ type: v.literal("delete"), clientMsgId: ClientMsgIdSchema, seq: SeqSchema });
/** A member adds (`on: true`) or removes (`on: false`) their reaction to a message (15.3). */
export const ReactFrameSchema = v.object({
  type: v.literal("react"),
  clientMsgId: ClientMsgIdSchema,
  seq: SeqSchema,
  emoji: ReactionSchema,
  on: v.boolean("on must be a boolean"),
});
export type EditFrame = v.InferOutput<typeof EditFrameSchema>;
export type DeleteFrame = v.InferOutput<typeof DeleteFrameSchema>;
export type ReactFrame = v.InferOutput<typeof ReactFrameSchema>;
/** One change a member asks for, as the conversation object applies it (socket frame or REST call). */
export type ChangeRequest = EditFrame | DeleteFrame | ReactFrame;

export const ClientFrameSchema = v.variant("type", [
  SendFrameSchema,
  SendBatchFrameSchema,
  PingFrameSchema,
  TypingFrameSchema,
  ReceiptFrameSchema,
  EditFrameSchema,
  DeleteFrameSchema,
  ReactFrameSchema,
]);
export type ClientFrame = v.InferOutput<typeof ClientFrameSchema>;
export type ClientFrameType = ClientFrame["type"];
const CLIENT_FRAME_TYPES: ReadonlySet<string> = new Set<ClientFrameType>(["send", "send_batch", "ping", "typing", "receipt", "edit", "delete", "react"]);

// ---------------------------------------------------------------- server -> client

export interface ChatMessage {
  /** Position in the conversation: 1, 2, 3... strictly increasing, no gaps. */
  seq: number;
  /** Server-assigned unique id. */
  id: string;
  senderId: string;
  /** The sender's idempotency key. */
  clientMsgId: string;
  body: string;
  /** Milliseconds since the Unix epoch, assigned by the server. */
  createdAt: number;
  /** Files and images (protocol 13); absent when there are none. */
  attachments?: MessageAttachment[];
  /** The message this one replies to, with a short quote that follows the parent's edits and delete (15.4). */
  replyTo?: ReplyQuote;
  /** Members mentioned by id (15.5). */
  mentions?: string[];
  /** Mentions everyone in the conversation. */
  mentionsAll?: true;
  /** Set once the body was edited: when, and the version (the original is 1, each edit adds 1). */
  edited?: { at: number; version: number };
  /** A tombstone: the body, attachments, mentions, reply quote and reactions are gone from every tier (15.2). */
  deleted?: { at: number; by: string };
  /** Reaction summary, most reacted first; `me` is set on reads for one user (history, backlog), never in live frames. */
  reactions?: ReactionCount[];
  /** On a thread's parent: how many replies, and when the newest was sent. */
  replies?: { count: number; lastAt: number };
  /** Present on a change entry: this entry is not a message but changes the message `change.target` (15). */
  change?: MessageChange;
}

export interface ReplyQuote {
  seq: number;
  senderId: string;
  /** The parent's body, on one line, at most 140 characters (its first file's name when it has no text). */
  quote: string;
  /** The parent was deleted: the quote is empty. */
  deleted?: true;
}

export interface ReactionCount {
  emoji: string;
  count: number;
  me?: boolean;
}

/**
 * What a change entry does to its target. Applying one sets state (it never adds to it), so applying an
 * entry a second time, or after reading the target's current state, changes nothing (15.6).
 */
export type MessageChange =
  /** The target's body is now `body` at `version` (`body` is absent once a later edit or a delete replaced it). */
  | { type: "edit"; target: number; version: number; body?: string }
  /** The target is deleted (a tombstone). */
  | { type: "delete"; target: number }
  /** The entry's sender reacted with `emoji` (`on`) or took it back; `count` is that emoji's count after this entry. */
  | { type: "reaction"; target: number; emoji: string; on: boolean; count: number };

/** An attachment as a message carries it (protocol 13.1). */
export interface MessageAttachment {
  id: string;
  name: string;
  size: number;
  contentType: string;
  width?: number;
  height?: number;
  preview?: string;
}

export const ChatMessageSchema = v.object({
  seq: v.pipe(v.number(), v.integer(), v.minValue(1)),
  id: v.string(),
  senderId: v.string(),
  clientMsgId: v.string(),
  body: v.string(),
  createdAt: v.number(),
  attachments: v.optional(
    v.array(
      v.object({
        id: v.string(),
        name: v.string(),
        size: v.number(),
        contentType: v.string(),
        width: v.optional(v.number()),
        height: v.optional(v.number()),
        preview: v.optional(v.string()),
      }),
    ),
  ),
  replyTo: v.optional(v.object({ seq: v.number(), senderId: v.string(), quote: v.string(), deleted: v.optional(v.literal(true)) })),
  mentions: v.optional(v.array(v.string())),
  mentionsAll: v.optional(v.literal(true)),
  edited: v.optional(v.object({ at: v.number(), version: v.number() })),
  deleted: v.optional(v.object({ at: v.number(), by: v.string() })),
  reactions: v.optional(v.array(v.object({ emoji: v.string(), count: v.number(), me: v.optional(v.boolean()) }))),
  replies: v.optional(v.object({ count: v.number(), lastAt: v.number() })),
  change: v.optional(
    v.variant("type", [
      v.object({ type: v.literal("edit"), target: v.number(), version: v.number(), body: v.optional(v.string()) }),
      v.object({ type: v.literal("delete"), target: v.number() }),
      v.object({ type: v.literal("reaction"), target: v.number(), emoji: v.string(), on: v.boolean(), count: v.number() }),
    ]),
  ),
});

const WelcomeFrameSchema = v.object({
  type: v.literal("welcome"),
  protocol: v.number(),
  conversationId: v.string(),
  userId: v.string(),
  epoch: v.string(),
  lastSeq: v.number(),
  /** True when the client's `epoch`/`since` does not match this stream: drop local state and reload. */
  reset: v.boolean(),
  /** The lowest seq the stream still holds, when retention deleted older messages (docs/protocol.md 16). */
  firstSeq: v.optional(v.number()),
});
const BacklogFrameSchema = v.object({ type: v.literal("backlog"), messages: v.array(ChatMessageSchema) });
const CaughtUpFrameSchema = v.object({ type: v.literal("caught_up"), seq: v.number() });
const MessageFrameSchema = v.object({ type: v.literal("message"), message: ChatMessageSchema });
const AckFrameSchema = v.object({
  type: v.literal("ack"),
  clientMsgId: v.string(),
  seq: v.number(),
  id: v.string(),
  createdAt: v.number(),
  /** True when this clientMsgId was already stored: the original message's ack is repeated. */
  duplicate: v.boolean(),
});
const ErrorFrameSchema = v.object({
  type: v.literal("error"),
  code: v.string(),
  message: v.string(),
  clientMsgId: v.optional(v.string()),
  retryAfterMs: v.optional(v.number()),
});
const MemberRefSchema = v.object({ userId: v.string(), username: v.string(), role: v.picklist(["owner", "admin", "member"]) });
const MembersChangedFrameSchema = v.object({
  type: v.literal("members_changed"),
  added: v.array(MemberRefSchema),
  removed: v.array(v.string()),
  /** Members whose role changed (promotion, demotion, or inheriting ownership). Optional: absent from older servers. */
  updated: v.optional(v.array(MemberRefSchema)),
});
const PongFrameSchema = v.object({ type: v.literal("pong") });
const TypingServerFrameSchema = v.object({
  type: v.literal("typing"),
  userId: v.string(),
  username: v.string(),
  active: v.boolean(),
  /** Hide the indicator at this time (ms) unless renewed. */
  expiresAt: v.number(),
});
const ReceiptsFrameSchema = v.object({
  type: v.literal("receipts"),
  conversationId: v.string(),
  cursors: v.array(v.object({ userId: v.string(), deliveredSeq: v.number(), readSeq: v.number() })),
});

export const ServerFrameSchema = v.variant("type", [
  WelcomeFrameSchema,
  BacklogFrameSchema,
  CaughtUpFrameSchema,
  MessageFrameSchema,
  AckFrameSchema,
  ErrorFrameSchema,
  MembersChangedFrameSchema,
  PongFrameSchema,
  TypingServerFrameSchema,
  ReceiptsFrameSchema,
]);
export type { ReceiptCursor };
export type ServerFrame = v.InferOutput<typeof ServerFrameSchema>;
export type ErrorFrame = v.InferOutput<typeof ErrorFrameSchema> & { code: ErrorCode };

// ---------------------------------------------------------------- parsing

export type ParseResult<T> =
  | { ok: true; frame: T }
  | { ok: false; code: ErrorCode; message: string; clientMsgId?: string };

const utf8 = new TextEncoder();

/** UTF-8 length without allocating when the answer is obvious. */
export function utf8Length(s: string): number {
  if (s.length * 3 <= 1024) return utf8.encode(s).length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function firstIssue(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (!issue) return "invalid frame";
  const path = issue.path?.map((p) => String(p.key)).join(".");
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** Parse one client frame of the conversation socket. */
export function parseClientFrame(raw: string | ArrayBuffer): ParseResult<ClientFrame> {
  return parseFrame(raw, ClientFrameSchema, CLIENT_FRAME_TYPES);
}

/**
 * Parse one incoming frame against a socket's union of frame types. Never throws; oversized frames are
 * refused before JSON.parse; an unknown `type` gets its own code. Shared by the conversation and user sockets.
 */
export function parseFrame<const S extends v.GenericSchema>(
  raw: string | ArrayBuffer,
  schema: S,
  types: ReadonlySet<string>,
): ParseResult<v.InferOutput<S>> {
  if (typeof raw !== "string") {
    return { ok: false, code: "bad_request", message: "binary frames are not supported; send JSON text" };
  }
  // Cheap bound first (a UTF-16 unit is at most 3 UTF-8 bytes), exact count only when needed.
  if (raw.length > MAX_FRAME_BYTES || (raw.length * 3 > MAX_FRAME_BYTES && utf8Length(raw) > MAX_FRAME_BYTES)) {
    return { ok: false, code: "frame_too_large", message: `frames are limited to ${MAX_FRAME_BYTES} bytes` };
  }
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, code: "invalid_json", message: "frame is not valid JSON" };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, code: "validation_failed", message: "frame must be a JSON object" };
  }
  const record = data as Record<string, unknown>;
  const clientMsgId = typeof record.clientMsgId === "string" && record.clientMsgId.length <= 64 ? record.clientMsgId : undefined;
  if (typeof record.type !== "string") {
    return { ok: false, code: "validation_failed", message: "type: must be a string", clientMsgId };
  }
  if (!types.has(record.type)) {
    return { ok: false, code: "unknown_frame_type", message: `unknown frame type "${record.type.slice(0, 40)}"`, clientMsgId };
  }
  const parsed = v.safeParse(schema, data);
  if (!parsed.success) return { ok: false, code: "validation_failed", message: firstIssue(parsed.issues), clientMsgId };
  return { ok: true, frame: parsed.output };
}

/** Parse one server frame (used by clients). */
export function parseServerFrame(raw: string): ParseResult<ServerFrame> {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, code: "invalid_json", message: "frame is not valid JSON" };
  }
  const parsed = v.safeParse(ServerFrameSchema, data);
  if (!parsed.success) return { ok: false, code: "validation_failed", message: firstIssue(parsed.issues) };
  return { ok: true, frame: parsed.output };
}

/** Generic validator for REST bodies and query strings, shared by routes. */
export function parseWith<const S extends v.GenericSchema>(
  schema: S,
  input: unknown,
): { ok: true; value: v.InferOutput<S> } | { ok: false; message: string } {
  const parsed = v.safeParse(schema, input);
  return parsed.success ? { ok: true, value: parsed.output } : { ok: false, message: firstIssue(parsed.issues) };
}
