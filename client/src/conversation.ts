// One open conversation: the socket, the gapless stream, the outbox flush, receipts and typing.
//
// Delivery rule: `lastSeq` is the highest seq delivered to the app, and every delivered seq is exactly
// lastSeq + 1. Anything at or below it is a duplicate (backlog overlap, replay after reconnect) and is
// dropped; anything above lastSeq + 1 is a gap, filled from REST history before going on. Frames are
// handled one at a time on a promise chain, so an async gap fill cannot reorder delivery.
import type { Conversation as ConversationInfo, HistoryPage, Member, SendResult } from "../../src/protocol/api";
import type { ChatMessage, ServerFrame } from "../../src/protocol/frames";
import { TYPING_THROTTLE_MS, TYPING_TTL_MS, type ReceiptCursor, type ReceiptState } from "../../src/protocol/user";
import { Emitter } from "./emitter";
import { parseConversationFrame, type ConversationServerFrame } from "./frames";
import { ApiError, type Http } from "./http";
import { newClientMsgId, type Outbox, type OutboxItem } from "./outbox";
import { ReconnectingSocket, type ConnectionError, type ConnectionState, type SocketOptions } from "./transport";

/** A member as `members_changed` names it (in `added` and `updated`). */
type MemberRef = Extract<ServerFrame, { type: "members_changed" }>["added"][number];

export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

export interface StatusChange {
  clientMsgId: string;
  status: MessageStatus;
  seq?: number;
  error?: { code: string; message: string };
}

export interface TypingUser {
  userId: string;
  username: string;
}

export interface ReceiptCounts {
  /** Members other than the sender. */
  of: number;
  delivered: number;
  read: number;
}

export interface ConversationEvents {
  state: ConnectionState;
  /** A new message, exactly once per seq, in seq order (own messages included, after their ack). */
  message: ChatMessage;
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
  /** Anything visible changed: a convenient single re-render hook. */
  change: undefined;
}

export interface ConversationOptions {
  id: string;
  userId: string;
  http: Http;
  outbox: Outbox;
  wsBaseUrl: string;
  socket: Omit<SocketOptions, "url">;
  pageSize: number;
  /** Resend an unacknowledged frame after this long on an open socket. Default 10 000. */
  ackTimeoutMs?: number;
}

const RECEIPT_DEBOUNCE_MS = 150;

export class Conversation extends Emitter<ConversationEvents> {
  readonly id: string;
  info: ConversationInfo | null = null;
  /** The loaded window of history, ascending and contiguous. */
  messages: ChatMessage[] = [];
  hasOlder = false;
  /** Highest seq delivered to the app. */
  lastSeq = 0;
  epoch: string | null = null;
  readonly cursors = new Map<string, ReceiptCursor>();
  readonly failed = new Map<string, { item: OutboxItem; error: { code: string; message: string } }>();

  private readonly socket: ReconnectingSocket;
  private chain: Promise<void> = Promise.resolve();
  private opening: Promise<this> | null = null;
  private loadingOlder: Promise<ChatMessage[]> | null = null;
  private resyncing = false;
  private caughtUp = false;
  private readonly sentAt = new Map<string, number>();
  private readonly statusCache = new Map<string, MessageStatus>();
  private readonly typingUsers = new Map<string, { username: string; expiresAt: number }>();
  private typingTimer: ReturnType<typeof setTimeout> | null = null;
  private typingSentAt = 0;
  private typingActive = false;
  private typingWanted = false;
  private typingDeferred: ReturnType<typeof setTimeout> | null = null;
  private reportedDelivered = 0;
  private reportedRead = 0;
  private wantDelivered = 0;
  private wantRead = 0;
  private receiptTimer: ReturnType<typeof setTimeout> | null = null;
  private resendTimer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: ConversationOptions) {
    super();
    this.id = options.id;
    this.socket = new ReconnectingSocket({
      ...options.socket,
      url: (token) => this.socketUrl(token),
    });
    this.socket.on("state", (s) => {
      if (s !== "open") this.caughtUp = false;
      this.emit("state", s);
      this.emit("change", undefined);
    });
    this.socket.on("error", (e) => this.emit("error", e));
    this.socket.on("frame", (raw) => {
      this.chain = this.chain
        .then(() => this.handle(raw))
        .catch((err: unknown) => this.emit("error", err instanceof ApiError ? err : new ApiError("internal_error", String(err), 0)));
    });
  }

  get state(): ConnectionState {
    return this.socket.state;
  }

  get me(): string {
    return this.options.userId;
  }

  /** Load metadata and the newest page, then connect and resume from it. Idempotent. */
  open(): Promise<this> {
    this.opening ??= (async () => {
      await this.options.outbox.load();
      const [{ conversation }, page] = await Promise.all([
        this.options.http.request<{ conversation: ConversationInfo }>("GET", `/v1/conversations/${encodeURIComponent(this.id)}`),
        this.fetchPage({ limit: this.options.pageSize }),
      ]);
      this.info = conversation;
      this.applyLatestPage(page);
      this.socket.start();
      this.resendTimer = setInterval(() => this.resendStale(), 2_000);
      this.emit("change", undefined);
      return this;
    })();
    this.opening.catch(() => {
      this.opening = null;
    });
    return this.opening;
  }

  close(): void {
    this.socket.stop();
    if (this.resendTimer !== null) clearInterval(this.resendTimer);
    if (this.receiptTimer !== null) clearTimeout(this.receiptTimer);
    if (this.typingTimer !== null) clearTimeout(this.typingTimer);
    if (this.typingDeferred !== null) clearTimeout(this.typingDeferred);
    this.resendTimer = this.receiptTimer = this.typingTimer = this.typingDeferred = null;
    this.opening = null;
  }

  /** Messages waiting for an ack, oldest first. */
  get pending(): OutboxItem[] {
    return this.options.outbox.pending(this.me, this.id);
  }

  get typing(): TypingUser[] {
    return [...this.typingUsers].map(([userId, t]) => ({ userId, username: t.username }));
  }

  /** Queue a message; it is sent now if connected, else when the connection returns. */
  async send(body: string): Promise<OutboxItem> {
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId: this.id, userId: this.me, body, createdAt: Date.now() };
    await this.options.outbox.add(item);
    this.typingActive = false;
    this.typingWanted = false;
    this.emit("status", { clientMsgId: item.clientMsgId, status: "pending" });
    this.emit("change", undefined);
    if (this.caughtUp) this.transmit([item]);
    return item;
  }

  /** Drop a failed message, or retry it with the same clientMsgId. */
  async retryFailed(clientMsgId: string): Promise<void> {
    const f = this.failed.get(clientMsgId);
    if (!f) return;
    this.failed.delete(clientMsgId);
    await this.options.outbox.add(f.item);
    this.emit("status", { clientMsgId, status: "pending" });
    if (this.caughtUp) this.transmit([f.item]);
  }

  discardFailed(clientMsgId: string): void {
    if (this.failed.delete(clientMsgId)) this.emit("change", undefined);
  }

  /** Load the page before the oldest loaded message. Returns the messages prepended. */
  loadOlder(limit = this.options.pageSize): Promise<ChatMessage[]> {
    if (!this.hasOlder) return Promise.resolve([]);
    this.loadingOlder ??= (async () => {
      try {
        const before = this.messages[0]?.seq ?? this.lastSeq + 1;
        const page = await this.fetchPage({ before, limit });
        if (page.epoch !== this.epoch) {
          // Rare: the stream was rebuilt under us. Start over from the newest page.
          this.resync();
          return [];
        }
        const older = page.messages.filter((m) => m.seq < before);
        this.messages = [...older, ...this.messages];
        this.hasOlder = page.nextBefore !== null;
        if (older.length) this.emit("older", older);
        this.emit("change", undefined);
        return older;
      } finally {
        this.loadingOlder = null;
      }
    })();
    return this.loadingOlder;
  }

  /** Report this user has read up to `seq` (default: everything delivered). */
  markRead(seq = this.lastSeq): void {
    if (seq <= this.wantRead) return;
    this.wantRead = seq;
    this.wantDelivered = Math.max(this.wantDelivered, seq);
    this.emit("read", { seq });
    this.scheduleReceipt();
  }

  /**
   * Call on every keystroke and with false when the input is cleared. Throttled here the way the server
   * throttles (one `active` frame per TYPING_THROTTLE_MS, reset by `active: false`): a frame the server
   * would drop is deferred to the end of the window instead, so the indicator still shows.
   */
  setTyping(active: boolean): void {
    this.typingWanted = active;
    if (!active) {
      if (this.typingDeferred !== null) clearTimeout(this.typingDeferred);
      this.typingDeferred = null;
      if (this.typingActive && this.socket.send(JSON.stringify({ type: "typing", active: false }))) this.typingSentAt = 0;
      this.typingActive = false;
      return;
    }
    const wait = this.typingSentAt + TYPING_THROTTLE_MS - Date.now();
    if (wait > 0) {
      // Either a renewal that is not due yet, or a new burst inside the server's window: send at its end.
      if (!this.typingActive && this.typingDeferred === null) {
        this.typingDeferred = setTimeout(() => {
          this.typingDeferred = null;
          if (this.typingWanted) this.setTyping(true);
        }, wait + 20);
      }
      return;
    }
    if (this.socket.send(JSON.stringify({ type: "typing", active: true }))) {
      this.typingActive = true;
      this.typingSentAt = Date.now();
    }
  }

  /** How many of the other members received / read `seq`. */
  receiptCounts(seq: number): ReceiptCounts {
    const others = (this.info?.members ?? []).filter((m) => m.userId !== this.me);
    let delivered = 0;
    let read = 0;
    for (const m of others) {
      const c = this.cursors.get(m.userId);
      if (!c) continue;
      if (c.readSeq >= seq) read++;
      if (Math.max(c.deliveredSeq, c.readSeq) >= seq) delivered++;
    }
    return { of: others.length, delivered, read };
  }

  /** pending -> sent -> delivered -> read for this user's messages (and "failed"). */
  statusOf(message: ChatMessage | OutboxItem): MessageStatus {
    if (!("seq" in message)) return this.failed.has(message.clientMsgId) ? "failed" : "pending";
    const c = this.receiptCounts(message.seq);
    if (c.of > 0 && c.read === c.of) return "read";
    if (c.of > 0 && c.delivered === c.of) return "delivered";
    return "sent";
  }

  /** For tests and "pull to refresh": drop the link as a dead network would. */
  simulateDrop(): void {
    this.socket.simulateDrop();
  }

  reconnect(): void {
    this.socket.reconnectNow();
  }

  // ------------------------------------------------------------------ stream

  private socketUrl(token: string): string {
    const url = new URL(`/v1/conversations/${encodeURIComponent(this.id)}/ws`, this.options.wsBaseUrl);
    url.searchParams.set("v", "1");
    // Read at connect time: frames still queued on the chain may raise lastSeq further; their
    // duplicates in the backlog are dropped by the seq check, and nothing after lastSeq is missed.
    url.searchParams.set("since", String(this.lastSeq));
    if (this.epoch) url.searchParams.set("epoch", this.epoch);
    return url.toString();
  }

  private async handle(raw: string): Promise<void> {
    const frame = parseConversationFrame(raw);
    if (!frame) return; // Unknown frame type from a newer server: ignore, never crash.
    switch (frame.type) {
      case "welcome":
        this.resyncing = false;
        this.caughtUp = false;
        // On reset the server sends no backlog, only `caught_up`: reload the newest page over REST first.
        if (frame.reset) await this.reload();
        else this.epoch = frame.epoch;
        return;
      case "backlog":
        for (const m of frame.messages) await this.deliver(m);
        return;
      case "caught_up":
        if (!this.resyncing) this.onCaughtUp();
        return;
      case "message":
        return this.deliver(frame.message);
      case "ack":
        return this.onAck(frame);
      case "error":
        return this.onErrorFrame(frame);
      case "members_changed":
        return this.onMembersChanged(frame.added, frame.removed, frame.updated ?? []);
      case "typing":
        return this.onTyping(frame.userId, frame.username, frame.active);
      case "receipts":
        return this.mergeCursors(frame.cursors);
      case "pong":
        return;
    }
  }

  private async deliver(m: ChatMessage): Promise<void> {
    if (this.resyncing || m.seq <= this.lastSeq) return;
    if (m.seq > this.lastSeq + 1) {
      const filled = await this.fillGap(m.seq - 1);
      if (!filled) return this.resync();
      if (m.seq <= this.lastSeq) return;
    }
    this.append(m);
  }

  private append(m: ChatMessage): void {
    this.messages.push(m);
    this.lastSeq = m.seq;
    if (m.senderId === this.me) {
      // Our own message in the stream is as good as an ack (the ack may have been lost with the link).
      this.settle(m.clientMsgId, m.seq);
    } else {
      this.typingUsers.delete(m.senderId) && this.emit("typing", this.typing);
      this.wantDelivered = Math.max(this.wantDelivered, m.seq);
      this.scheduleReceipt();
    }
    this.emit("message", m);
    this.emit("change", undefined);
  }

  /** Fetch (lastSeq, to] over REST. False when it could not (the caller reconnects instead). */
  private async fillGap(to: number): Promise<boolean> {
    try {
      while (this.lastSeq < to) {
        const page = await this.fetchPage({ after: this.lastSeq, limit: Math.min(200, to - this.lastSeq) });
        if (this.epoch && page.epoch !== this.epoch) {
          await this.reload();
          return true;
        }
        const next = page.messages.filter((m) => m.seq > this.lastSeq && m.seq <= to);
        if (next.length === 0 || next[0]!.seq !== this.lastSeq + 1) return false;
        for (const m of next) if (m.seq === this.lastSeq + 1) this.append(m);
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Throw away the link and resume from lastSeq; frames of the old link are ignored until the next welcome. */
  private resync(): void {
    this.resyncing = true;
    this.socket.reconnectNow();
  }

  /** The epoch changed (or our seq is from the future): start over from the newest page. */
  private async reload(): Promise<void> {
    const page = await this.fetchPage({ limit: this.options.pageSize });
    this.messages = [];
    this.cursors.clear();
    this.applyLatestPage(page);
    this.emit("reset", undefined);
    this.emit("change", undefined);
  }

  private applyLatestPage(page: HistoryPage): void {
    this.messages = page.messages;
    this.lastSeq = page.messages.at(-1)?.seq ?? page.lastSeq;
    this.epoch = page.epoch;
    this.hasOlder = page.nextBefore !== null;
    for (const m of page.messages) if (m.senderId === this.me) this.settle(m.clientMsgId, m.seq);
    // These messages are on this device now: report them delivered (sent once the socket is live).
    if (page.messages.some((m) => m.senderId !== this.me)) this.wantDelivered = Math.max(this.wantDelivered, this.lastSeq);
  }

  private fetchPage(query: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    return this.options.http.request<HistoryPage>("GET", `/v1/conversations/${encodeURIComponent(this.id)}/messages`, { query });
  }

  private onCaughtUp(): void {
    this.caughtUp = true;
    this.transmit(this.pending);
    this.flushReceipts();
    void this.refreshReceipts();
    this.emit("synced", { lastSeq: this.lastSeq });
    this.emit("change", undefined);
  }

  // ------------------------------------------------------------------ outbox

  /** Send items (one frame, or a batch frame for several). Unsent items stay in the outbox. */
  private transmit(items: OutboxItem[]): void {
    for (let i = 0; i < items.length; i += 50) {
      const chunk = items.slice(i, i + 50);
      const frame =
        chunk.length === 1
          ? { type: "send", clientMsgId: chunk[0]!.clientMsgId, body: chunk[0]!.body }
          : { type: "send_batch", messages: chunk.map((m) => ({ clientMsgId: m.clientMsgId, body: m.body })) };
      if (!this.socket.send(JSON.stringify(frame))) return;
      const now = Date.now();
      for (const m of chunk) this.sentAt.set(m.clientMsgId, now);
    }
  }

  private resendStale(): void {
    if (!this.caughtUp) return;
    const limit = this.options.ackTimeoutMs ?? 10_000;
    const now = Date.now();
    this.transmit(this.pending.filter((i) => now - (this.sentAt.get(i.clientMsgId) ?? 0) >= limit));
  }

  private onAck(ack: SendResult): void {
    this.settle(ack.clientMsgId, ack.seq);
  }

  /** The server holds this message: leave the outbox, report "sent". Idempotent. */
  private settle(clientMsgId: string, seq: number): void {
    this.sentAt.delete(clientMsgId);
    const wasPending = this.options.outbox.has(clientMsgId);
    if (wasPending) void this.options.outbox.remove(clientMsgId);
    if (!this.statusCache.has(clientMsgId)) {
      this.statusCache.set(clientMsgId, "sent");
      if (wasPending) this.emit("status", { clientMsgId, status: "sent", seq });
    }
  }

  private onErrorFrame(frame: { code: string; message: string; clientMsgId?: string; retryAfterMs?: number }): void {
    const item = frame.clientMsgId ? this.options.outbox.get(frame.clientMsgId) : undefined;
    if (!item) {
      // Not about a message (e.g. a frame this server does not know yet): report, keep going.
      this.emit("error", new ApiError(frame.code, frame.message, 0));
      return;
    }
    if (frame.code === "rate_limited" || frame.code === "unavailable" || frame.code === "internal_error") {
      // Retry later: pretend it was sent so that the resend timer picks it up after the wait.
      const ackTimeout = this.options.ackTimeoutMs ?? 10_000;
      this.sentAt.set(item.clientMsgId, Date.now() - ackTimeout + (frame.retryAfterMs ?? 1_000));
      return;
    }
    // The server will never accept this one (too large, invalid): stop retrying, tell the app.
    void this.options.outbox.remove(item.clientMsgId);
    const error = { code: frame.code, message: frame.message };
    this.failed.set(item.clientMsgId, { item, error });
    this.emit("status", { clientMsgId: item.clientMsgId, status: "failed", error });
    this.emit("change", undefined);
  }

  // ------------------------------------------------------------------ members, typing, receipts

  /** Apply a `members_changed` frame: joins, removals, and role changes (`updated`, absent from older servers). */
  private onMembersChanged(added: MemberRef[], removed: string[], updated: MemberRef[]): void {
    if (!this.info) return;
    const gone = new Set(removed);
    const roles = new Map(updated.map((u) => [u.userId, u.role as Member["role"]]));
    const members = this.info.members
      .filter((m) => !gone.has(m.userId))
      .map((m) => {
        const role = roles.get(m.userId);
        return role === undefined || role === m.role ? m : { ...m, role };
      });
    for (const a of added) {
      if (!members.some((m) => m.userId === a.userId)) {
        members.push({ userId: a.userId, username: a.username, role: a.role as Member["role"], joinedAt: Date.now() });
      }
    }
    this.info = { ...this.info, members };
    this.emit("members", members);
    this.emit("change", undefined);
  }

  private onTyping(userId: string, username: string, active: boolean): void {
    if (userId === this.me) return;
    // Expire on our own clock (TYPING_TTL_MS after the last renewal): immune to clock skew.
    if (active) this.typingUsers.set(userId, { username, expiresAt: Date.now() + TYPING_TTL_MS });
    else this.typingUsers.delete(userId);
    this.scheduleTypingExpiry();
    this.emit("typing", this.typing);
    this.emit("change", undefined);
  }

  private scheduleTypingExpiry(): void {
    if (this.typingTimer !== null) clearTimeout(this.typingTimer);
    this.typingTimer = null;
    if (this.typingUsers.size === 0) return;
    const next = Math.min(...[...this.typingUsers.values()].map((t) => t.expiresAt));
    this.typingTimer = setTimeout(() => {
      const now = Date.now();
      for (const [id, t] of this.typingUsers) if (t.expiresAt <= now) this.typingUsers.delete(id);
      this.scheduleTypingExpiry();
      this.emit("typing", this.typing);
      this.emit("change", undefined);
    }, Math.max(0, next - Date.now()) + 10);
  }

  /** Merge cursors monotonically (updates may arrive out of order), then report status changes. */
  mergeCursors(cursors: ReceiptCursor[]): void {
    for (const c of cursors) {
      const old = this.cursors.get(c.userId);
      this.cursors.set(c.userId, {
        userId: c.userId,
        deliveredSeq: Math.max(old?.deliveredSeq ?? 0, c.deliveredSeq, c.readSeq),
        readSeq: Math.max(old?.readSeq ?? 0, c.readSeq),
      });
    }
    let checked = 0;
    for (let i = this.messages.length - 1; i >= 0 && checked < 200; i--) {
      const m = this.messages[i]!;
      if (m.senderId !== this.me) continue;
      checked++;
      const status = this.statusOf(m);
      if (this.statusCache.get(m.clientMsgId) !== status) {
        this.statusCache.set(m.clientMsgId, status);
        this.emit("status", { clientMsgId: m.clientMsgId, status, seq: m.seq });
      }
    }
    this.emit("receipts", [...this.cursors.values()]);
    this.emit("change", undefined);
  }

  /**
   * Receipt frames only carry changes, so after (re)connecting ask where the other members are for our
   * newest message; cursors are monotonic, so that answers for every earlier message too.
   */
  private async refreshReceipts(): Promise<void> {
    let own: ChatMessage | undefined;
    for (let i = this.messages.length - 1; i >= 0 && !own; i--) if (this.messages[i]!.senderId === this.me) own = this.messages[i];
    if (!own) return;
    try {
      const { receipts } = await this.options.http.request<{ receipts: ReceiptState }>(
        "GET",
        `/v1/conversations/${encodeURIComponent(this.id)}/receipts`,
        { query: { seq: own.seq } },
      );
      const delivered = new Set(receipts.deliveredTo ?? []);
      const read = new Set(receipts.readBy ?? []);
      const cursors = [...new Set([...delivered, ...read])].map((userId) => ({
        userId,
        deliveredSeq: delivered.has(userId) || read.has(userId) ? receipts.seq : 0,
        readSeq: read.has(userId) ? receipts.seq : 0,
      }));
      if (cursors.length) this.mergeCursors(cursors);
    } catch {
      // Older server or a transient error: live receipt frames still arrive.
    }
  }

  private scheduleReceipt(): void {
    if (this.receiptTimer !== null) return;
    // Coalesce: one receipt frame per burst of messages, not one per message.
    this.receiptTimer = setTimeout(() => {
      this.receiptTimer = null;
      this.flushReceipts();
    }, RECEIPT_DEBOUNCE_MS);
  }

  private flushReceipts(): void {
    const frame: { type: "receipt"; delivered?: number; read?: number } = { type: "receipt" };
    if (this.wantDelivered > this.reportedDelivered) frame.delivered = this.wantDelivered;
    if (this.wantRead > this.reportedRead) frame.read = this.wantRead;
    if (frame.delivered === undefined && frame.read === undefined) return;
    if (!this.caughtUp || !this.socket.send(JSON.stringify(frame))) return; // sent again on caught_up
    this.reportedDelivered = Math.max(this.reportedDelivered, frame.delivered ?? 0);
    this.reportedRead = Math.max(this.reportedRead, frame.read ?? 0);
  }
}
