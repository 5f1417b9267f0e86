// The user's inbox: one row per conversation with its last message and this user's delivered/read cursors,
// the unread total, the conversations the user has left, and when a new message becomes a push notification.
// Owns the `inbox` and `departed` tables.
//
// Conversation objects are authoritative: updates arrive from their fan-out (by RPC, or through
// FANOUT_QUEUE for large conversations) in any order and possibly twice, so every field only moves forward.
import type { InboxEntry, InboxPage } from "../../protocol/user";
import { AppError, rpcResult, type RpcResult } from "../../lib/errors";
import { conversationStub } from "../shared/stubs";
import type { ConversationSummary, FanoutTarget, PushJob } from "../shared/updates";
import type { UserSockets } from "./connection";
import type { Meta } from "./meta";

interface InboxRow extends Record<string, SqlStorageValue> {
  conversationId: string;
  type: string;
  title: string | null;
  peerId: string | null;
  peerUsername: string | null;
  lastSeq: number;
  lastSender: string | null;
  lastPreview: string | null;
  lastAt: number | null;
  deliveredSeq: number;
  readSeq: number;
  updatedAt: number;
}

const INBOX_COLUMNS = `conversation_id AS conversationId, type, title, peer_id AS peerId, peer_username AS peerUsername,
  last_seq AS lastSeq, last_sender AS lastSender, last_preview AS lastPreview, last_at AS lastAt,
  delivered_seq AS deliveredSeq, read_seq AS readSeq, updated_at AS updatedAt`;

export interface InboxDeps {
  env: Env;
  sql: SqlStorage;
  meta: Meta;
  sockets: UserSockets;
  /** Whether any device is connected (presence.ts): a connected user gets no push. */
  isOnline: () => boolean;
}

export class Inbox {
  readonly #deps: InboxDeps;
  readonly #sql: SqlStorage;

  constructor(deps: InboxDeps) {
    this.#deps = deps;
    this.#sql = deps.sql;
  }

  /** Apply a conversation update from the fan-out. Idempotent and order-insensitive: every field only moves forward. */
  async update(summary: ConversationSummary, target: FanoutTarget): Promise<void> {
    const { meta, sockets } = this.#deps;
    const userId = target.userId;
    meta.set("user_id", userId);
    const departed = this.#sql
      .exec<{ at: number }>("SELECT removed_at AS at FROM departed WHERE conversation_id = ?", summary.conversationId)
      .toArray()[0];
    if (departed && target.joinedAt <= departed.at) return; // a late update about a membership that has ended
    if (departed) this.#sql.exec("DELETE FROM departed WHERE conversation_id = ?", summary.conversationId);
    const before = this.#row(summary.conversationId);
    const peer = summary.directMembers?.find((m) => m.userId !== userId) ?? null;
    const last = summary.lastMessage;
    const updatedAt = Math.max(before?.updatedAt ?? 0, last?.createdAt ?? 0, before ? 0 : target.joinedAt);
    this.#sql.exec(
      `INSERT INTO inbox (conversation_id, type, title, peer_id, peer_username, last_seq, last_sender, last_preview, last_at, delivered_seq, read_seq, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (conversation_id) DO UPDATE SET
         title = excluded.title,
         peer_id = excluded.peer_id,
         peer_username = excluded.peer_username,
         last_sender = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_sender ELSE inbox.last_sender END,
         last_preview = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_preview ELSE inbox.last_preview END,
         last_at = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_at ELSE inbox.last_at END,
         last_seq = max(inbox.last_seq, excluded.last_seq),
         delivered_seq = max(inbox.delivered_seq, excluded.delivered_seq),
         read_seq = max(inbox.read_seq, excluded.read_seq),
         updated_at = max(inbox.updated_at, excluded.updated_at)`,
      summary.conversationId,
      summary.type,
      summary.title,
      peer?.userId ?? null,
      peer?.username ?? null,
      summary.lastSeq,
      last?.senderId ?? null,
      last?.preview ?? null,
      last?.createdAt ?? null,
      target.deliveredSeq,
      target.readSeq,
      updatedAt,
    );
    const after = this.#row(summary.conversationId)!;
    const total = this.totalUnread();
    const changed =
      !before ||
      before.lastSeq !== after.lastSeq ||
      before.readSeq !== after.readSeq ||
      before.deliveredSeq !== after.deliveredSeq ||
      before.title !== after.title;
    if (changed) sockets.broadcast({ type: "inbox_update", entry: toEntry(after), totalUnread: total });
    const others = summary.receipts.filter((c) => c.userId !== userId);
    if (others.length > 0) sockets.broadcast({ type: "receipts", conversationId: summary.conversationId, cursors: others });
    await this.#pushIfOffline(userId, summary, before, after, total);
  }

  /** Removed from (or left) a conversation: it leaves the inbox and the unread total. */
  removed(conversationId: string, removedAt: number): void {
    const existed = this.#row(conversationId) !== null;
    this.#sql.exec("DELETE FROM inbox WHERE conversation_id = ?", conversationId);
    this.#sql.exec(
      "INSERT INTO departed (conversation_id, removed_at) VALUES (?, ?) ON CONFLICT (conversation_id) DO UPDATE SET removed_at = max(removed_at, excluded.removed_at)",
      conversationId,
      removedAt,
    );
    if (existed) this.#deps.sockets.broadcast({ type: "inbox_remove", conversationId, totalUnread: this.totalUnread() });
  }

  /** Newest activity first, keyset-paginated so a user in thousands of conversations pages fast. */
  page(cursor: string | null, limit: number): Promise<RpcResult<InboxPage>> {
    return rpcResult(() => {
      let rows: InboxRow[];
      if (cursor) {
        const m = /^(\d{1,16})\.([A-Za-z0-9_-]{1,64})$/.exec(cursor);
        if (!m) throw new AppError("validation_failed", "cursor: invalid");
        rows = this.#sql
          .exec<InboxRow>(
            `SELECT ${INBOX_COLUMNS} FROM inbox WHERE (updated_at, conversation_id) < (?, ?) ORDER BY updated_at DESC, conversation_id DESC LIMIT ?`,
            Number(m[1]),
            m[2]!,
            limit + 1,
          )
          .toArray();
      } else {
        rows = this.#sql.exec<InboxRow>(`SELECT ${INBOX_COLUMNS} FROM inbox ORDER BY updated_at DESC, conversation_id DESC LIMIT ?`, limit + 1).toArray();
      }
      const page = rows.slice(0, limit);
      const lastRow = page[page.length - 1];
      return {
        conversations: page.map(toEntry),
        nextCursor: rows.length > limit && lastRow ? `${lastRow.updatedAt}.${lastRow.conversationId}` : null,
        totalUnread: this.totalUnread(),
      };
    });
  }

  /** A receipt reported on the user socket or over REST: forwarded to the conversation, which is authoritative. */
  async reportReceipt(userId: string, conversationId: string, delivered?: number, read?: number): Promise<RpcResult<null>> {
    const result = await conversationStub(this.#deps.env, conversationId).applyReceipt(userId, delivered, read);
    if (!result.ok) return result;
    // Apply locally at once so the unread badge moves without waiting for the fan-out.
    this.#applyCursor(conversationId, result.value.deliveredSeq, result.value.readSeq);
    return { ok: true, value: null };
  }

  totalUnread(): number {
    return this.#sql.exec<{ n: number | null }>("SELECT sum(max(last_seq - read_seq, 0)) AS n FROM inbox").one().n ?? 0;
  }

  /** The conversation confirmed this user's cursors: keep the inbox in step. */
  #applyCursor(conversationId: string, deliveredSeq: number, readSeq: number): void {
    const before = this.#row(conversationId);
    if (!before) return;
    this.#sql.exec(
      "UPDATE inbox SET delivered_seq = max(delivered_seq, ?), read_seq = max(read_seq, ?) WHERE conversation_id = ?",
      deliveredSeq,
      readSeq,
      conversationId,
    );
    const after = this.#row(conversationId)!;
    if (after.readSeq !== before.readSeq || after.deliveredSeq !== before.deliveredSeq) {
      this.#deps.sockets.broadcast({ type: "inbox_update", entry: toEntry(after), totalUnread: this.totalUnread() });
    }
  }

  /** Push only for new messages from someone else, and only when no device is connected. */
  async #pushIfOffline(userId: string, summary: ConversationSummary, before: InboxRow | null, after: InboxRow, total: number): Promise<void> {
    const { env, isOnline } = this.#deps;
    const last = summary.lastMessage;
    const fresh = last && after.lastSeq > (before?.lastSeq ?? 0) && last.senderId !== userId && after.lastSeq > after.readSeq;
    if (!fresh || !env.PUSH_WEBHOOK_URL || isOnline()) return;
    const job: PushJob = {
      userId,
      conversationId: summary.conversationId,
      seq: last.seq,
      senderId: last.senderId,
      preview: last.preview,
      unread: after.lastSeq - after.readSeq,
      totalUnread: total,
      createdAt: last.createdAt,
    };
    await env.PUSH_QUEUE.send(job);
  }

  #row(conversationId: string): InboxRow | null {
    return this.#sql.exec<InboxRow>(`SELECT ${INBOX_COLUMNS} FROM inbox WHERE conversation_id = ?`, conversationId).toArray()[0] ?? null;
  }
}

function toEntry(r: InboxRow): InboxEntry {
  return {
    conversationId: r.conversationId,
    type: r.type === "direct" ? "direct" : "group",
    title: r.title,
    peer: r.peerId ? { userId: r.peerId, username: r.peerUsername ?? "" } : null,
    lastSeq: r.lastSeq,
    lastMessage:
      r.lastSender !== null && r.lastAt !== null
        ? { seq: r.lastSeq, senderId: r.lastSender, preview: r.lastPreview ?? "", createdAt: r.lastAt }
        : null,
    unread: Math.max(0, r.lastSeq - r.readSeq),
    deliveredSeq: r.deliveredSeq,
    readSeq: r.readSeq,
    updatedAt: r.updatedAt,
  };
}
