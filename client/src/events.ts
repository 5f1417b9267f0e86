// What an open Conversation tells the app: its events and their payloads (ConversationEvents), and the
// emit function the Conversation hands the modules it wires (./stream, ./outgoing) so they raise them.
import type { Member } from "../../src/protocol/api";
import type { ChatMessage } from "../../src/protocol/frames";
import type { ReceiptCursor } from "../../src/protocol/user";
import type { ApiError } from "./http";
import type { StatusChange } from "./sending";
import type { ConnectionError, ConnectionState } from "./transport";
import type { TypingUser } from "./typing";

export interface ConversationEvents {
  state: ConnectionState;
  /**
   * A new message, exactly once per seq, in seq order (own messages included, after their ack). Change
   * entries (edits, deletes, reactions) are not messages: they show up as `updated`.
   */
  message: ChatMessage;
  /**
   * A message held in `messages` changed: edited, deleted (now a tombstone), reacted to, replied to
   * (`replies`), or the quote of the message it replies to changed. The payload is the message as it is
   * now; it replaces the previous object in `messages` (same seq).
   */
  updated: ChatMessage;
  /** Older history was prepended (loadOlder). */
  older: ChatMessage[];
  /** The server said our position is stale (epoch changed): local messages were replaced by a fresh page. */
  reset: undefined;
  status: StatusChange;
  typing: TypingUser[];
  receipts: ReceiptCursor[];
  members: Member[];
  /** The backlog is delivered and the outbox flushed: the view is current. */
  synced: { lastSeq: number };
  /** This user marked the conversation read up to `seq`. */
  read: { seq: number };
  error: ConnectionError | ApiError;
  /** A file of a queued message is uploading: `file` is its index in the message's attachments. */
  uploadProgress: { clientMsgId: string; file: number; loaded: number; total: number };
  /** Anything visible changed: a convenient single re-render hook. */
  change: undefined;
}

/** Raise one of the Conversation's events (its listeners run at once, in the order they subscribed). */
export type Emit = <K extends keyof ConversationEvents>(event: K, payload: ConversationEvents[K]) => void;
