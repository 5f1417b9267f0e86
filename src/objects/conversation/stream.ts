// The message stream: the hot tail (`messages`) and the idempotency keys of pruned messages
// (`pruned_client_ids`). Owns seq assignment, idempotency and the per-message limits (body size, send
// rate). Everything here is synchronous SQL: no await, so nothing interleaves with an append.
import { utf8Length, type ChatMessage, type MessageAttachment, type MessageChange, type OutgoingMessage, type ReplyQuote } from "../../protocol/frames";
import type { ErrorCode } from "../../protocol/errors";
import type { ArchiveRow } from "../../db/archive";
import type { SendResult } from "../../protocol/api";
import { newId } from "../../lib/ids";
import type { Config } from "../../lib/config";
import type { TokenBuckets } from "../../lib/rate-limit";
import type { Capacity } from "./capacity";
import type { Meta } from "./meta";

/**
 * A row of `messages`, selected with MESSAGE_COLUMNS: the base wire fields, attachments as JSON (or null), and
 * `extra`, the JSON of every other wire field (replyTo, mentions, edited, deleted, reactions, replies, change)
 * plus `_`, bookkeeping that never leaves the object (changes.ts).
 */
export type StoredRow = Pick<ChatMessage, "seq" | "id" | "senderId" | "clientMsgId" | "body" | "createdAt"> & {
  attachments: string | null;
  extra: string | null;
};
type MessageRow = StoredRow & Record<string, SqlStorageValue>;

/** Bookkeeping kept in a message's `extra` under `_`, never sent (changes.ts). */
export interface Bookkeeping {
  /** The edit entries of this message: redacted when a newer edit or a delete replaces them. */
  edits?: { seq: number; version: number }[];
  /** The delete entry (a second delete answers with its ack). */
  deletedBy?: { seq: number; id: string; createdAt: number };
}
/** A message as stored: the wire shape plus its bookkeeping. */
export type StoredMessage = ChatMessage & { _?: Bookkeeping };

export type AppendError = {
  code: ErrorCode;
  message: string;
  clientMsgId: string;
  retryAfterMs?: number;
};
export type AppendResult = { ack: SendResult; fresh: ChatMessage[] } | { error: AppendError };

/** Replies and mentions of a new message (changes.ts): checked before it is stored, recorded after. */
export interface Relations {
  /** The `replyTo` quote and mentions a new message at `seq` carries, or why it is refused. */
  relate(senderId: string, item: OutgoingMessage, seq: number): Pick<ChatMessage, "replyTo" | "mentions" | "mentionsAll"> | Omit<AppendError, "clientMsgId">;
  /** Record a stored message's mentions and count it in its thread. */
  stored(message: ChatMessage): void;
}

/**
 * Takes the attachments a new message references for it (conversation/attachments.ts), inside the
 * message's transaction: their metadata, or why one cannot be used.
 */
export type ClaimAttachments = (senderId: string, ids: string[], seq: number) => { attachments: MessageAttachment[] } | { refused: string };

/** How long a client is told to wait before resending into a conversation at its storage ceiling. */
const STORAGE_FULL_RETRY_MS = 60_000;

const MESSAGE_COLUMNS = "seq, id, sender_id AS senderId, client_msg_id AS clientMsgId, body, created_at AS createdAt, attachments, extra";

/** A stored row (of this object or of D1) as a stored message: `attachments` only when there are some, `extra` merged in. */
export function toStored(row: StoredRow): StoredMessage {
  const { attachments, extra, ...base } = row;
  const message: StoredMessage = { ...base };
  if (attachments) message.attachments = JSON.parse(attachments) as MessageAttachment[];
  if (extra) Object.assign(message, JSON.parse(extra) as Partial<StoredMessage>);
  return message;
}

/** A stored row as the wire shape (bookkeeping dropped). */
export function toMessage(row: StoredRow): ChatMessage {
  return wire(toStored(row));
}

/** The wire shape of a stored message. */
export function wire(message: StoredMessage): ChatMessage {
  if (message._ === undefined) return message;
  const { _, ...rest } = message;
  return rest;
}

const BASE_FIELDS = new Set(["seq", "id", "senderId", "clientMsgId", "body", "createdAt", "attachments"]);

/** The three stored columns that change as a message changes: body, attachments, extra (JSON, null when empty). */
export function columnsOf(message: StoredMessage): { body: string; attachments: string | null; extra: string | null } {
  const extra: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(message)) if (!BASE_FIELDS.has(k) && value !== undefined) extra[k] = value;
  return {
    body: message.body,
    attachments: message.attachments?.length ? JSON.stringify(message.attachments) : null,
    extra: Object.keys(extra).length > 0 ? JSON.stringify(extra) : null,
  };
}

export class MessageStream {
  readonly #sql: SqlStorage;
  readonly #storage: DurableObjectStorage;
  readonly #config: Config;
  /** The send rate limiter (an accessor: tests replace the object's limiter). */
  readonly #limiter: () => TokenBuckets;
  readonly #capacity: Capacity;
  readonly #claim: ClaimAttachments;
  /** Highest seq assigned. Rebuilt from storage on every wake, so never stale. */
  #lastSeq: number;
  /** Messages (not change entries) up to lastSeq: unread counts are differences of this. Rebuilt on wake. */
  #lastCount: number;

  constructor(storage: DurableObjectStorage, meta: Meta, config: Config, limiter: () => TokenBuckets, capacity: Capacity, claim: ClaimAttachments) {
    this.#sql = storage.sql;
    this.#claim = claim;
    this.#storage = storage;
    this.#config = config;
    this.#limiter = limiter;
    this.#capacity = capacity;
    const hot = this.#sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM messages").one().s;
    this.#lastSeq = hot ?? meta.archivedSeq;
    this.#lastCount = this.countAt(this.#lastSeq);
  }

  get lastCount(): number {
    return this.#lastCount;
  }

  /**
   * How many messages (not change entries) have seq <= `seq`. Exact while `seq` is in the hot tail or among the
   * idempotency keys kept after pruning (IDEMPOTENCY_KEYS_KEPT); older than that, every entry counts as a message.
   * Rows stored before change entries existed have n NULL: they were all messages, so n = seq.
   */
  countAt(seq: number): number {
    if (seq <= 0) return 0;
    for (const table of ["messages", "pruned_client_ids"]) {
      const row = this.#sql.exec<{ seq: number; n: number | null }>(`SELECT seq, n FROM ${table} WHERE seq <= ? ORDER BY seq DESC LIMIT 1`, seq).toArray()[0];
      if (row) return row.n ?? row.seq;
    }
    return seq;
  }

  /** The newest message in the hot tail that is not a change entry and not deleted, in its current state. */
  newestMessage(): ChatMessage | null {
    const row = this.#sql
      .exec<MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE target IS NULL AND (extra IS NULL OR json_extract(extra, '$.deleted') IS NULL) ORDER BY seq DESC LIMIT 1`,
      )
      .toArray()[0];
    return row ? toMessage(row) : null;
  }

  /** Deleted messages with a seq above `afterSeq` (they are not unread). */
  deletedAfter(afterSeq: number): number {
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM deleted_messages WHERE seq > ?", afterSeq).one().n;
  }

  /** Messages from others after `afterSeq` that mention `userId` or everyone. */
  unreadMentions(userId: string, afterSeq: number): number {
    return this.#sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM mentions WHERE user_id IN (?, '*') AND seq > ? AND sender_id != ?", userId, afterSeq, userId)
      .one().n;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** When the oldest hot entry was created (null: the hot tail is empty). */
  oldestHotCreatedAt(): number | null {
    return this.#sql.exec<{ t: number }>("SELECT created_at AS t FROM messages ORDER BY seq LIMIT 1").toArray()[0]?.t ?? null;
  }

  /** The newest hot entry created before `time` (0: none). A scan of the hot tail: only for age bounds, off the hot path. */
  newestBefore(time: number): number {
    return this.#sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM messages WHERE created_at < ?", time).one().s ?? 0;
  }

  /**
   * Run `body` in one transaction: its writes commit together or not at all, and a rollback also
   * rolls back the seq counter. Appends happen only inside this.
   */
  atomically<T>(body: () => T): T {
    const before = this.#lastSeq;
    const count = this.#lastCount;
    try {
      return this.#storage.transactionSync(body);
    } catch (err) {
      this.#lastSeq = before;
      this.#lastCount = count;
      throw err;
    }
  }

  /**
   * Assign seqs and insert (call inside atomically()). Returns an ack per item (the original one for a
   * clientMsgId already stored) or a per-item error. `relations` checks and records replies and mentions (changes.ts).
   */
  append(senderId: string, items: OutgoingMessage[], now: number, relations: Relations): AppendResult[] {
    return items.map((item) => {
      // A retry is answered with the original ack even if the limits changed since.
      const existing = this.findByClientMsgId(senderId, item.clientMsgId);
      if (existing) return { ack: { ...existing, clientMsgId: item.clientMsgId, duplicate: true }, fresh: [] };
      const bodyBytes = utf8Length(item.body);
      if (bodyBytes > this.#config.maxBodyBytes) {
        return {
          error: {
            code: "body_too_large" as const,
            message: `message body is limited to ${this.#config.maxBodyBytes} bytes of UTF-8`,
            clientMsgId: item.clientMsgId,
          },
        };
      }
      const refused = this.admit(senderId, item.clientMsgId, now);
      if (refused) return { error: refused };
      const message: StoredMessage = { seq: this.#lastSeq + 1, id: newId("m", now), senderId, clientMsgId: item.clientMsgId, body: item.body, createdAt: now };
      if (item.replyTo !== undefined || item.mentions?.length || item.mentionsAll) {
        // After the rate limit, like attachments: a refused message takes its token too.
        const related = relations.relate(senderId, item, message.seq);
        if ("code" in related) return { error: { ...related, clientMsgId: item.clientMsgId } };
        Object.assign(message, related);
      }
      if (item.attachments?.length) {
        // Checked after the rate limit (a refused message takes its token too: an abuser cannot probe for free).
        const claimed = this.#claim(senderId, item.attachments, message.seq);
        if ("refused" in claimed) return { error: { code: "attachment_unavailable" as const, message: claimed.refused, clientMsgId: item.clientMsgId } };
        message.attachments = claimed.attachments;
      }
      this.#insert(message, this.#lastCount + 1, message.replyTo?.seq ?? null, null);
      this.#lastCount++;
      this.#capacity.stored(bodyBytes);
      if (message.replyTo || message.mentions || message.mentionsAll) relations.stored(message);
      const ack: SendResult = { clientMsgId: item.clientMsgId, seq: message.seq, id: message.id, createdAt: now, duplicate: false };
      return { ack, fresh: [message] };
    });
  }

  /**
   * The limits every new entry passes after its duplicate check: the storage ceiling and the send rate (one
   * token). Returns why it is refused, or null. `ceiling: false` for changes that free space (delete).
   */
  admit(senderId: string, clientMsgId: string, now: number, ceiling = true): AppendError | null {
    // At the storage ceiling nothing new is stored (a memory check; capacity.ts measures off the hot path).
    if (ceiling && this.#capacity.full) {
      return {
        code: "conversation_storage_full",
        message: "this conversation's storage is full until its archive catches up; resend later",
        clientMsgId,
        retryAfterMs: STORAGE_FULL_RETRY_MS,
      };
    }
    // Duplicates are free; each new entry takes a token.
    const { granted, retryAfterMs } = this.#limiter().take(senderId, 1, now);
    if (granted === 0) {
      return {
        code: "rate_limited",
        message: `sending too fast: at most ${this.#config.sendRatePerSecond} messages per second (burst ${this.#config.sendBurst})`,
        clientMsgId,
        retryAfterMs,
      };
    }
    return null;
  }

  /** Store a change entry (call inside atomically(), after its checks): the next seq, counted as no message. */
  appendChange(senderId: string, clientMsgId: string, body: string, change: MessageChange, now: number): StoredMessage {
    const entry: StoredMessage = { seq: this.#lastSeq + 1, id: newId("m", now), senderId, clientMsgId, body, createdAt: now, change };
    this.#insert(entry, this.#lastCount, null, change.target);
    this.#capacity.stored(utf8Length(body));
    return entry;
  }

  #insert(m: StoredMessage, n: number, replyTo: number | null, target: number | null): void {
    const { attachments, extra } = columnsOf(m);
    this.#sql.exec(
      "INSERT INTO messages (seq, id, sender_id, client_msg_id, body, created_at, attachments, n, reply_to, target, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      m.seq,
      m.id,
      m.senderId,
      m.clientMsgId,
      m.body,
      m.createdAt,
      attachments,
      n,
      replyTo,
      target,
      extra,
    );
    this.#lastSeq = m.seq;
  }

  /** A hot entry as stored (with its bookkeeping), or null when `seq` is not in the hot tail. */
  stored(seq: number): StoredMessage | null {
    const row = this.#sql.exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq = ?`, seq).toArray()[0];
    return row ? toStored(row) : null;
  }

  /** Rewrite a hot entry's changing columns (body, attachments, extra). False when it is not hot. */
  rewrite(message: StoredMessage): boolean {
    const c = columnsOf(message);
    this.#sql.exec("UPDATE messages SET body = ?, attachments = ?, extra = ? WHERE seq = ?", c.body, c.attachments, c.extra, message.seq);
    return this.#sql.exec<{ n: number }>("SELECT changes() AS n").one().n > 0;
  }

  /** Seqs of `senderId`'s messages in the hot tail (not change entries, not deleted) with lo <= seq <= hi, ascending. */
  hotMessagesOf(senderId: string, lo: number, hi: number): number[] {
    return this.#sql
      .exec<{ seq: number }>(
        "SELECT seq FROM messages WHERE seq BETWEEN ? AND ? AND sender_id = ? AND target IS NULL AND (extra IS NULL OR json_extract(extra, '$.deleted') IS NULL) ORDER BY seq",
        lo,
        hi,
        senderId,
      )
      .toArray()
      .map((r) => r.seq);
  }

  /** Hot replies to `parent` (seq ascending). */
  hotReplies(parent: number, after: number, limit: number): StoredMessage[] {
    return this.#sql
      .exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE reply_to = ? AND seq > ? ORDER BY seq LIMIT ?`, parent, after, limit)
      .toArray()
      .map(toStored);
  }

  /** Set `replyTo` on every hot reply to `parent`. */
  setQuotes(parent: number, quote: ReplyQuote): void {
    this.#sql.exec(
      "UPDATE messages SET extra = json_set(extra, '$.replyTo', json(?)) WHERE reply_to = ? AND json_extract(extra, '$.deleted') IS NULL",
      JSON.stringify(quote),
      parent,
    );
  }

  /** Up to `limit` hot entries after `after`, as the archive writes them (stored state and index columns). */
  archiveRows(after: number, limit: number): ArchiveRow[] {
    return this.#sql
      .exec<MessageRow & { replyTo: number | null; target: number | null }>(
        `SELECT ${MESSAGE_COLUMNS}, reply_to AS replyTo, target FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`,
        after,
        limit,
      )
      .toArray()
      .map(({ replyTo, target, ...row }) => ({ message: toStored(row), replyTo, target, columns: { body: row.body, attachments: row.attachments, extra: row.extra } }));
  }

  /** Lowest seq still in the hot tail, or null when it is empty. */
  oldestHotSeq(): number | null {
    return this.#sql.exec<{ s: number | null }>("SELECT min(seq) AS s FROM messages").one().s;
  }

  /** Hot messages with lo <= seq <= hi, ascending. */
  hotRange(lo: number, hi: number): ChatMessage[] {
    return this.#sql.exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq BETWEEN ? AND ? ORDER BY seq`, lo, hi).toArray().map(toMessage);
  }

  /** Up to `limit` hot messages after `after`, ascending, read lazily (a backlog page stops reading once it is full). */
  *hotCursor(after: number, limit: number): Iterable<ChatMessage> {
    for (const row of this.#sql.exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)) yield toMessage(row);
  }

  /**
   * Drop hot messages up to `to` (already archived). Their idempotency keys move to `pruned_client_ids`, which
   * keeps the keys of the newest `idempotencyKeysKept` pruned messages: bounded space (about 190 B a key with its index).
   */
  prune(to: number): void {
    this.#storage.transactionSync(() => {
      this.#sql.exec(
        "INSERT OR IGNORE INTO pruned_client_ids (sender_id, client_msg_id, seq, id, created_at, n) SELECT sender_id, client_msg_id, seq, id, created_at, n FROM messages WHERE seq <= ?",
        to,
      );
      this.#sql.exec("DELETE FROM messages WHERE seq <= ?", to);
      this.#sql.exec("DELETE FROM pruned_client_ids WHERE seq <= ?", to - this.#config.idempotencyKeysKept);
    });
  }

  findByClientMsgId(senderId: string, clientMsgId: string): { seq: number; id: string; createdAt: number } | null {
    const hot = this.#sql
      .exec<{ seq: number; id: string; createdAt: number }>(
        "SELECT seq, id, created_at AS createdAt FROM messages WHERE sender_id = ? AND client_msg_id = ?",
        senderId,
        clientMsgId,
      )
      .toArray()[0];
    if (hot) return hot;
    return (
      this.#sql
        .exec<{ seq: number; id: string; createdAt: number }>(
          "SELECT seq, id, created_at AS createdAt FROM pruned_client_ids WHERE sender_id = ? AND client_msg_id = ?",
          senderId,
          clientMsgId,
        )
        .toArray()[0] ?? null
    );
  }
}
