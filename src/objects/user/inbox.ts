// The user's inbox: one row per conversation with its last message and this user's delivered/read cursors,
// the unread total, the conversations the user has left, and when a new message becomes a push notification.
// Owns the `inbox` and `departed` tables.
//
// Conversation objects are authoritative: updates arrive from their fan-out (by RPC, or through
// FANOUT_QUEUE) in any order and possibly twice, so every field only moves forward. Large conversations
// are fanned out on read: their rows (`pull = 1`) are refreshed from the conversation when the inbox is
// read and while a user socket is open (inbox-pull.ts).
//
// Live events (`live`) arrive the moment a message is committed and go straight to the user sockets; they
// are kept in memory only, as an overlay on the stored rows until the stored fan-out catches up
// (inbox-live.ts), so a burst of messages costs no storage write here.
//
// What a row is, how unread is counted (in messages, not seqs) and the entry a client is shown: inbox-rows.ts.
import type { InboxPage } from "../../protocol/user";
import { AppError, rpcResult, type RpcResult } from "../../lib/errors";
import { isListedMember } from "../../db/memberships";
import { conversationStub } from "../shared/stubs";
import type { ConversationSummary, FanoutTarget, PushJob } from "../shared/updates";
import type { UserSockets } from "./connection";
import type { JobRunner } from "../shared/jobs";
import type { UserJob } from "./index";
import { LiveOverlays } from "./inbox-live";
import { InboxPull } from "./inbox-pull";
import { INBOX_COLUMNS, mentionsUser, readAt, readRow, shown, toEntry, UNREAD_SQL, unreadOf, type InboxRow } from "./inbox-rows";
import type { Meta } from "./meta";

export interface InboxDeps {
  ctx: DurableObjectState;
  env: Env;
  sql: SqlStorage;
  meta: Meta;
  sockets: UserSockets;
  /** Whether any device is connected (presence.ts): a connected user gets no push. */
  isOnline: () => boolean;
  jobs: JobRunner<UserJob>;
}

export class Inbox {
  readonly #deps: InboxDeps;
  readonly #sql: SqlStorage;
  readonly #live: LiveOverlays;
  readonly #pull: InboxPull;

  constructor(deps: InboxDeps) {
    this.#deps = deps;
    this.#sql = deps.sql;
    this.#live = new LiveOverlays(deps.sql);
    this.#pull = new InboxPull(deps, (summary, target, options) => this.update(summary, target, options));
  }

  /** A user socket opened: ask for live events again (inbox-pull.ts), and refresh large conversations' rows. */
  socketOpened(): void {
    this.#pull.socketOpened();
  }

  /**
   * Entries of a conversation, just committed: new messages, and edits or deletes that change the preview.
   * Tell the user sockets what changed. False when no user socket is open.
   */
  live(events: ConversationSummary[]): boolean {
    const { meta, sockets } = this.#deps;
    if (sockets.size === 0) {
      this.#pull.toldQuiet(events.map((e) => e.conversationId));
      return false;
    }
    const me = meta.get("user_id");
    for (const e of events) {
      const row = this.#row(e.conversationId);
      // A conversation the stored fan-out has not brought yet: its first update follows within milliseconds.
      if (!row) continue;
      const views = this.#live.record(row, e, me);
      if (!views) continue;
      const before = toEntry(views.before);
      const after = toEntry(views.after);
      if (shown(before) !== shown(after)) sockets.broadcast({ type: "inbox_update", entry: after, totalUnread: this.totalUnread() });
    }
    return true;
  }

  /** Ask large conversations where they are (fan-out on read); with `listen`, also for their live events. */
  refreshPulled(listen: boolean): Promise<void> {
    return this.#pull.refresh(listen);
  }

  /** Apply a conversation update from the fan-out. Idempotent and order-insensitive: every field only moves forward. */
  async update(summary: ConversationSummary, target: FanoutTarget, options: { push: boolean } = { push: true }): Promise<void> {
    const { meta, sockets } = this.#deps;
    const userId = target.userId;
    meta.set("user_id", userId);
    const departed = this.#sql
      .exec<{ at: number }>("SELECT removed_at AS at FROM departed WHERE conversation_id = ?", summary.conversationId)
      .toArray()[0];
    if (departed && target.joinedAt <= departed.at) return; // a late update about a membership that has ended
    if (departed) this.#sql.exec("DELETE FROM departed WHERE conversation_id = ?", summary.conversationId);
    const before = this.#row(summary.conversationId);
    const beforeView = before ? this.#live.view(before) : null;
    const peer = summary.directMembers?.find((m) => m.userId !== userId) ?? null;
    const last = summary.lastMessage;
    const updatedAt = Math.max(before?.updatedAt ?? 0, last?.createdAt ?? 0, before ? 0 : target.joinedAt);
    // A summary without a title or a peer (an older builder's, or one built without them) keeps the row's.
    // A newer position brings its preview and count; the same position can only fill in a count not told
    // before. Unread mentions are taken from an update at least as new in both positions (last and read).
    this.#sql.exec(
      `INSERT INTO inbox (conversation_id, type, title, peer_id, peer_username, last_seq, last_count, last_msg_seq, last_sender, last_preview, last_at,
         last_edited_at, delivered_seq, read_seq, read_count, unread_mentions, updated_at, pull)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (conversation_id) DO UPDATE SET
         pull = excluded.pull,
         title = COALESCE(excluded.title, inbox.title),
         peer_id = COALESCE(excluded.peer_id, inbox.peer_id),
         peer_username = CASE WHEN excluded.peer_id IS NULL THEN inbox.peer_username ELSE excluded.peer_username END,
         last_msg_seq = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_msg_seq ELSE inbox.last_msg_seq END,
         last_sender = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_sender ELSE inbox.last_sender END,
         last_preview = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_preview ELSE inbox.last_preview END,
         last_at = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_at ELSE inbox.last_at END,
         last_edited_at = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_edited_at ELSE inbox.last_edited_at END,
         last_count = CASE WHEN excluded.last_seq > inbox.last_seq THEN excluded.last_count
           WHEN excluded.last_seq = inbox.last_seq THEN COALESCE(excluded.last_count, inbox.last_count) ELSE inbox.last_count END,
         read_count = CASE WHEN excluded.read_seq > inbox.read_seq THEN excluded.read_count
           WHEN excluded.read_seq = inbox.read_seq THEN COALESCE(excluded.read_count, inbox.read_count) ELSE inbox.read_count END,
         unread_mentions = CASE WHEN excluded.last_seq >= inbox.last_seq AND excluded.read_seq >= inbox.read_seq
           THEN excluded.unread_mentions ELSE inbox.unread_mentions END,
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
      summary.lastCount ?? null,
      last?.seq ?? null,
      last?.senderId ?? null,
      last?.preview ?? null,
      last?.createdAt ?? null,
      last?.editedAt ?? null,
      target.deliveredSeq,
      target.readSeq,
      // A target without counts comes from code that has none: the row falls back to seqs.
      summary.lastCount === undefined ? null : (target.readCount ?? null),
      target.mentions ?? 0,
      updatedAt,
      summary.pull ? 1 : 0,
    );
    const after = this.#row(summary.conversationId)!;
    const afterView = this.#live.view(after);
    const total = this.totalUnread();
    // Compared as the sockets saw them: a stored update that only catches up with live events says nothing
    // new, nor does one that only moves lastSeq past change entries that change nothing shown (reactions).
    const entry = toEntry(afterView);
    if (!beforeView || shown(toEntry(beforeView)) !== shown(entry)) sockets.broadcast({ type: "inbox_update", entry, totalUnread: total });
    const others = summary.receipts.filter((c) => c.userId !== userId);
    if (others.length > 0) sockets.broadcast({ type: "receipts", conversationId: summary.conversationId, cursors: others });
    // A large conversation new to this inbox while a user socket is open: ask for its live events now.
    if (summary.pull && !before?.pull && sockets.size > 0) this.#pull.listenTo(summary.conversationId, userId);
    if (options.push) await this.#pushIfOffline(userId, summary, before, after, total);
  }

  /**
   * Conversations this inbox knows of after `after` (by id, at most `limit`): current ones (`inbox`) or ones the
   * user left (`departed`). An export or an erasure goes through both (admin-jobs.ts).
   */
  knownConversations(table: "inbox" | "departed", after: string, limit: number): string[] {
    return this.#sql
      .exec<{ id: string }>(`SELECT conversation_id AS id FROM ${table} WHERE conversation_id > ? ORDER BY conversation_id LIMIT ?`, after, limit)
      .toArray()
      .map((r) => r.id);
  }

  /** Removed from (or left) a conversation: it leaves the inbox and the unread total. */
  removed(conversationId: string, removedAt: number): void {
    const existed = this.#row(conversationId) !== null;
    this.#live.delete(conversationId);
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
    return rpcResult(async () => {
      if (!cursor) await this.refreshPulled(false);
      this.#live.settle();
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
        conversations: page.map((r) => toEntry(this.#live.view(r))),
        nextCursor: rows.length > limit && lastRow ? `${lastRow.updatedAt}.${lastRow.conversationId}` : null,
        totalUnread: this.totalUnread(),
      };
    });
  }

  /**
   * A receipt reported on the user socket or over REST: forwarded to the conversation, which is authoritative.
   * The id comes from the client: only a conversation in this inbox, or listed for this user in the D1
   * directory (a new one whose inbox row has not arrived yet), is asked, so made-up ids wake no object.
   */
  async reportReceipt(userId: string, conversationId: string, delivered?: number, read?: number): Promise<RpcResult<null>> {
    if (!this.#row(conversationId) && !(await isListedMember(this.#deps.env.DB, conversationId, userId))) {
      return { ok: false, error: { code: "not_a_member", message: "you are not a member of this conversation" } };
    }
    const result = await conversationStub(this.#deps.env, conversationId).applyReceipt(userId, delivered, read);
    if (!result.ok) return result;
    // Apply locally at once so the unread badge moves without waiting for the fan-out.
    this.#applyCursor(conversationId, result.value.deliveredSeq, result.value.readSeq);
    return { ok: true, value: null };
  }

  totalUnread(): number {
    const stored = this.#sql.exec<{ n: number | null }>(`SELECT sum(${UNREAD_SQL}) AS n FROM inbox`).one().n ?? 0;
    return stored + this.#live.unreadDelta();
  }

  /** The conversation confirmed this user's cursors: keep the inbox in step. */
  #applyCursor(conversationId: string, deliveredSeq: number, readSeq: number): void {
    const before = this.#row(conversationId);
    if (!before) return;
    const beforeEntry = toEntry(this.#live.view(before));
    if (readSeq > before.readSeq) {
      // The count at readSeq is the conversation's to tell (the next fan-out); until then the best estimate.
      const { readCount, mentions } = readAt(this.#live.view(before), readSeq);
      this.#sql.exec(
        "UPDATE inbox SET delivered_seq = max(delivered_seq, ?1), read_seq = ?2, read_count = ?3, unread_mentions = ?4 WHERE conversation_id = ?5",
        deliveredSeq,
        readSeq,
        readCount,
        mentions,
        conversationId,
      );
    } else {
      this.#sql.exec("UPDATE inbox SET delivered_seq = max(delivered_seq, ?) WHERE conversation_id = ?", deliveredSeq, conversationId);
    }
    const entry = toEntry(this.#live.view(this.#row(conversationId)!));
    if (shown(beforeEntry) !== shown(entry)) this.#deps.sockets.broadcast({ type: "inbox_update", entry, totalUnread: this.totalUnread() });
  }

  /**
   * Push only for a new message from someone else that is unread, and only when no device is connected. New
   * means the preview moved to a newer message: an edit, a delete or a reaction (change entries) never pushes.
   */
  async #pushIfOffline(userId: string, summary: ConversationSummary, before: InboxRow | null, after: InboxRow, total: number): Promise<void> {
    const { env, isOnline } = this.#deps;
    const last = summary.lastMessage;
    const fresh =
      last !== null &&
      summary.lastSeq > (before?.lastSeq ?? 0) &&
      last.seq > (before?.lastMsgSeq ?? 0) &&
      last.senderId !== userId &&
      last.seq > after.readSeq &&
      unreadOf(after) > 0;
    if (!fresh || !env.PUSH_WEBHOOK_URL || isOnline()) return;
    const job: PushJob = {
      userId,
      conversationId: summary.conversationId,
      seq: last.seq,
      senderId: last.senderId,
      preview: last.preview,
      unread: unreadOf(after),
      totalUnread: total,
      createdAt: last.createdAt,
      ...(mentionsUser(last, userId) ? { mentioned: true } : {}),
    };
    await env.PUSH_QUEUE.send(job);
  }

  #row(conversationId: string): InboxRow | null {
    return readRow(this.#sql, conversationId);
  }
}
