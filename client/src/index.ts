// @edgechat/client: the TypeScript SDK for edgechat. See README.md for a usage example.
export { ChatClient, type ChatClientOptions, type ChatClientEvents, type BlockedUser, type PrivacySettings } from "./client";
export { Conversation } from "./conversation";
export type { ConversationEvents } from "./events";
export type { NewAttachment, SendOptions } from "./outgoing";
export type { ReactionsSummary, ReactionUsersPage, ThreadPage } from "./history";
export { ChangeApplier, applyChange, isChangeEntry, quoteOf, tombstone, type ChangeEntry } from "./changes";
export { CLIENT_PROTOCOL_VERSIONS, fallbackVersion, negotiatedVersion, supportsChanges } from "./version";
export { isReaction, MAX_REACTION_BYTES, DEFAULT_MAX_REACTIONS_PER_MESSAGE } from "../../src/protocol/reactions";
export {
  Uploads,
  UploadError,
  isRetryableUploadError,
  type FileLike,
  type MultipartState,
  type UploadOptions,
  type UploadProgress,
  type UploadRetryOptions,
  type UploadsOptions,
} from "./attachments";
export type { ReceiptCounts } from "./receipts";
export type { MessageStatus, StatusChange } from "./sending";
export type { TypingUser } from "./typing";
export { Auth, type Session, type SharedSessionOptions } from "./auth";
export { ApiError, type FetchLike } from "./http";
export { Backoff, backoffDelay, type BackoffOptions } from "./backoff";
export { Emitter, type Listener } from "./emitter";
export {
  IndexedDBOutboxStorage,
  MemoryOutboxStorage,
  Outbox,
  isChangeItem,
  newClientMsgId,
  type OutboxChange,
  type OutboxAttachment,
  type OutboxItem,
  type OutboxStorage,
  type PendingAttachmentFile,
} from "./outbox";
export {
  ReconnectingSocket,
  type ConnectionError,
  type ConnectionState,
  type HeartbeatOptions,
  type SocketOptions,
  type TokenProvider,
  type TokenReason,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./transport";
export { parseConversationFrame, parseUserFrame, type ConversationServerFrame } from "./frames";
// The shared wire protocol, re-exported so apps need one import.
export type { ChatMessage, MessageAttachment, MessageChange, ReactionCount, ReplyQuote, ServerFrame, ClientFrame } from "../../src/protocol/frames";
export type { AttachmentInfo, MultipartUpload, SignedUrl, UploadedAttachment } from "../../src/protocol/attachments";
export { ATTACHMENT_ID_RE, MAX_MESSAGE_ATTACHMENTS, MULTIPART_PART_BYTES, MAX_PREVIEW_BYTES, INLINE_IMAGE_TYPES } from "../../src/protocol/attachments";
export { PROTOCOL_VERSION, PING_FRAME, MAX_MESSAGE_MENTIONS } from "../../src/protocol/frames";
export { CloseCode, TERMINAL_CLOSE_CODES, type ErrorCode } from "../../src/protocol/errors";
export type { AuthResponse, Conversation as ConversationInfo, HistoryPage, Member, PublicUser } from "../../src/protocol/api";
export type { InboxEntry, InboxPage, Presence, ReceiptCursor, ReceiptState } from "../../src/protocol/user";
