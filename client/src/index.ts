// @edgechat/client: the TypeScript SDK for edgechat. See README.md for a usage example.
export { ChatClient, type ChatClientOptions, type ChatClientEvents, type BlockedUser, type PrivacySettings } from "./client";
export { Conversation, type ConversationEvents } from "./conversation";
export type { ReceiptCounts } from "./receipts";
export type { MessageStatus, StatusChange } from "./sending";
export type { TypingUser } from "./typing";
export { Auth, type Session, type SharedSessionOptions } from "./auth";
export { ApiError, type FetchLike } from "./http";
export { Backoff, backoffDelay, type BackoffOptions } from "./backoff";
export { Emitter, type Listener } from "./emitter";
export { IndexedDBOutboxStorage, MemoryOutboxStorage, Outbox, newClientMsgId, type OutboxItem, type OutboxStorage } from "./outbox";
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
export type { ChatMessage, ServerFrame, ClientFrame } from "../../src/protocol/frames";
export { PROTOCOL_VERSION, PING_FRAME } from "../../src/protocol/frames";
export { CloseCode, TERMINAL_CLOSE_CODES, type ErrorCode } from "../../src/protocol/errors";
export type { AuthResponse, Conversation as ConversationInfo, HistoryPage, Member, PublicUser } from "../../src/protocol/api";
export type { InboxEntry, InboxPage, Presence, ReceiptCursor, ReceiptState } from "../../src/protocol/user";
