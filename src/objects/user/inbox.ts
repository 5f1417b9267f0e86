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
//
// Unread is counted in messages, not seqs (docs/protocol.md 15.6): change entries (edits, deletes, reactions)
// take seqs too. Summaries carry `lastCount` and targets `readCount` (messages up to lastSeq and readSeq);
// unread = lastCount - readCount. A row not told counts (conversation code from before them) falls back to
// lastSeq - readSeq. The preview is the newest message that is not deleted, in its current state.
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

/** What live events changed, not yet in the stored row. */
interface LiveOverlay {
  lastSeq: number;
  /** Messages up to lastSeq; null when the event carried no count (older conversation code). */
  lastCount: number | null;
  /** The preview as of lastSeq (null: no message left that is not deleted). */
  last: { seq: number; senderId: string; preview: string; createdAt: number; editedAt: number | null } | null;
  /** This user's own newest message in the overlay, and the count there: sending marks read. */
  ownSeq: number;
  ownCount: number | null;
  /** New messages from others in the overlay that mention this user (or everyone). */
  mentionSeqs: number[];
}

interface InboxRow extends Record<string, SqlStorageValue> {
  conversationId: string;
  type: string;
  title: string | null;
  peerId: string | null;
  peerUsername: string | null;
  lastSeq: number;
  /** Messages up to lastSeq; null when not told (then unread counts seqs). */
  lastCount: number | null;
  /** The preview: the newest message that is not deleted (its seq may be below lastSeq). */
  lastMsgSeq: number | null;
  lastSender: string | null;
  lastPreview: string | null;
  lastAt: number | null;
  lastEditedAt: number | null;
  deliveredSeq: number;
  readSeq: number;
  /** Messages up to readSeq; null when not told. */
  readCount: number | null;
  /** Unread messages from others mentioning this user (read through mentionsOf: never above unread). */
  mentions: number;
  updatedAt: number;
  pull: number;
}

const INBOX_COLUMNS = `conversation_id AS conversationId, type, title, peer_id AS peerId, peer_username AS peerUsername,
  last_seq AS lastSeq, last_count AS lastCount, last_msg_seq AS lastMsgSeq, last_sender AS lastSender,
  last_preview AS lastPreview, last_at AS lastAt, last_edited_at AS lastEditedAt,
  delivered_seq AS deliveredSeq, read_seq AS readSeq, read_count AS readCount, unread_mentions AS mentions, updated_at AS updatedAt, pull`;

/** unreadOf() in SQL, for the inbox total. */
const UNREAD_SQL = `CASE WHEN read_seq >= last_seq THEN 0
  WHEN last_count IS NOT NULL AND read_count IS NOT NULL THEN max(last_count - read_count, 0)
  ELSE last_seq - read_seq END`;

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

  /**
   * Entries of a conversation, just committed: new messages, and edits or deletes that change the preview.
   * Tell the user sockets what changed. False when no user socket is open.
   */
  live(events: ConversationSummary[]): boolean {
    const { meta, sockets } = this.#deps;
    if (sockets.size === 0) return false;
    const me = meta.get("user_id");
    for (const e of events) {
      const row = this.#row(e.conversationId);
      // A conversation the stored fan-out has not brought yet: its first update follows within milliseconds.
      if (!row) continue;
      const overlay = this.#live.get(e.conversationId);
      if (e.lastSeq <= Math.max(row.lastSeq, overlay?.lastSeq ?? 0)) continue;
      const before = toEntry(this.#view(row));
      const last = e.lastMessage;
      // The event is a new message when its preview is the entry itself; else a change entry (an edit, a delete).
      const message = last !== null && last.seq === e.lastSeq ? last : null;
      const own = message !== null && message.senderId === me;
      const mentionsMe = message !== null && !own && me !== null && mentionsUser(message, me);
      this.#live.set(e.conversationId, {
        lastSeq: e.lastSeq,
        lastCount: e.lastCount ?? null,
        last: last ? { seq: last.seq, senderId: last.senderId, preview: last.preview, createdAt: last.createdAt, editedAt: last.editedAt ?? null } : null,
        ownSeq: own ? e.lastSeq : (overlay?.ownSeq ?? 0),
        ownCount: own ? (e.lastCount ?? null) : (overlay?.ownCount ?? null),
        mentionSeqs: mentionsMe ? [...(overlay?.mentionSeqs ?? []), e.lastSeq] : (overlay?.mentionSeqs ?? []),
      });
      const after = toEntry(this.#view(row));
      if (shown(before) !== shown(after)) sockets.broadcast({ type: "inbox_update", entry: after, totalUnread: this.totalUnread() });
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
    const afterView = this.#view(after);
    const total = this.totalUnread();
    // Compared as the sockets saw them: a stored update that only catches up with live events says nothing
    // new, nor does one that only moves lastSeq past change entries that change nothing shown (reactions).
    const entry = toEntry(afterView);
    if (!beforeView || shown(toEntry(beforeView)) !== shown(entry)) sockets.broadcast({ type: "inbox_update", entry, totalUnread: total });
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
    let total = this.#sql.exec<{ n: number | null }>(`SELECT sum(${UNREAD_SQL}) AS n FROM inbox`).one().n ?? 0;
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
    for (const id of [...this.#live.keys()]) {
      const row = this.#row(id);
      if (!row) continue;
      // The row as the sockets saw it; read and written in one synchronous step, so nothing interleaves.
      const v = this.#view(row);
      if (v === row) continue;
      this.#sql.exec(
        `UPDATE inbox SET last_seq = ?, last_count = ?, last_msg_seq = ?, last_sender = ?, last_preview = ?, last_at = ?, last_edited_at = ?,
           read_seq = ?, read_count = ?, delivered_seq = ?, unread_mentions = ?, updated_at = ?
         WHERE conversation_id = ?`,
        v.lastSeq,
        v.lastCount,
        v.lastMsgSeq,
        v.lastSender,
        v.lastPreview,
        v.lastAt,
        v.lastEditedAt,
        v.readSeq,
        v.readCount,
        v.deliveredSeq,
        v.mentions,
        v.updatedAt,
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
    // Sending marks read: the user's own message in the overlay is past everything the row knows of.
    const own = overlay.ownSeq > row.readSeq;
    const readSeq = own ? overlay.ownSeq : row.readSeq;
    const last = overlay.last;
    return {
      ...row,
      lastSeq: overlay.lastSeq,
      lastCount: overlay.lastCount,
      lastMsgSeq: last?.seq ?? null,
      lastSender: last?.senderId ?? null,
      lastPreview: last?.preview ?? null,
      lastAt: last?.createdAt ?? null,
      lastEditedAt: last?.editedAt ?? null,
      readSeq,
      readCount: own ? overlay.ownCount : row.readCount,
      deliveredSeq: Math.max(row.deliveredSeq, readSeq),
      mentions: (own ? 0 : row.mentions) + overlay.mentionSeqs.filter((seq) => seq > readSeq).length,
      updatedAt: Math.max(row.updatedAt, last?.createdAt ?? 0),
    };
  }

  /** The conversation confirmed this user's cursors: keep the inbox in step. */
  #applyCursor(conversationId: string, deliveredSeq: number, readSeq: number): void {
    const before = this.#row(conversationId);
    if (!before) return;
    const beforeEntry = toEntry(this.#view(before));
    if (readSeq > before.readSeq) {
      // The count at readSeq is the conversation's to tell (the next fan-out); until then the best estimate.
      const { readCount, mentions } = readAt(this.#view(before), readSeq);
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
    const entry = toEntry(this.#view(this.#row(conversationId)!));
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
    return this.#sql.exec<InboxRow>(`SELECT ${INBOX_COLUMNS} FROM inbox WHERE conversation_id = ?`, conversationId).toArray()[0] ?? null;
  }
}

/** Unread messages: counted in messages when the conversation told the counts, else in seqs (older code). */
function unreadOf(r: InboxRow): number {
  if (r.readSeq >= r.lastSeq) return 0;
  if (r.lastCount !== null && r.readCount !== null) return Math.max(0, r.lastCount - r.readCount);
  return r.lastSeq - r.readSeq;
}

/**
 * The user read up to `readSeq` (a receipt confirmed by the conversation): the count there, and the unread
 * mentions, as far as this inbox can tell. Read to the end: exact (nothing unread). Short of it: the entries
 * after readSeq are at most that many messages, so unread is at most that; the fan-out brings the exact count.
 */
function readAt(view: InboxRow, readSeq: number): { readCount: number | null; mentions: number } {
  if (readSeq >= view.lastSeq) return { readCount: view.lastCount, mentions: 0 };
  if (view.lastCount === null || view.readCount === null) return { readCount: null, mentions: Math.min(view.mentions, view.lastSeq - readSeq) };
  const readCount = Math.min(view.lastCount, Math.max(view.readCount, view.lastCount - (view.lastSeq - readSeq)));
  return { readCount, mentions: Math.min(view.mentions, view.lastCount - readCount) };
}

function mentionsUser(m: { mentions?: string[]; mentionsAll?: true }, userId: string): boolean {
  return m.mentionsAll === true || (m.mentions?.includes(userId) ?? false);
}

/** What a client shows of an entry: lastSeq alone moving (past a reaction) is not worth a frame. */
function shown(e: InboxEntry): string {
  return JSON.stringify({ ...e, lastSeq: 0 });
}

function toEntry(r: InboxRow): InboxEntry {
  const unread = unreadOf(r);
  return {
    conversationId: r.conversationId,
    type: r.type === "direct" ? "direct" : "group",
    title: r.title,
    peer: r.peerId ? { userId: r.peerId, username: r.peerUsername ?? "" } : null,
    lastSeq: r.lastSeq,
    lastMessage:
      r.lastSender !== null && r.lastAt !== null
        ? {
            seq: r.lastMsgSeq ?? r.lastSeq,
            senderId: r.lastSender,
            preview: r.lastPreview ?? "",
            createdAt: r.lastAt,
            ...(r.lastEditedAt !== null ? { editedAt: r.lastEditedAt } : {}),
          }
        : null,
    unread,
    unreadMentions: Math.min(r.mentions, unread),
    deliveredSeq: r.deliveredSeq,
    readSeq: r.readSeq,
    updatedAt: r.updatedAt,
  };
}
