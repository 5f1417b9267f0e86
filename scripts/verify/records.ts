// What `npm run verify` observes and reads back, as the checker takes it (checker.ts): the observation log
// (the messages and changes the workload sent and every answer, each member's sessions and what they
// received, incidents) and the server's word on each conversation afterwards (truth.ts). Types only.

/** What a change entry does (docs/protocol.md 15): the `change` field of an entry. */
export type ChangeRecordOp =
  | { type: "edit"; target: number; version: number; body?: string }
  | { type: "delete"; target: number }
  | { type: "reaction"; target: number; emoji: string; on: boolean; count: number };

/** One entry of a conversation's stream (a message, or a change entry) as a client, history or D1 saw it. */
export interface EntryRecord {
  seq: number;
  id: string;
  senderId: string;
  clientMsgId: string;
  body: string;
  createdAt?: number;
  edited?: { at: number; version: number };
  deleted?: { at: number; by: string };
  reactions?: { emoji: string; count: number; me?: boolean }[];
  change?: ChangeRecordOp;
}
/** The name the checker had before entries could be changes. */
export type MessageRecord = EntryRecord;

export interface ReactionState {
  emoji: string;
  count: number;
  me: boolean;
}

/** The comparable final state of one message (applier.ts). */
export interface MessageState {
  seq: number;
  id: string;
  senderId: string;
  body: string;
  edited: { at: number; version: number } | undefined;
  deleted: { at: number; by: string } | undefined;
  reactions: ReactionState[];
}

/** What a member asked to change, over all its attempts. */
export type ChangeRequestRecord =
  | { type: "edit"; seq: number; body: string }
  | { type: "delete"; seq: number }
  | { type: "react"; seq: number; emoji: string; on: boolean };

/** One change the workload generated (one clientMsgId), over all its attempts. */
export interface ChangeRecord {
  conversationId: string;
  senderId: string;
  /** The sender is the group's owner (may delete anyone's message). */
  senderIsOwner: boolean;
  clientMsgId: string;
  request: ChangeRequestRecord;
  /** Why the workload chose it: "fresh" (should be stored), or a case with a documented answer. */
  intent: "fresh" | "own_deleted" | "others_deleted" | "forbidden" | "already";
  attempts: number;
  acks: AckRecord[];
  /** Final error codes received for it (retryable ones like rate_limited are not recorded). */
  errors: string[];
  abandoned: boolean;
}

/** An ack as the sender received it. */
export interface AckRecord {
  seq: number;
  id: string;
  duplicate: boolean;
}

/** One message the workload generated (one clientMsgId), over all its send attempts. */
export interface SendRecord {
  conversationId: string;
  senderId: string;
  clientMsgId: string;
  body: string;
  /** Frames that carried it (first send + resends). */
  attempts: number;
  /** Every ack received for it, in arrival order. All must name the same seq and id. */
  acks: AckRecord[];
  /** Sent, then its ack was deliberately lost and it was never retried: it may be stored at most once. */
  abandoned: boolean;
}

/** One socket connection of a member: what it asked for and every chat message it received, in order. */
export interface SessionRecord {
  since: number | null;
  welcome: { epoch: string; lastSeq: number; reset: boolean } | null;
  messages: MessageRecord[];
}

/** Everything one member received in one conversation, over all its reconnects. */
export interface MemberStream {
  conversationId: string;
  userId: string;
  sessions: SessionRecord[];
}

/** The server's word on a conversation after the run. */
/** An archived row's columns as D1 and the R2 segments both hold them (the checker reads both directly). */
export interface ArchivedColumns {
  seq: number;
  id: string;
  senderId: string;
  clientMsgId: string;
  body: string;
  createdAt: number;
  extra: string | null;
}

export interface ConversationTruth {
  conversationId: string;
  epoch: string;
  lastSeq: number;
  /** Every message read back through the history API (hot tail + D1 pages), any order. */
  history: MessageRecord[];
  /**
   * The archive's rows read directly: D1 and (local runs) the cold tier's R2 segments; null when it could not be
   * read directly (then only the API saw it).
   */
  d1: MessageRecord[] | null;
  /** How many of `d1` came from R2 segments. */
  coldRows?: number;
  /**
   * Every entry as each member read it through the history API (with `me` for that member), by user id.
   * The member whose read is `history` may be absent here. Members without a read are compared to `history`
   * without `me`.
   */
  memberHistories?: Record<string, MessageRecord[]>;
}

/** Things the workload itself saw go wrong (unexpected error frames, terminal closes, timeouts). */
export interface IncidentRecord {
  kind: "unexpected_error" | "unexpected_close" | "timeout";
  conversationId: string;
  userId: string;
  detail: string;
}

export interface ObservationLog {
  sends: SendRecord[];
  /** Edits, deletes and reactions the workload asked for (protocol 15). */
  changes: ChangeRecord[];
  streams: MemberStream[];
  conversations: ConversationTruth[];
  incidents: IncidentRecord[];
}
