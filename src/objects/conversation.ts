// One Durable Object per conversation. It is the single writer of the conversation's stream:
// it assigns seq, persists every message in its own SQLite before acknowledging it, fans out to the
// members' sockets (Hibernation API), and archives to D1 from the alarm, off the hot path.
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../protocol/errors";
import {
  BACKLOG_PAGE_SIZE,
  PING_FRAME,
  PONG_FRAME,
  PROTOCOL_VERSION,
  parseClientFrame,
  utf8Length,
  type ChatMessage,
  type OutgoingMessage,
  type ServerFrame,
} from "../protocol/frames";
import type { Conversation, ConversationType, HistoryPage, HistoryQuery, Member, Role, SendResult } from "../protocol/api";
import { AppError, rpcResult, type RpcResult } from "../lib/errors";
import { newId, randomToken } from "../lib/ids";
import { migrate, Scheduler } from "../lib/sqlite";
import type { Identity } from "../lib/tokens";
import { readConfig } from "../lib/config";
import { TokenBuckets } from "../lib/rate-limit";
import { reciprocateClose, refusedUpgrade, tryClose, trySend } from "../lib/sockets";
import { openSocketStates } from "./shared/legacy";
import { HistoryArchive, type D1Statement } from "./archive";
import { type ConversationSummary, type FanoutJob, type FanoutTarget } from "./shared/updates";
const FANOUT_TARGETS_PER_MESSAGE = 100;
const DIRECT_FANOUT_LIMIT = 50;
const RECEIPT_PUSH_LIMIT = 100;
function previewOf(body: string): string {
  const chars = Array.from(body.replace(/\s+/g, " ").trim());
  return chars.length > 140 ? `${chars.slice(0, 139).join("")}…` : chars.join("");
}
import { TYPING_THROTTLE_MS, TYPING_TTL_MS, type ReceiptCursor, type ReceiptState } from "../protocol/user";
import { CONVERSATION_MIGRATIONS } from "./conversation.schema";

/** What the Worker tells the object about a socket's user. Set by the Worker only, after verifying the token. */
export const IDENTITY_HEADER = "X-Edgechat-Identity";

/** Identity and stream state of a socket. Stored in the socket attachment so it survives hibernation. */
interface SocketState {
  userId: string;
  username: string;
  /** Access token expiry (s). Frames after it close the socket with TokenExpired. */
  exp: number;
  /** False while the backlog is being sent; live messages are only pushed to live sockets. */
  live: boolean;
  /** This socket's device lease in the user's object (presence). */
  lease: string;
  connectedAt: number;
}

type Job = "archive" | "d1_outbox" | "notify" | "presence";

/** A row of `messages`, selected with MESSAGE_COLUMNS: exactly the wire shape. */
type MessageRow = ChatMessage & Record<string, SqlStorageValue>;

interface MemberRow extends Record<string, SqlStorageValue> {
  userId: string;
  username: string;
  role: Role;
  joinedAt: number;
  deliveredSeq: number;
  readSeq: number;
}

export interface InitializeInput {
  id: string;
  type: ConversationType;
  title: string | null;
  createdBy: string;
  members: { userId: string; username: string; role: Role }[];
}

const MESSAGE_COLUMNS = "seq, id, sender_id AS senderId, client_msg_id AS clientMsgId, body, created_at AS createdAt";
const ARCHIVE_DELAY_MS = 250;
const ARCHIVE_BATCH = 500;
const PRUNE_BATCH = 2_000;
const MAX_BACKOFF_MS = 60_000;
/** Members hear "conversation advanced" at most once per this interval (coalesced fan-out). */
const NOTIFY_INTERVAL_MS = 1_000;
const MEMBER_COLUMNS = "user_id AS userId, username, role, joined_at AS joinedAt, delivered_seq AS deliveredSeq, read_seq AS readSeq";
/** Retry delay after the n-th consecutive D1 failure: 250 ms, 500 ms, 1 s ... capped at a minute, with jitter. */
function backoff(failures: number): number {
  const base = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures - 1, 16));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
/** D1 allows 100 bound parameters; membership rows have 4. */
const MEMBER_ROWS_PER_STATEMENT = 20;

export class ConversationObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private scheduler!: Scheduler<Job>;
  /**
   * True until the conversation is created. Any signed-in user can address any object id, so a blank
   * object writes nothing (not even its schema): probing ids costs no storage.
   */
  private blank: boolean;
  private readonly config: ReturnType<typeof readConfig>;
  /** Replaceable for fault-injection tests: all D1 traffic goes through it. */
  archive: HistoryArchive;
  /** Highest seq assigned. Rebuilt from storage on every wake, so never stale. */
  private lastSeq: number;
  /** Socket -> state, a cache of the attachments; rebuilt lazily after hibernation. */
  private sockets: Map<WebSocket, SocketState> | null = null;
  private archiveFailures = 0;
  private outboxFailures = 0;
  private flushing: Promise<void> | null = null;
  private notifyFailures = 0;
  private lastNotifyAt = 0;
  /** Last typing broadcast per user, for the throttle. Losing it on hibernation only allows one extra frame. */
  private readonly typingAt = new Map<string, number>();
  /** Socket sends waiting for the next group commit (flushSends). Lost on a crash: unacked, so clients resend. */
  private pendingSends: { ws: WebSocket; userId: string; items: OutgoingMessage[] }[] = [];
  private flushScheduled = false;
  /** Per-user send rate limit (in memory; see lib/rate-limit.ts). Replaceable, like `archive`, for tests. */
  sendLimiter: TokenBuckets;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.config = readConfig(env);
    this.archive = new HistoryArchive(env.DB);
    this.sendLimiter = new TokenBuckets(this.config.sendRatePerSecond, this.config.sendBurst);
    // The constructor re-runs after every hibernation wake: everything below is rebuilt from storage.
    this.blank =
      this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").one().n === 0;
    this.lastSeq = 0;
    if (!this.blank) this.openStorage();
    // Pings are answered by the runtime without waking the object (and without billing duration).
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  /** Bring the schema up to date and load the stream position. */
  private openStorage(): void {
    migrate(this.ctx.storage, CONVERSATION_MIGRATIONS);
    this.scheduler = new Scheduler<Job>(this.ctx.storage);
    this.lastSeq = this.readLastSeq();
    this.blank = false;
  }

  // ------------------------------------------------------------------ metadata & membership (RPC)

  /** Create the conversation if it does not exist yet. Idempotent: returns `created: false` after the first call. */
  initialize(input: InitializeInput): Promise<RpcResult<{ created: boolean; conversation: Conversation }>> {
    return rpcResult(async () => {
      if (this.blank) this.openStorage();
      const existing = this.getMeta("id");
      if (existing !== null) {
        if (existing !== input.id) throw new AppError("conflict", "object already holds another conversation");
        return { created: false, conversation: this.describeUnchecked() };
      }
      const now = Date.now();
      this.ctx.storage.transactionSync(() => {
        this.setMeta("id", input.id);
        this.setMeta("type", input.type);
        this.setMeta("title", input.title ?? "");
        this.setMeta("created_by", input.createdBy);
        this.setMeta("created_at", String(now));
        // The epoch names this stream. It changes only if the stream is ever rebuilt, which tells
        // clients that their cached seqs no longer mean what they did.
        this.setMeta("epoch", randomToken(9));
        this.setMeta("archived_seq", "0");
        for (const m of input.members) {
          this.sql.exec(
            "INSERT OR IGNORE INTO members (user_id, username, role, joined_at) VALUES (?, ?, ?, ?)",
            m.userId,
            m.username,
            m.role,
            now,
          );
          this.markDirty(m.userId);
        }
        this.enqueueD1([
          {
            sql: "INSERT OR IGNORE INTO conversations (id, type, title, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
            params: [input.id, input.type, input.title, input.createdBy, now],
          },
          ...this.memberUpserts(input.id, this.listMembers()),
        ]);
      });
      this.scheduleNotify();
      await this.flushD1Outbox();
      return { created: true, conversation: this.describeUnchecked() };
    });
  }

  describe(actor: Identity): Promise<RpcResult<Conversation>> {
    return rpcResult(() => {
      this.requireMember(actor.userId);
      return this.describeUnchecked();
    });
  }

  addMembers(actor: Identity, users: { userId: string; username: string }[]): Promise<RpcResult<Conversation>> {
    return rpcResult(async () => {
      const me = this.requireMember(actor.userId);
      if (this.getMeta("type") !== "group") throw new AppError("forbidden", "direct conversations have fixed membership");
      if (me.role === "member") throw new AppError("forbidden", "only the owner or an admin can add members");
      const count = this.memberCount();
      const fresh = users.filter((u) => this.memberRow(u.userId) === null);
      const unique = [...new Map(fresh.map((u) => [u.userId, u])).values()];
      if (count + unique.length > this.config.maxGroupMembers) {
        throw new AppError("group_too_large", `a group holds at most ${this.config.maxGroupMembers} members`);
      }
      if (unique.length === 0) return this.describeUnchecked();
      const now = Date.now();
      // A new member starts with everything before it joined counted as read.
      const added: MemberRow[] = unique.map((u) => ({
        userId: u.userId,
        username: u.username,
        role: "member",
        joinedAt: now,
        deliveredSeq: this.lastSeq,
        readSeq: this.lastSeq,
      }));
      this.ctx.storage.transactionSync(() => {
        for (const m of added) {
          this.sql.exec(
            "INSERT INTO members (user_id, username, role, joined_at, delivered_seq, read_seq) VALUES (?, ?, ?, ?, ?, ?)",
            m.userId,
            m.username,
            m.role,
            now,
            m.deliveredSeq,
            m.readSeq,
          );
          this.markDirty(m.userId);
        }
        this.enqueueD1(this.memberUpserts(this.conversationId(), added));
      });
      this.broadcast({ type: "members_changed", added: added.map(({ userId, username, role }) => ({ userId, username, role })), removed: [] });
      this.scheduleNotify();
      await this.flushD1Outbox();
      return this.describeUnchecked();
    });
  }

  /** Owner/admin removes a member, or a member removes itself (leave). Their open sockets are closed at once. */
  removeMember(actor: Identity, userId: string): Promise<RpcResult<null>> {
    return rpcResult(async () => {
      const me = this.requireMember(actor.userId);
      if (this.getMeta("type") !== "group") throw new AppError("forbidden", "direct conversations have fixed membership");
      const target = this.memberRow(userId);
      if (!target) throw new AppError("not_found", "that user is not a member");
      if (actor.userId !== userId) {
        if (me.role === "member") throw new AppError("forbidden", "only the owner or an admin can remove others");
        if (target.role === "owner" || (target.role === "admin" && me.role !== "owner")) {
          throw new AppError("forbidden", "admins can only remove members; the owner can remove admins");
        }
      }
      const id = this.conversationId();
      let heirId: string | null = null;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("DELETE FROM members WHERE user_id = ?", userId);
        const statements: D1Statement[] = [
          { sql: "DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?", params: [id, userId] },
        ];
        // An owner who leaves hands the group to the longest-standing admin, else member.
        if (target.role === "owner") {
          const heir = this.sql
            .exec<{ userId: string }>(
              "SELECT user_id AS userId FROM members ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1",
            )
            .toArray()[0];
          if (heir) {
            heirId = heir.userId;
            this.sql.exec("UPDATE members SET role = 'owner' WHERE user_id = ?", heir.userId);
            statements.push({
              sql: "UPDATE conversation_members SET role = 'owner' WHERE conversation_id = ? AND user_id = ?",
              params: [id, heir.userId],
            });
          }
        }
        this.enqueueD1(statements);
      });
      for (const ws of this.ctx.getWebSockets(userId)) {
        this.closeSocket(ws, CloseCode.NotAMember, "removed from the conversation");
      }
      const heir = heirId === null ? null : this.memberRow(heirId);
      this.broadcast({
        type: "members_changed",
        added: [],
        removed: [userId],
        ...(heir ? { updated: [{ userId: heir.userId, username: heir.username, role: heir.role }] } : {}),
      });
      await this.flushD1Outbox();
      try {
        await this.userStub(userId).conversationRemoved(id, Date.now());
      } catch (err) {
        console.warn(JSON.stringify({ at: "conversation_removed", error: String(err) }));
      }
      return null;
    });
  }

  /** The owner promotes a member to admin or demotes an admin. */
  setRole(actor: Identity, userId: string, role: "admin" | "member"): Promise<RpcResult<Conversation>> {
    return rpcResult(async () => {
      const me = this.requireMember(actor.userId);
      if (me.role !== "owner") throw new AppError("forbidden", "only the owner can change roles");
      const target = this.memberRow(userId);
      if (!target) throw new AppError("not_found", "that user is not a member");
      if (target.role === "owner") throw new AppError("forbidden", "the owner's role cannot be changed");
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE members SET role = ? WHERE user_id = ?", role, userId);
        this.enqueueD1([
          {
            sql: "UPDATE conversation_members SET role = ? WHERE conversation_id = ? AND user_id = ?",
            params: [role, this.conversationId(), userId],
          },
        ]);
      });
      this.broadcast({ type: "members_changed", added: [], removed: [], updated: [{ userId, username: target.username, role }] });
      await this.flushD1Outbox();
      return this.describeUnchecked();
    });
  }

  // ------------------------------------------------------------------ messages (RPC)

  /** Send one message as `actor` (REST path for servers and bots). Same rules and idempotency as the socket. */
  send(actor: Identity, message: OutgoingMessage): Promise<RpcResult<SendResult>> {
    return rpcResult(() => {
      this.requireMember(actor.userId);
      const result = this.persist(actor.userId, [message])[0]!;
      if ("error" in result) throw new AppError(result.error.code, result.error.message, { retryAfterMs: result.error.retryAfterMs });
      this.fanOut(result.fresh);
      return result.ack;
    });
  }

  /** A page of history, ascending by seq; reads the hot tail and D1 transparently. */
  history(actor: Identity, query: HistoryQuery): Promise<RpcResult<HistoryPage>> {
    return rpcResult(async () => {
      this.requireMember(actor.userId);
      const last = this.lastSeq;
      const limit = query.limit;
      let lo: number;
      let hi: number;
      if (query.after !== undefined) {
        lo = query.after + 1;
        hi = Math.min(last, query.after + limit);
      } else {
        hi = Math.min(last, (query.before ?? last + 1) - 1);
        lo = Math.max(1, hi - limit + 1);
      }
      const messages = hi >= lo ? await this.readRange(lo, hi) : [];
      return {
        messages,
        nextBefore: hi >= lo && lo > 1 ? lo : null,
        nextAfter: hi < last ? Math.max(hi, lo - 1) : null,
        lastSeq: last,
        epoch: this.getMeta("epoch") ?? "",
      };
    });
  }

  /** Archive everything not yet in D1 and prune to the hot tail now, instead of waiting for the alarm (ops, tests, verify). */
  async flushArchive(): Promise<{ archivedSeq: number; lastSeq: number }> {
    if (this.blank) return { archivedSeq: 0, lastSeq: 0 };
    for (let i = 0; i < 10_000; i++) {
      const before = Number(this.getMeta("archived_seq") ?? "0");
      const oldest = this.oldestHotSeq();
      await this.archiveBatch();
      const after = Number(this.getMeta("archived_seq") ?? "0");
      if (after === before && this.oldestHotSeq() === oldest) break;
    }
    return { archivedSeq: Number(this.getMeta("archived_seq") ?? "0"), lastSeq: this.lastSeq };
  }

  /** A member reports what it received/read (REST, or its user socket). Cursors only move forward. */
  applyReceipt(userId: string, delivered?: number, read?: number): Promise<RpcResult<{ deliveredSeq: number; readSeq: number }>> {
    return rpcResult(() => {
      this.requireMember(userId);
      const row = this.advanceCursor(userId, delivered ?? 0, read ?? 0);
      return { deliveredSeq: row.deliveredSeq, readSeq: row.readSeq };
    });
  }

  /** Who has received and read message `seq` (members other than its sender). */
  receipts(actor: Identity, seq: number): Promise<RpcResult<ReceiptState>> {
    return rpcResult(async () => {
      this.requireMember(actor.userId);
      if (seq < 1 || seq > this.lastSeq) throw new AppError("not_found", "no message with that seq");
      const message = (await this.readRange(seq, seq))[0];
      if (!message) throw new AppError("not_found", "no message with that seq");
      const others = this.sql
        .exec<{ n: number; d: number; r: number }>(
          // Members who joined after the message are not counted: their cursors start at the join point.
          "SELECT count(*) AS n, sum(delivered_seq >= ?1) AS d, sum(read_seq >= ?1) AS r FROM members WHERE user_id != ?2 AND joined_at <= ?3",
          seq,
          message.senderId,
          message.createdAt,
        )
        .one();
      const state: ReceiptState = { seq, of: others.n, delivered: others.d ?? 0, read: others.r ?? 0 };
      if (others.n <= RECEIPT_PUSH_LIMIT) {
        const rows = this.sql
          .exec<{ userId: string; d: number; r: number }>(
            "SELECT user_id AS userId, delivered_seq >= ?1 AS d, read_seq >= ?1 AS r FROM members WHERE user_id != ?2 AND joined_at <= ?3 ORDER BY user_id",
            seq,
            message.senderId,
            message.createdAt,
          )
          .toArray();
        state.deliveredTo = rows.filter((r) => r.d).map((r) => r.userId);
        state.readBy = rows.filter((r) => r.r).map((r) => r.userId);
      }
      return state;
    });
  }

  // ------------------------------------------------------------------ WebSocket lifecycle

  /** Upgrade requests, forwarded by the Worker after it verified the token and the protocol version. */
  override async fetch(request: Request): Promise<Response> {
    const identity = JSON.parse(request.headers.get(IDENTITY_HEADER) ?? "null") as Identity | null;
    if (!identity || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade from the Worker", { status: 400 });
    }
    const url = new URL(request.url);
    const sinceParam = url.searchParams.get("since");
    const since = sinceParam === null ? null : Number(sinceParam);
    const clientEpoch = url.searchParams.get("epoch");
    const protocolHeader = request.headers.get("Sec-WebSocket-Protocol");
    const headers = protocolHeader ? { "Sec-WebSocket-Protocol": protocolHeader } : undefined;

    if (this.getMeta("id") === null || this.memberRow(identity.userId) === null) {
      return refusedUpgrade(CloseCode.NotAMember, "not a member of this conversation", headers);
    }
    const open = [...this.liveSockets().values()].filter((s) => s.userId === identity.userId).length;
    if (open >= this.config.maxSocketsPerUser) {
      return refusedUpgrade(CloseCode.TooManyConnections, "too many open sockets for this user", headers);
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // Tag by user id so a removed member's sockets can be found and closed.
    this.ctx.acceptWebSocket(server, [identity.userId]);
    const state: SocketState = {
      userId: identity.userId,
      username: identity.username,
      exp: identity.exp,
      live: false,
      lease: randomToken(9),
      connectedAt: Date.now(),
    };
    this.remember(server, state);
    // Presence: this socket is a device of the user until it closes or stops heartbeating.
    this.ctx.waitUntil(this.reportLeases(identity.userId, [state.lease], []));
    this.scheduler.ensure("presence", Date.now() + this.config.presenceTtlMs / 2);

    const epoch = this.getMeta("epoch")!;
    const reset = (clientEpoch !== null && clientEpoch !== epoch) || (since !== null && since > this.lastSeq);
    this.sendTo(server, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      conversationId: this.conversationId(),
      userId: identity.userId,
      epoch,
      lastSeq: this.lastSeq,
      reset,
    });
    if (since === null || reset) this.goLive(server, state);
    else this.ctx.waitUntil(this.streamBacklog(server, state, since));
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const state = this.stateOf(ws);
    if (!state) return this.closeSocket(ws, CloseCode.InternalError, "socket has no identity");
    if (state.exp * 1000 <= Date.now()) return this.closeSocket(ws, CloseCode.TokenExpired, "access token expired");
    if (this.memberRow(state.userId) === null) return this.closeSocket(ws, CloseCode.NotAMember, "not a member of this conversation");

    const parsed = parseClientFrame(raw);
    if (!parsed.ok) {
      // A bad frame gets an error and the socket stays open: it may be one bug in an otherwise healthy client.
      return this.sendTo(ws, { type: "error", code: parsed.code, message: parsed.message, clientMsgId: parsed.clientMsgId });
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case "ping":
        return this.sendTo(ws, { type: "pong" });
      case "send":
      case "send_batch": {
        const items = frame.type === "send" ? [{ clientMsgId: frame.clientMsgId, body: frame.body }] : frame.messages;
        this.typingAt.delete(state.userId); // a sent message ends "typing"; the next typing frame goes out at once
        this.pendingSends.push({ ws, userId: state.userId, items });
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          // Group commit. workerd commits (and fsyncs) once per event, so one message per event caps an
          // object at ~2,000 msg/s and lets busy sockets starve quiet ones. Sends that arrive while this
          // zero-delay timer is pending are persisted together in its one event: one commit for all.
          // The timer exists only while sends are pending, so it never keeps an idle object from hibernating.
          setTimeout(() => this.flushSends(), 0);
        }
        return;
      }
      case "typing": {
        // Ephemeral: never persisted, never timed on the server. Receivers hide it at expiresAt.
        const now = Date.now();
        const last = this.typingAt.get(state.userId) ?? 0;
        if (frame.active && now - last < TYPING_THROTTLE_MS) return;
        this.typingAt.set(state.userId, frame.active ? now : 0);
        const text = JSON.stringify({
          type: "typing",
          userId: state.userId,
          username: state.username,
          active: frame.active,
          expiresAt: now + TYPING_TTL_MS,
        } satisfies ServerFrame);
        for (const [other, otherState] of this.liveSockets()) {
          if (otherState.userId === state.userId || !otherState.live) continue;
          trySend(other, text);
        }
        return;
      }
      case "receipt":
        this.advanceCursor(state.userId, frame.delivered ?? 0, frame.read ?? 0);
        return;
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const state = this.stateOf(ws);
    this.sockets?.delete(ws);
    if (state) this.ctx.waitUntil(this.reportLeases(state.userId, [], [state.lease]));
    reciprocateClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    const state = this.stateOf(ws);
    this.sockets?.delete(ws);
    if (state) this.ctx.waitUntil(this.reportLeases(state.userId, [], [state.lease]));
  }

  // ------------------------------------------------------------------ alarm: archive + D1 outbox

  override async alarm(): Promise<void> {
    this.scheduler.alarmFired();
    const now = Date.now();
    try {
      for (const job of this.scheduler.due(now)) {
        if (job === "archive") await this.archiveBatch();
        else if (job === "d1_outbox") await this.flushD1Outbox();
        else if (job === "notify") await this.notifyMembers();
        else if (job === "presence") await this.presenceSweep();
      }
    } finally {
      this.scheduler.rearm();
    }
  }

  /** Copy the next batch of unarchived messages to D1, then prune what D1 now holds beyond the hot tail. */
  private async archiveBatch(): Promise<void> {
    const archived = Number(this.getMeta("archived_seq") ?? "0");
    const rows = this.sql
      .exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`, archived, ARCHIVE_BATCH)
      .toArray();
    if (rows.length === 0) {
      this.scheduler.clear("archive");
      return;
    }
    try {
      await this.archive.writeMessages(this.conversationId(), rows);
    } catch (err) {
      // D1 is down or failing: keep everything, retry with capped exponential backoff. Nothing is dropped.
      this.archiveFailures++;
      const delay = backoff(this.archiveFailures);
      console.warn(JSON.stringify({ at: "archive", conversation: this.conversationId(), error: String(err), retryInMs: delay }));
      this.scheduler.set("archive", Date.now() + delay);
      return;
    }
    this.archiveFailures = 0;
    const upTo = rows[rows.length - 1]!.seq;
    this.setMeta("archived_seq", String(Math.max(archived, upTo)));
    const morePruning = this.prune();
    if (this.lastSeq > upTo || morePruning) this.scheduler.set("archive", Date.now());
    else this.scheduler.clear("archive");
  }

  /** Drop archived rows beyond the hot tail, keeping their idempotency keys. Returns true if more remain to prune. */
  private prune(): boolean {
    const archived = Number(this.getMeta("archived_seq") ?? "0");
    const cut = Math.min(archived, this.lastSeq - this.config.hotTailMessages);
    const oldest = this.oldestHotSeq();
    if (oldest === null || cut < oldest) return false;
    const to = Math.min(cut, oldest + PRUNE_BATCH - 1);
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "INSERT OR IGNORE INTO pruned_client_ids (sender_id, client_msg_id, seq, id, created_at) SELECT sender_id, client_msg_id, seq, id, created_at FROM messages WHERE seq <= ?",
        to,
      );
      this.sql.exec("DELETE FROM messages WHERE seq <= ?", to);
    });
    return to < cut;
  }

  private enqueueD1(statements: D1Statement[]): void {
    if (statements.length === 0) return;
    this.sql.exec("INSERT INTO d1_outbox (statements, created_at) VALUES (?, ?)", JSON.stringify(statements), Date.now());
    this.scheduler.ensure("d1_outbox", Date.now() + 1_000);
  }

  /** Apply queued directory writes to D1 in order. Safe to call from RPCs and the alarm at once. */
  private flushD1Outbox(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        for (;;) {
          const rows = this.sql
            .exec<{ id: number; statements: string }>("SELECT id, statements FROM d1_outbox ORDER BY id LIMIT 20")
            .toArray();
          if (rows.length === 0) {
            this.scheduler.clear("d1_outbox");
            this.outboxFailures = 0;
            return;
          }
          const statements = rows.flatMap((r) => JSON.parse(r.statements) as D1Statement[]);
          try {
            await this.archive.run(statements);
          } catch (err) {
            this.outboxFailures++;
            const delay = backoff(this.outboxFailures);
            console.warn(JSON.stringify({ at: "d1_outbox", conversation: this.getMeta("id"), error: String(err), retryInMs: delay }));
            this.scheduler.set("d1_outbox", Date.now() + delay);
            return;
          }
          this.sql.exec("DELETE FROM d1_outbox WHERE id <= ?", rows[rows.length - 1]!.id);
        }
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  // ------------------------------------------------------------------ the hot path

  /**
   * Persist every queued socket send in this one event (one commit), then ack each to its own socket,
   * then broadcast them all. The output gate holds every frame until the commit is durable, so no one
   * hears of an unsaved message. Per-socket order is kept: the queue is FIFO.
   */
  private flushSends(): void {
    this.flushScheduled = false;
    const batch = this.pendingSends;
    this.pendingSends = [];
    const fresh: ChatMessage[] = [];
    const senderSeqs = new Map<string, number>();
    for (const entry of batch) {
      if (this.memberRow(entry.userId) === null) {
        // Removed between sending and this flush: nothing is stored, the socket is already being closed.
        for (const item of entry.items) {
          this.sendTo(entry.ws, { type: "error", code: "not_a_member", message: "you are not a member of this conversation", clientMsgId: item.clientMsgId });
        }
        continue;
      }
      let results: ReturnType<ConversationObject["persist"]>;
      try {
        results = this.persist(entry.userId, entry.items, false);
      } catch (err) {
        // Nothing of this entry was stored (its transaction rolled back); the client retries with the same ids.
        console.error(JSON.stringify({ at: "persist", conversation: this.conversationId(), error: String(err) }));
        for (const item of entry.items) {
          this.sendTo(entry.ws, { type: "error", code: "internal_error", message: "could not store the message; retry", clientMsgId: item.clientMsgId });
        }
        continue;
      }
      for (const r of results) {
        if ("error" in r) this.sendTo(entry.ws, { type: "error", ...r.error });
        else {
          this.sendTo(entry.ws, { type: "ack", ...r.ack });
          fresh.push(...r.fresh);
          if (!r.ack.duplicate) senderSeqs.set(entry.userId, Math.max(senderSeqs.get(entry.userId) ?? 0, r.ack.seq));
        }
      }
    }
    // Sending marks read up to your own message: one cursor write per sender per flush, not per message.
    for (const [userId, seq] of senderSeqs) this.advanceCursor(userId, seq, seq);
    this.fanOut(fresh);
  }

  /**
   * Assign seqs and insert, all synchronously in one transaction: no await, so no other event can
   * interleave and the writes commit together. Returns an ack per item (the original one for a
   * clientMsgId already stored) or a per-item error.
   */
  private persist(
    senderId: string,
    items: OutgoingMessage[],
    advanceSenderCursor = true,
  ): (
    | { ack: SendResult; fresh: ChatMessage[] }
    | { error: { code: "body_too_large" | "rate_limited"; message: string; clientMsgId: string; retryAfterMs?: number } }
  )[] {
    const now = Date.now();
    const before = this.lastSeq;
    let senderSeq = 0;
    try {
      return this.ctx.storage.transactionSync(() => {
        const results = items.map((item) => {
          // A retry is answered with the original ack even if the limits changed since.
          const existing = this.findByClientMsgId(senderId, item.clientMsgId);
          if (existing) return { ack: { ...existing, clientMsgId: item.clientMsgId, duplicate: true }, fresh: [] };
          if (utf8Length(item.body) > this.config.maxBodyBytes) {
            return {
              error: {
                code: "body_too_large" as const,
                message: `message body is limited to ${this.config.maxBodyBytes} bytes of UTF-8`,
                clientMsgId: item.clientMsgId,
              },
            };
          }
          // Duplicates above are free; each new message takes a token.
          const { granted, retryAfterMs } = this.sendLimiter.take(senderId, 1, now);
          if (granted === 0) {
            return {
              error: {
                code: "rate_limited" as const,
                message: `sending too fast: at most ${this.config.sendRatePerSecond} messages per second (burst ${this.config.sendBurst})`,
                clientMsgId: item.clientMsgId,
                retryAfterMs,
              },
            };
          }
          const message: ChatMessage = {
            seq: this.lastSeq + 1,
            id: newId("m", now),
            senderId,
            clientMsgId: item.clientMsgId,
            body: item.body,
            createdAt: now,
          };
          this.sql.exec(
            "INSERT INTO messages (seq, id, sender_id, client_msg_id, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            message.seq,
            message.id,
            message.senderId,
            message.clientMsgId,
            message.body,
            message.createdAt,
          );
          this.lastSeq = message.seq;
          senderSeq = message.seq;
          const ack: SendResult = { clientMsgId: item.clientMsgId, seq: message.seq, id: message.id, createdAt: now, duplicate: false };
          return { ack, fresh: [message] };
        });
        // Sending marks the conversation read (and delivered) up to your own message.
        if (senderSeq > 0 && advanceSenderCursor) this.advanceCursor(senderId, senderSeq, senderSeq);
        return results;
      });
    } catch (err) {
      this.lastSeq = before; // the transaction rolled back
      throw err;
    }
  }

  /** Push new messages to every live socket (including the sender's: its stream stays gapless), and schedule archiving. */
  private fanOut(messages: ChatMessage[]): void {
    if (messages.length === 0) return;
    for (const m of messages) this.broadcast({ type: "message", message: m }, true);
    this.scheduler.ensure("archive", Date.now() + ARCHIVE_DELAY_MS);
    this.scheduleNotify();
  }

  private findByClientMsgId(senderId: string, clientMsgId: string): { seq: number; id: string; createdAt: number } | null {
    const hot = this.sql
      .exec<{ seq: number; id: string; createdAt: number }>(
        "SELECT seq, id, created_at AS createdAt FROM messages WHERE sender_id = ? AND client_msg_id = ?",
        senderId,
        clientMsgId,
      )
      .toArray()[0];
    if (hot) return hot;
    return (
      this.sql
        .exec<{ seq: number; id: string; createdAt: number }>(
          "SELECT seq, id, created_at AS createdAt FROM pruned_client_ids WHERE sender_id = ? AND client_msg_id = ?",
          senderId,
          clientMsgId,
        )
        .toArray()[0] ?? null
    );
  }

  // ------------------------------------------------------------------ backlog on connect

  /**
   * Send every message after `since`, then `caught_up`, then the socket goes live. While a socket is
   * not live, broadcasts skip it and its backlog read picks the new messages up from storage instead;
   * the final read and the switch to live happen in one synchronous step, so there is no gap and no
   * duplicate between backlog and live.
   */
  private async streamBacklog(ws: WebSocket, state: SocketState, since: number): Promise<void> {
    let sent = since;
    try {
      while (ws.readyState === WebSocket.OPEN) {
        const oldestHot = this.oldestHotSeq() ?? this.lastSeq + 1;
        if (sent + 1 < oldestHot) {
          // Older than the hot tail: page from D1 (awaits, so live sends may interleave; they are in storage).
          const to = Math.min(sent + BACKLOG_PAGE_SIZE, oldestHot - 1);
          const page = await this.archive.readMessages(this.conversationId(), sent + 1, to);
          if (page.length !== to - sent) throw new Error(`archive returned ${page.length} of ${to - sent} messages`);
          this.sendTo(ws, { type: "backlog", messages: page });
          sent = to;
          continue;
        }
        // The rest is in SQLite: read synchronously to the end, then go live without yielding.
        while (sent < this.lastSeq) {
          const page = this.sql
            .exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?`, sent, BACKLOG_PAGE_SIZE)
            .toArray();
          if (page.length === 0) break;
          this.sendTo(ws, { type: "backlog", messages: page });
          sent = page[page.length - 1]!.seq;
        }
        this.goLive(ws, state);
        return;
      }
    } catch (err) {
      console.error(JSON.stringify({ at: "backlog", conversation: this.conversationId(), error: String(err) }));
      this.closeSocket(ws, CloseCode.InternalError, "could not load history; reconnect");
    }
  }

  private goLive(ws: WebSocket, state: SocketState): void {
    state.live = true;
    this.remember(ws, state);
    this.sendTo(ws, { type: "caught_up", seq: this.lastSeq });
    // A new device learns where everyone is (small conversations; large ones ask GET /receipts?seq=).
    // Counted first, so connecting to a 5,000-member group does not read every member row.
    if (this.memberCount() <= RECEIPT_PUSH_LIMIT) {
      const cursors = this.listMembers().map((m) => ({ userId: m.userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq }));
      this.sendTo(ws, { type: "receipts", conversationId: this.conversationId(), cursors });
    }
  }

  // ------------------------------------------------------------------ sockets

  private remember(ws: WebSocket, state: SocketState): void {
    ws.serializeAttachment(state);
    this.liveSockets().set(ws, state);
  }

  private stateOf(ws: WebSocket): SocketState | undefined {
    return this.liveSockets().get(ws);
  }

  /** After a wake the map is empty: rebuild it from the runtime's sockets and their attachments. */
  private liveSockets(): Map<WebSocket, SocketState> {
    this.sockets ??= openSocketStates<SocketState>(this.ctx);
    return this.sockets;
  }

  private broadcast(frame: ServerFrame, liveOnly = false): void {
    const text = JSON.stringify(frame);
    const now = Date.now();
    for (const [ws, state] of this.liveSockets()) {
      // A socket whose token expired hears nothing more: it is closed, and resumes with a fresh token.
      if (state.exp * 1000 <= now) {
        this.closeSocket(ws, CloseCode.TokenExpired, "access token expired");
        continue;
      }
      if (liveOnly && !state.live) continue;
      trySend(ws, text);
    }
  }

  private sendTo(ws: WebSocket, frame: ServerFrame): void {
    trySend(ws, JSON.stringify(frame));
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    const state = this.sockets?.get(ws);
    this.sockets?.delete(ws);
    if (state) this.ctx.waitUntil(this.reportLeases(state.userId, [], [state.lease]));
    tryClose(ws, code, reason);
  }

  // ------------------------------------------------------------------ receipts, inbox fan-out, presence

  /**
   * Move a member's cursors forward (never back; `read` implies delivered; clamped to the stream).
   * A change is recorded in dirty_members, and the coalesced fan-out tells the sockets and user objects.
   */
  private advanceCursor(userId: string, delivered: number, read: number): MemberRow {
    const d = Math.min(Math.max(delivered, read), this.lastSeq);
    const r = Math.min(read, this.lastSeq);
    const before = this.memberRow(userId);
    if (!before) throw new AppError("not_a_member", "you are not a member of this conversation");
    if (d <= before.deliveredSeq && r <= before.readSeq) return before;
    this.sql.exec(
      "UPDATE members SET delivered_seq = max(delivered_seq, ?), read_seq = max(read_seq, ?) WHERE user_id = ?",
      d,
      r,
      userId,
    );
    this.markDirty(userId);
    this.scheduleNotify();
    return this.memberRow(userId)!;
  }

  private markDirty(userId: string): void {
    this.sql.exec("INSERT INTO dirty_members (user_id) VALUES (?)", userId);
  }

  /** At most one fan-out per NOTIFY_INTERVAL_MS; the first one after a quiet period goes out at once. */
  private scheduleNotify(): void {
    if (this.scheduler.has("notify")) return;
    this.scheduler.ensure("notify", Math.max(Date.now() + 10, this.lastNotifyAt + NOTIFY_INTERVAL_MS));
  }

  private userStub(userId: string) {
    return this.env.USERS.get(this.env.USERS.idFromName(userId));
  }

  /**
   * The coalesced fan-out. When the stream advanced, every member's inbox hears the new last seq and
   * preview; otherwise only members whose cursors changed (plus everyone, in conversations small enough
   * to push receipts). Cost per message: nothing beyond a scheduler check. Cost per interval: one RPC
   * per member for small conversations, one queue message per 100 members for large ones.
   */
  private async notifyMembers(): Promise<void> {
    const conversationId = this.conversationId();
    const lastSeq = this.lastSeq;
    const notified = Number(this.getMeta("notified_seq") ?? "0");
    const maxDirty = this.sql.exec<{ m: number | null }>("SELECT max(id) AS m FROM dirty_members").one().m ?? 0;
    const dirtyIds = this.sql.exec<{ userId: string }>("SELECT DISTINCT user_id AS userId FROM dirty_members WHERE id <= ?", maxDirty).toArray();
    const memberCount = this.memberCount();
    if (lastSeq <= notified && dirtyIds.length === 0) {
      this.scheduler.clear("notify");
      return;
    }
    const dirtyCursors: ReceiptCursor[] = [];
    for (const { userId } of dirtyIds) {
      const m = this.memberRow(userId);
      if (m) dirtyCursors.push({ userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq });
    }
    // Receipts reach the open conversation sockets coalesced: one frame per interval, not per message per member.
    if (dirtyCursors.length > 0) this.broadcast({ type: "receipts", conversationId, cursors: dirtyCursors }, true);

    const small = memberCount <= RECEIPT_PUSH_LIMIT;
    const everyone = lastSeq > notified || (small && dirtyCursors.length > 0);
    const targets: FanoutTarget[] = (
      everyone ? this.listMembers() : dirtyIds.map((d) => this.memberRow(d.userId)).filter((m): m is MemberRow => m !== null)
    ).map((m) => ({ userId: m.userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq, joinedAt: m.joinedAt }));
    const lastRow = this.sql.exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq = ?`, lastSeq).toArray()[0];
    const type = (this.getMeta("type") ?? "group") as ConversationType;
    const summary: ConversationSummary = {
      conversationId,
      type,
      title: this.getMeta("title") || null,
      directMembers: type === "direct" ? this.listMembers().map((m) => ({ userId: m.userId, username: m.username })) : null,
      lastSeq,
      lastMessage: lastRow ? { seq: lastRow.seq, senderId: lastRow.senderId, preview: previewOf(lastRow.body), createdAt: lastRow.createdAt } : null,
      receipts: small ? dirtyCursors : [],
    };
    try {
      if (targets.length <= DIRECT_FANOUT_LIMIT) {
        const results = await Promise.allSettled(targets.map((t) => this.userStub(t.userId).conversationUpdate(summary, t)));
        const failed = results.find((r) => r.status === "rejected");
        if (failed) throw (failed as PromiseRejectedResult).reason;
      } else {
        const messages: { body: FanoutJob }[] = [];
        for (let i = 0; i < targets.length; i += FANOUT_TARGETS_PER_MESSAGE) {
          messages.push({ body: { kind: "conversation_update", summary, targets: targets.slice(i, i + FANOUT_TARGETS_PER_MESSAGE) } });
        }
        for (let i = 0; i < messages.length; i += 100) await this.env.FANOUT_QUEUE.sendBatch(messages.slice(i, i + 100));
      }
    } catch (err) {
      // Every field the user objects apply only moves forward, so a retry of the whole batch is safe.
      this.notifyFailures++;
      const delay = backoff(this.notifyFailures);
      console.warn(JSON.stringify({ at: "notify", conversation: conversationId, error: String(err), retryInMs: delay }));
      this.scheduler.set("notify", Date.now() + delay);
      return;
    }
    this.notifyFailures = 0;
    this.lastNotifyAt = Date.now();
    this.setMeta("notified_seq", String(Math.max(notified, lastSeq)));
    this.sql.exec("DELETE FROM dirty_members WHERE id <= ?", maxDirty);
    const more = this.lastSeq > lastSeq || this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM dirty_members").one().n > 0;
    if (more) this.scheduler.set("notify", this.lastNotifyAt + NOTIFY_INTERVAL_MS);
    else this.scheduler.clear("notify");
  }

  /** Tell a user's object which of its devices (sockets here) opened, are still alive, or closed. */
  private async reportLeases(userId: string, open: string[], close: string[]): Promise<void> {
    try {
      await this.userStub(userId).deviceLeases(open, close, this.conversationId(), userId);
    } catch (err) {
      console.warn(JSON.stringify({ at: "leases", error: String(err) }));
    }
  }

  /**
   * Close sockets that stopped heartbeating (a closed tab can leave a hibernated socket open with no
   * close event, workerd#1187) and renew the leases of the rest. Runs only while sockets are open.
   */
  private async presenceSweep(): Promise<void> {
    const now = Date.now();
    const ttl = this.config.presenceTtlMs;
    const renew = new Map<string, string[]>();
    for (const [ws, state] of this.liveSockets()) {
      const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      if (now - Math.max(lastPing, state.connectedAt) > ttl) {
        this.closeSocket(ws, CloseCode.HeartbeatTimeout, "no heartbeat");
        continue;
      }
      // Idle sockets that only ping never reach the object: expire them here too.
      if (state.exp * 1000 <= now) {
        this.closeSocket(ws, CloseCode.TokenExpired, "access token expired");
        continue;
      }
      renew.set(state.userId, [...(renew.get(state.userId) ?? []), state.lease]);
    }
    await Promise.all([...renew].map(([userId, leases]) => this.reportLeases(userId, leases, [])));
    if (this.liveSockets().size > 0) this.scheduler.set("presence", now + ttl / 2);
    else this.scheduler.clear("presence");
  }

  // ------------------------------------------------------------------ storage helpers

  private readLastSeq(): number {
    const hot = this.sql.exec<{ s: number | null }>("SELECT max(seq) AS s FROM messages").one().s;
    return hot ?? Number(this.getMeta("archived_seq") ?? "0");
  }

  private oldestHotSeq(): number | null {
    return this.sql.exec<{ s: number | null }>("SELECT min(seq) AS s FROM messages").one().s;
  }

  private async readRange(lo: number, hi: number): Promise<ChatMessage[]> {
    // Read the hot part first, synchronously, so a prune during the D1 await cannot remove it.
    const oldestHot = this.oldestHotSeq() ?? hi + 1;
    const hot = this.sql
      .exec<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE seq BETWEEN ? AND ? ORDER BY seq`, Math.max(lo, oldestHot), hi)
      .toArray();
    if (lo >= oldestHot) return hot;
    const coldTo = Math.min(hi, oldestHot - 1);
    const cold = await this.archive.readMessages(this.conversationId(), lo, coldTo);
    if (cold.length !== coldTo - lo + 1) throw new AppError("unavailable", "history archive is incomplete; try again");
    return [...cold, ...hot];
  }

  private getMeta(key: string): string | null {
    if (this.blank) return null;
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }

  private conversationId(): string {
    return this.getMeta("id") ?? "";
  }

  private memberRow(userId: string): MemberRow | null {
    if (this.blank) return null;
    return (
      this.sql
        .exec<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members WHERE user_id = ?`, userId)
        .toArray()[0] ?? null
    );
  }

  private requireMember(userId: string): MemberRow {
    const row = this.getMeta("id") === null ? null : this.memberRow(userId);
    // The same answer whether the conversation exists or not: non-members learn nothing about it.
    if (!row) throw new AppError("not_a_member", "you are not a member of this conversation");
    return row;
  }

  private memberCount(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM members").one().n;
  }

  private listMembers(): MemberRow[] {
    return this.sql
      .exec<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members ORDER BY joined_at, user_id`)
      .toArray();
  }

  private memberUpserts(conversationId: string, members: MemberRow[]): D1Statement[] {
    const statements: D1Statement[] = [];
    for (let i = 0; i < members.length; i += MEMBER_ROWS_PER_STATEMENT) {
      const chunk = members.slice(i, i + MEMBER_ROWS_PER_STATEMENT);
      statements.push({
        sql: `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES ${chunk.map(() => "(?, ?, ?, ?)").join(", ")} ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role`,
        params: chunk.flatMap((m) => [conversationId, m.userId, m.role, m.joinedAt]),
      });
    }
    return statements;
  }

  private describeUnchecked(): Conversation {
    const members: Member[] = this.listMembers().map((m) => ({ userId: m.userId, username: m.username, role: m.role, joinedAt: m.joinedAt }));
    const title = this.getMeta("title");
    return {
      id: this.conversationId(),
      type: (this.getMeta("type") ?? "group") as ConversationType,
      title: title ? title : null,
      createdBy: this.getMeta("created_by") ?? "",
      createdAt: Number(this.getMeta("created_at") ?? "0"),
      epoch: this.getMeta("epoch") ?? "",
      lastSeq: this.lastSeq,
      members,
    };
  }
}

