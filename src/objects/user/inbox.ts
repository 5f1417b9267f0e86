// The user's inbox: one row per conversation with its last message and this user's delivered/read cursors,
// the unread total, the conversations the user has left, and when a new message becomes a push notification.
// Owns the `inbox` and `departed` tables.
//
// Conversation objects are authoritative: updates arrive from their fan-out (by RPC, or through
// FANOUT_QUEUE) in any order and possibly twice, so every field only moves forward. Large conversations
// are fanned out on read: their rows (`pull = 1`) are refreshed from the conversation when the inbox is
// read and while a user socket is open (the "inbox_listen" job registers for their live events).
//
// Live events (`live`) arrive the moment a message is committed and go straight to the user sockets; they
// are kept in memory only (`#live`), as an overlay on the stored rows until the stored fan-out catches up,
// so a burst of messages costs no storage write here.
import type { InboxEntry, InboxPage } from "../../protocol/user";
import { AppError, rpcResult, type RpcResult } from "../../lib/errors";
import { isListedMember } from "../../db/memberships";
import { conversationStub } from "../shared/stubs";
import type { ConversationSummary, FanoutTarget, PushJob } from "../shared/updates";
import type { UserSockets } from "./connection";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import type { UserJob } from "./index";
import type { Meta } from "./meta";

/** Large conversations refreshed per inbox read, newest activity first. */
const PULL_LIMIT = 200;
/** An inbox read within this long of the last refresh uses the rows as they are (bounds the requests a user can cause). */
const PULL_FRESH_MS = 1_000;
/** While a user socket is open, live events of large conversations are asked for again this often. */
const LISTEN_RENEW_MS = 10 * 60_000;

/** What a live event changed, not yet in the stored row. */
interface LiveOverlay {
  lastSeq: number;
  lastSender: string;
  lastPreview: string;
  lastAt: number;
  /** This user's own newest message in the overlay: sending marks read. */
  ownSeq: number;
}

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
  pull: number;
}

const INBOX_COLUMNS = `conversation_id AS conversationId, type, title, peer_id AS peerId, peer_username AS peerUsername,
  last_seq AS lastSeq, last_sender AS lastSender, last_preview AS lastPreview, last_at AS lastAt,
  delivered_seq AS deliveredSeq, read_seq AS readSeq, updated_at AS updatedAt, pull`;

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

  /** conversationId → live events not yet in the stored row (memory only; lost on eviction, which is harmless). */
  readonly #live = new Map<string, LiveOverlay>();
  #pulledAt = 0;
  #listenedAt = 0;

  constructor(deps: InboxDeps) {
    this.#deps = deps;
    this.#sql = deps.sql;
    deps.jobs.define("inbox_listen", () => this.#listen());
  }

  /** A user socket opened: register for live events of large conversations (and refresh their rows). */
  socketOpened(): void {
    this.#deps.jobs.ensure("inbox_listen", Date.now());
  }

  /** New messages from a conversation, just committed: tell the user sockets. False when there are none. */
  live(events: ConversationSummary[]): boolean {
    const { meta, sockets } = this.#deps;
    if (sockets.size === 0) return false;
    const me = meta.get("user_id");
    for (const e of events) {
      const row = this.#row(e.conversationId);
      const last = e.lastMessage;
      // A conversation the stored fan-out has not brought yet: its first update follows within milliseconds.
      if (!row || !last) continue;
      const overlay = this.#live.get(e.conversationId);
      if (e.lastSeq <= Math.max(row.lastSeq, overlay?.lastSeq ?? 0)) continue;
      const own = last.senderId === me ? e.lastSeq : 0;
      this.#live.set(e.conversationId, {
        lastSeq: e.lastSeq,
        lastSender: last.senderId,
        lastPreview: last.preview,
        lastAt: last.createdAt,
        ownSeq: Math.max(own, overlay?.ownSeq ?? 0),
      });
      sockets.broadcast({ type: "inbox_update", entry: toEntry(this.#view(row)), totalUnread: this.totalUnread() });
    }
    return true;
  }

  /** Ask large conversations where they are (fan-out on read); with `listen`, also for their live events. */
  async refreshPulled(listen: boolean): Promise<void> {
    const { env, meta } = this.#deps;
    const now = Date.now();
    if (!listen && now - this.#pulledAt < PULL_FRESH_MS) return;
    this.#pulledAt = now;
    const me = meta.get("user_id");
    if (!me) return;
    const ids = this.#sql
      .exec<{ id: string }>("SELECT conversation_id AS id FROM inbox WHERE pull = 1 ORDER BY updated_at DESC LIMIT ?", PULL_LIMIT)
      .toArray()
      .map((r) => r.id);
    await Promise.all(
      ids.map(async (id) => {
        try {
          const result = await conversationStub(env, id).inboxPosition(me, listen);
          // not_a_member: the removal reaches this inbox by conversationRemoved.
          if (result.ok) await this.update(result.value.summary, result.value.target, { push: false });
        } catch (err) {
          console.warn(JSON.stringify({ at: "inbox_pull", conversation: id, error: String(err) }));
        }
      }),
    );
  }

  #listenTo(conversationId: string, userId: string): void {
    this.#deps.ctx.waitUntil(
      conversationStub(this.#deps.env, conversationId)
        .inboxPosition(userId, true)
        .then(
          () => undefined,
          (err) => console.warn(JSON.stringify({ at: "inbox_listen", conversation: conversationId, error: String(err) })),
        ),
    );
  }

  /** While a user socket is open: keep the live-event registrations of large conversations fresh. */
  async #listen(): Promise<JobOutcome> {
    if (this.#deps.sockets.size === 0) return "done";
    const now = Date.now();
    if (now - this.#listenedAt >= LISTEN_RENEW_MS) {
      await this.refreshPulled(true);
      this.#listenedAt = now;
    }
    return { at: this.#listenedAt + LISTEN_RENEW_MS };
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
    const beforeView = before ? this.#view(before) : null;
    const peer = summary.directMembers?.find((m) => m.userId !== userId) ?? null;
    const last = summary.lastMessage;
    const updatedAt = Math.max(before?.updatedAt ?? 0, last?.createdAt ?? 0, before ? 0 : target.joinedAt);
    // A summary without a title or a peer (an older builder's, or one built without them) keeps the row's.
    this.#sql.exec(
      `INSERT INTO inbox (conversation_id, type, title, peer_id, peer_username, last_seq, last_sender, last_preview, last_at, delivered_seq, read_seq, updated_at, pull)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (conversation_id) DO UPDATE SET
         pull = excluded.pull,
         title = COALESCE(excluded.title, inbox.title),
         peer_id = COALESCE(excluded.peer_id, inbox.peer_id),
         peer_username = CASE WHEN excluded.peer_id IS NULL THEN inbox.peer_username ELSE excluded.peer_username END,
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
      summary.pull ? 1 : 0,
    );
    const after = this.#row(summary.conversationId)!;
    const afterView = this.#view(after);
    const total = this.totalUnread();
    // Compared as the sockets saw them: a stored update that only catches up with live events says nothing new.
    const changed =
      !beforeView ||
      beforeView.lastSeq !== afterView.lastSeq ||
      beforeView.readSeq !== afterView.readSeq ||
      beforeView.deliveredSeq !== afterView.deliveredSeq ||
      beforeView.title !== afterView.title;
    if (changed) sockets.broadcast({ type: "inbox_update", entry: toEntry(afterView), totalUnread: total });
    const others = summary.receipts.filter((c) => c.userId !== userId);
    if (others.length > 0) sockets.broadcast({ type: "receipts", conversationId: summary.conversationId, cursors: others });
    // A large conversation new to this inbox while a user socket is open: ask for its live events now.
    if (summary.pull && !before?.pull && sockets.size > 0) this.#listenTo(summary.conversationId, userId);
    if (options.push) await this.#pushIfOffline(userId, summary, before, after, total);
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
      this.#settleLive();
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
        conversations: page.map((r) => toEntry(this.#view(r))),
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
    let total = this.#sql.exec<{ n: number | null }>("SELECT sum(max(last_seq - read_seq, 0)) AS n FROM inbox").one().n ?? 0;
    for (const id of [...this.#live.keys()]) {
      const row = this.#row(id);
      if (!row) {
        this.#live.delete(id);
        continue;
      }
      total += unreadOf(this.#view(row)) - unreadOf(row);
    }
    return total;
  }

  /**
   * Store what live events showed (an inbox read orders and pages by the stored rows): one write per
   * conversation with live events, per read, instead of one per message. Fields only move forward, so the
   * fan-out's update that follows changes nothing.
   */
  #settleLive(): void {
    for (const [id, o] of this.#live) {
      this.#sql.exec(
        `UPDATE inbox SET
           last_sender = CASE WHEN ?1 > last_seq THEN ?2 ELSE last_sender END,
           last_preview = CASE WHEN ?1 > last_seq THEN ?3 ELSE last_preview END,
           last_at = CASE WHEN ?1 > last_seq THEN ?4 ELSE last_at END,
           last_seq = max(last_seq, ?1),
           read_seq = max(read_seq, ?5),
           delivered_seq = max(delivered_seq, ?5),
           updated_at = max(updated_at, ?4)
         WHERE conversation_id = ?6`,
        o.lastSeq,
        o.lastSender,
        o.lastPreview,
        o.lastAt,
        o.ownSeq,
        id,
      );
    }
    this.#live.clear();
  }

  /** A stored row as the sockets see it: with the live events it has not caught up with. */
  #view(row: InboxRow): InboxRow {
    const overlay = this.#live.get(row.conversationId);
    if (!overlay) return row;
    if (overlay.lastSeq <= row.lastSeq) {
      this.#live.delete(row.conversationId);
      return row;
    }
    const readSeq = Math.max(row.readSeq, overlay.ownSeq);
    return {
      ...row,
      lastSeq: overlay.lastSeq,
      lastSender: overlay.lastSender,
      lastPreview: overlay.lastPreview,
      lastAt: overlay.lastAt,
      readSeq,
      deliveredSeq: Math.max(row.deliveredSeq, readSeq),
      updatedAt: Math.max(row.updatedAt, overlay.lastAt),
    };
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
      this.#deps.sockets.broadcast({ type: "inbox_update", entry: toEntry(this.#view(after)), totalUnread: this.totalUnread() });
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

function unreadOf(r: InboxRow): number {
  return Math.max(0, r.lastSeq - r.readSeq);
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
