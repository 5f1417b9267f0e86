// One Durable Object per user: everything about a person rather than a conversation.
// Presence (multi-device leases + heartbeat TTL), delivered/read cursors and unread counts, the inbox,
// receipts pushed to the user's devices, presence subscriptions, and the push-notification hook.
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../protocol/errors";
import { PING_FRAME, PONG_FRAME, PROTOCOL_VERSION, parseFrame } from "../protocol/frames";
import {
  UserClientFrameSchema,
  type UserClientFrame,
  type InboxEntry,
  type InboxPage,
  type Presence,
  type UserServerFrame,
} from "../protocol/user";
import { AppError, rpcResult, type RpcResult } from "../lib/errors";
import { randomToken } from "../lib/ids";
import { migrate, Scheduler } from "../lib/sqlite";
import type { Identity } from "../lib/tokens";
import type { ConversationSummary, FanoutTarget, PushJob } from "./shared/updates";
import { USER_MIGRATIONS } from "./user.schema";
import { readConfig, type Config } from "../lib/config";
import { reciprocateClose, refusedUpgrade, tryClose, trySend } from "../lib/sockets";
import { openSocketStates } from "./shared/legacy";

export const USER_IDENTITY_HEADER = "X-Edgechat-Identity";

interface SocketState {
  userId: string;
  exp: number;
  key: string;
  connectedAt: number;
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
}

type Job = "presence_sweep";

const USER_FRAME_TYPES: ReadonlySet<string> = new Set<UserClientFrame["type"]>(["presence_subscribe", "receipt", "ping"]);

/** A presence subscription lasts this long; while the watcher has sockets open it is renewed every half of it. */
const SUBSCRIPTION_TTL_MS = 60 * 60_000;
const INBOX_COLUMNS = `conversation_id AS conversationId, type, title, peer_id AS peerId, peer_username AS peerUsername,
  last_seq AS lastSeq, last_sender AS lastSender, last_preview AS lastPreview, last_at AS lastAt,
  delivered_seq AS deliveredSeq, read_seq AS readSeq, updated_at AS updatedAt`;

export class UserObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly scheduler: Scheduler<Job>;
  private sockets: Map<WebSocket, SocketState> | null = null;
  private readonly config: Config;
  /** A device is offline after this long without a heartbeat (PRESENCE_TTL_MS, default 30 s). */
  private readonly ttl: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.config = readConfig(env);
    this.ttl = this.config.presenceTtlMs;
    migrate(ctx.storage, USER_MIGRATIONS);
    this.scheduler = new Scheduler<Job>(ctx.storage);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  // ------------------------------------------------------------------ user socket

  override async fetch(request: Request): Promise<Response> {
    const identity = JSON.parse(request.headers.get(USER_IDENTITY_HEADER) ?? "null") as Identity | null;
    if (!identity || request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade from the Worker", { status: 400 });
    }
    this.setMeta("user_id", identity.userId);
    const protocolHeader = request.headers.get("Sec-WebSocket-Protocol");
    const headers = protocolHeader ? { "Sec-WebSocket-Protocol": protocolHeader } : undefined;
    if (this.liveSockets().size >= this.config.maxSocketsPerUser) {
      return refusedUpgrade(CloseCode.TooManyConnections, "too many open sockets for this user", headers);
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const state: SocketState = { userId: identity.userId, exp: identity.exp, key: randomToken(9), connectedAt: Date.now() };
    server.serializeAttachment(state);
    this.liveSockets().set(server, state);
    this.send(server, { type: "hello", protocol: PROTOCOL_VERSION, userId: identity.userId, totalUnread: this.totalUnread() });
    this.scheduler.ensure("presence_sweep", Date.now() + this.ttl / 2);
    this.ctx.waitUntil(this.presenceMaybeChanged());
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const state = this.liveSockets().get(ws);
    if (!state) return this.closeSocket(ws, CloseCode.InternalError, "socket has no identity");
    if (state.exp * 1000 <= Date.now()) return this.closeSocket(ws, CloseCode.TokenExpired, "access token expired");
    const parsed = parseFrame(raw, UserClientFrameSchema, USER_FRAME_TYPES);
    if (!parsed.ok) return this.send(ws, { type: "error", code: parsed.code, message: parsed.message });
    const frame = parsed.frame;
    switch (frame.type) {
      case "ping":
        return this.send(ws, { type: "pong" });
      case "presence_subscribe": {
        const result = await this.subscribe(state, frame.userIds);
        if (!result.ok) return this.send(ws, { type: "error", ...result.error });
        return this.send(ws, { type: "presence", presence: result.value });
      }
      case "receipt": {
        const result = await this.reportReceipt(state.userId, frame.conversationId, frame.delivered, frame.read);
        if (!result.ok) this.send(ws, { type: "error", ...result.error });
        return;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.forgetSocket(ws);
    reciprocateClose(ws, code, reason);
    await this.presenceMaybeChanged();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.forgetSocket(ws);
    await this.presenceMaybeChanged();
  }

  // ------------------------------------------------------------------ inbox & cursors (RPC)

  /** Apply a conversation update from the fan-out. Idempotent and order-insensitive: every field only moves forward. */
  async conversationUpdate(summary: ConversationSummary, target: FanoutTarget): Promise<void> {
    const userId = target.userId;
    this.setMeta("user_id", userId);
    const departed = this.sql
      .exec<{ at: number }>("SELECT removed_at AS at FROM departed WHERE conversation_id = ?", summary.conversationId)
      .toArray()[0];
    if (departed && target.joinedAt <= departed.at) return; // a late update about a membership that has ended
    if (departed) this.sql.exec("DELETE FROM departed WHERE conversation_id = ?", summary.conversationId);
    const before = this.inboxRow(summary.conversationId);
    const peer = summary.directMembers?.find((m) => m.userId !== userId) ?? null;
    const last = summary.lastMessage;
    const updatedAt = Math.max(before?.updatedAt ?? 0, last?.createdAt ?? 0, before ? 0 : target.joinedAt);
    this.sql.exec(
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
    const after = this.inboxRow(summary.conversationId)!;
    const total = this.totalUnread();
    const changed =
      !before ||
      before.lastSeq !== after.lastSeq ||
      before.readSeq !== after.readSeq ||
      before.deliveredSeq !== after.deliveredSeq ||
      before.title !== after.title;
    if (changed) this.broadcast({ type: "inbox_update", entry: toEntry(after), totalUnread: total });
    const others = summary.receipts.filter((c) => c.userId !== userId);
    if (others.length > 0) this.broadcast({ type: "receipts", conversationId: summary.conversationId, cursors: others });

    // Push only for new messages from someone else, and only when no device is connected.
    const fresh = last && after.lastSeq > (before?.lastSeq ?? 0) && last.senderId !== userId && after.lastSeq > after.readSeq;
    if (fresh && this.env.PUSH_WEBHOOK_URL && !this.isOnline()) {
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
      await this.env.PUSH_QUEUE.send(job);
    }
  }

  /** Removed from (or left) a conversation: it leaves the inbox and the unread total. */
  async conversationRemoved(conversationId: string, removedAt: number): Promise<void> {
    const existed = this.inboxRow(conversationId) !== null;
    this.sql.exec("DELETE FROM inbox WHERE conversation_id = ?", conversationId);
    this.sql.exec(
      "INSERT INTO departed (conversation_id, removed_at) VALUES (?, ?) ON CONFLICT (conversation_id) DO UPDATE SET removed_at = max(removed_at, excluded.removed_at)",
      conversationId,
      removedAt,
    );
    if (existed) this.broadcast({ type: "inbox_remove", conversationId, totalUnread: this.totalUnread() });
  }

  /** The inbox: newest activity first, keyset-paginated so a user in thousands of conversations pages fast. */
  async inbox(cursor: string | null, limit: number): Promise<RpcResult<InboxPage>> {
    return rpcResult(() => {
      let rows: InboxRow[];
      if (cursor) {
        const m = /^(\d{1,16})\.([A-Za-z0-9_-]{1,64})$/.exec(cursor);
        if (!m) throw new AppError("validation_failed", "cursor: invalid");
        rows = this.sql
          .exec<InboxRow>(
            `SELECT ${INBOX_COLUMNS} FROM inbox WHERE (updated_at, conversation_id) < (?, ?) ORDER BY updated_at DESC, conversation_id DESC LIMIT ?`,
            Number(m[1]),
            m[2]!,
            limit + 1,
          )
          .toArray();
      } else {
        rows = this.sql.exec<InboxRow>(`SELECT ${INBOX_COLUMNS} FROM inbox ORDER BY updated_at DESC, conversation_id DESC LIMIT ?`, limit + 1).toArray();
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
    const stub = this.env.CONVERSATIONS.get(this.env.CONVERSATIONS.idFromName(conversationId));
    const result = await stub.applyReceipt(userId, delivered, read);
    if (!result.ok) return result;
    // Apply locally at once so the unread badge moves without waiting for the fan-out.
    this.applyCursor(conversationId, result.value.deliveredSeq, result.value.readSeq);
    return { ok: true, value: null };
  }

  /** The conversation confirmed this user's cursors (from either socket): keep the inbox in step. */
  applyCursor(conversationId: string, deliveredSeq: number, readSeq: number): void {
    const before = this.inboxRow(conversationId);
    if (!before) return;
    this.sql.exec(
      "UPDATE inbox SET delivered_seq = max(delivered_seq, ?), read_seq = max(read_seq, ?) WHERE conversation_id = ?",
      deliveredSeq,
      readSeq,
      conversationId,
    );
    const after = this.inboxRow(conversationId)!;
    if (after.readSeq !== before.readSeq || after.deliveredSeq !== before.deliveredSeq) {
      this.broadcast({ type: "inbox_update", entry: toEntry(after), totalUnread: this.totalUnread() });
    }
  }

  // ------------------------------------------------------------------ presence (RPC)

  /** A conversation socket of this user opened (or is still alive): it counts as a device until the lease lapses. */
  async deviceLeases(open: string[], close: string[], conversationId: string, userId?: string): Promise<void> {
    if (userId) this.setMeta("user_id", userId);
    // Conversation objects renew leases every ttl/2 and a lease lasts 2 x ttl: a device whose object
    // stopped renewing (evicted, redeployed) is gone within 2 x ttl.
    const expires = Date.now() + this.ttl * 2;
    for (const id of open) {
      this.sql.exec("INSERT OR REPLACE INTO leases (id, conversation_id, expires_at) VALUES (?, ?, ?)", id, conversationId, expires);
    }
    for (const id of close) this.sql.exec("DELETE FROM leases WHERE id = ?", id);
    if (open.length > 0) this.scheduler.ensure("presence_sweep", expires + 1);
    await this.presenceMaybeChanged();
  }

  async getPresence(): Promise<Presence> {
    return this.currentPresence();
  }

  /** `subscriberId` wants this user's presence changes pushed to it. Returns the current state. */
  async addSubscriber(subscriberId: string): Promise<Presence> {
    this.sql.exec(
      "INSERT OR REPLACE INTO subscribers (user_id, expires_at) VALUES (?, ?)",
      subscriberId,
      Date.now() + SUBSCRIPTION_TTL_MS,
    );
    return this.currentPresence();
  }

  /** A watched user's presence changed. Returns false when no socket here watches it any more (the caller unsubscribes us). */
  async presenceChanged(presence: Presence): Promise<boolean> {
    const keys = new Set(
      this.sql.exec<{ key: string }>("SELECT socket_key AS key FROM watching WHERE user_id = ?", presence.userId).toArray().map((r) => r.key),
    );
    let delivered = false;
    for (const [ws, state] of this.liveSockets()) {
      if (!keys.has(state.key)) continue;
      this.send(ws, { type: "presence", presence: [presence] });
      delivered = true;
    }
    return delivered;
  }

  // ------------------------------------------------------------------ alarm: heartbeat sweep

  override async alarm(): Promise<void> {
    this.scheduler.alarmFired();
    try {
      if (this.scheduler.due(Date.now()).includes("presence_sweep")) await this.sweep();
    } finally {
      this.scheduler.rearm();
    }
  }

  /**
   * A closed tab can leave a hibernated socket open with no close event (workerd#1187), so a socket
   * counts only while it heartbeats: the runtime records the last auto-answered ping for us.
   */
  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const [ws, state] of this.liveSockets()) {
      const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? state.connectedAt;
      if (now - Math.max(lastPing, state.connectedAt) > this.ttl) {
        this.closeSocket(ws, CloseCode.HeartbeatTimeout, "no heartbeat");
      } else if (state.exp * 1000 <= now) {
        this.closeSocket(ws, CloseCode.TokenExpired, "access token expired");
      }
    }
    this.sql.exec("DELETE FROM leases WHERE expires_at <= ?", now);
    this.sql.exec("DELETE FROM subscribers WHERE expires_at <= ?", now);
    await this.renewWatches(now);
    await this.presenceMaybeChanged();
    const nextLease = this.sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM leases").one().at;
    if (this.liveSockets().size > 0) this.scheduler.set("presence_sweep", now + this.ttl / 2);
    else if (nextLease !== null) this.scheduler.set("presence_sweep", nextLease + 1);
    else this.scheduler.clear("presence_sweep");
  }

  // ------------------------------------------------------------------ presence internals

  private isOnline(): boolean {
    if (this.liveSockets().size > 0) return true;
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM leases WHERE expires_at > ?", Date.now()).one().n > 0;
  }

  private currentPresence(): Presence {
    const online = this.isOnline();
    const lastSeen = this.getMeta("last_seen_at");
    return {
      userId: this.getMeta("user_id") ?? "",
      online,
      lastSeenAt: online ? Date.now() : lastSeen === null ? null : Number(lastSeen),
    };
  }

  /** Compare with the last announced state; on a change, record lastSeenAt and tell the subscribers. */
  private async presenceMaybeChanged(): Promise<void> {
    const online = this.isOnline();
    const was = this.getMeta("online") === "1";
    if (online === was) return;
    this.setMeta("online", online ? "1" : "0");
    this.setMeta("last_seen_at", String(Date.now()));
    const presence = this.currentPresence();
    const subscribers = this.sql
      .exec<{ userId: string }>("SELECT user_id AS userId FROM subscribers WHERE expires_at > ?", Date.now())
      .toArray();
    await Promise.all(
      subscribers.map(async ({ userId }) => {
        try {
          const stub = this.env.USERS.get(this.env.USERS.idFromName(userId));
          if (!(await stub.presenceChanged(presence))) this.sql.exec("DELETE FROM subscribers WHERE user_id = ?", userId);
        } catch (err) {
          console.warn(JSON.stringify({ at: "presence_notify", error: String(err) }));
        }
      }),
    );
  }

  /** Keep our subscriptions with the users our sockets watch alive while we are connected. */
  private async renewWatches(now: number): Promise<void> {
    const last = Number(this.getMeta("watches_renewed_at") ?? "0");
    if (this.liveSockets().size === 0 || now - last < SUBSCRIPTION_TTL_MS / 2) return;
    this.setMeta("watches_renewed_at", String(now));
    const me = this.getMeta("user_id");
    if (!me) return;
    const watched = this.sql.exec<{ id: string }>("SELECT DISTINCT user_id AS id FROM watching").toArray();
    await Promise.allSettled(watched.map(({ id }) => this.env.USERS.get(this.env.USERS.idFromName(id)).addSubscriber(me)));
  }

  private async subscribe(state: SocketState, userIds: string[]): Promise<RpcResult<Presence[]>> {
    const unique = [...new Set(userIds)].filter((id) => id !== state.userId);
    const allowed = await sharedConversationUsers(this.env.DB, state.userId, unique);
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM watching WHERE socket_key = ?", state.key);
      for (const id of allowed) this.sql.exec("INSERT OR IGNORE INTO watching (socket_key, user_id) VALUES (?, ?)", state.key, id);
    });
    const presence = await Promise.all(
      [...allowed].map((id) => this.env.USERS.get(this.env.USERS.idFromName(id)).addSubscriber(state.userId)),
    );
    // Ids the user may not see are answered as unknown rather than refused, so nothing leaks about them.
    const unknown = unique.filter((id) => !allowed.has(id)).map((id) => ({ userId: id, online: false, lastSeenAt: null }));
    return { ok: true, value: [...presence.map((p, i) => ({ ...p, userId: [...allowed][i]! })), ...unknown] };
  }

  // ------------------------------------------------------------------ helpers

  private totalUnread(): number {
    return this.sql.exec<{ n: number | null }>("SELECT sum(max(last_seq - read_seq, 0)) AS n FROM inbox").one().n ?? 0;
  }

  private inboxRow(conversationId: string): InboxRow | null {
    return this.sql.exec<InboxRow>(`SELECT ${INBOX_COLUMNS} FROM inbox WHERE conversation_id = ?`, conversationId).toArray()[0] ?? null;
  }

  private liveSockets(): Map<WebSocket, SocketState> {
    this.sockets ??= openSocketStates<SocketState>(this.ctx);
    return this.sockets;
  }

  private forgetSocket(ws: WebSocket): void {
    const state = this.liveSockets().get(ws);
    this.sockets?.delete(ws);
    if (state) this.sql.exec("DELETE FROM watching WHERE socket_key = ?", state.key);
  }

  private broadcast(frame: UserServerFrame): void {
    const text = JSON.stringify(frame);
    const now = Date.now();
    for (const [ws, state] of this.liveSockets()) {
      if (state.exp * 1000 <= now) {
        this.closeSocket(ws, CloseCode.TokenExpired, "access token expired");
        continue;
      }
      trySend(ws, text);
    }
  }

  private send(ws: WebSocket, frame: UserServerFrame): void {
    trySend(ws, JSON.stringify(frame));
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    this.forgetSocket(ws);
    tryClose(ws, code, reason);
  }

  private getMeta(key: string): string | null {
    return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
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

/** Which of `others` share at least one conversation with `userId` (D1 directory; presence is not on the hot path). */
export async function sharedConversationUsers(db: D1Database, userId: string, others: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < others.length; i += 90) {
    const chunk = others.slice(i, i + 90);
    if (chunk.length === 0) continue;
    const { results } = await db
      .prepare(
        `SELECT DISTINCT b.user_id AS id FROM conversation_members a JOIN conversation_members b ON a.conversation_id = b.conversation_id
         WHERE a.user_id = ? AND b.user_id IN (${chunk.map(() => "?").join(", ")})`,
      )
      .bind(userId, ...chunk)
      .all<{ id: string }>();
    for (const r of results) out.add(r.id);
  }
  return out;
}
