// One open conversation: the socket and the gapless stream. It wires this user's sends (./sending),
// receipts (./receipts) and typing (./typing) to the socket and turns their changes into events.
//
// Delivery rule: `lastSeq` is the highest seq delivered to the app, and every delivered seq is exactly
// lastSeq + 1. Anything at or below it is a duplicate (backlog overlap, replay after reconnect) and is
// dropped; anything above lastSeq + 1 is a gap, filled from REST history before going on. Frames are
// handled one at a time on a promise chain, so an async gap fill cannot reorder delivery.
import type { Conversation as ConversationInfo, HistoryPage, Member } from "../../src/protocol/api";
import type { ChatMessage, ServerFrame } from "../../src/protocol/frames";
import type { ReceiptCursor } from "../../src/protocol/user";
import { Emitter } from "./emitter";
import { parseConversationFrame } from "./frames";
import { ApiError, type Http } from "./http";
import { applyMembersChanged } from "./members";
import { hasPendingFiles, newClientMsgId, type Outbox, type OutboxAttachment, type OutboxItem } from "./outbox";
import { isRetryableUploadError, uploadItemFiles, type FileLike, type Uploads } from "./attachments";
import { backoffDelay } from "./backoff";
import type { AttachmentInfo } from "../../src/protocol/attachments";
import { fetchCursorsAt, ReceiptCursors, ReceiptReporter, type ReceiptCounts } from "./receipts";
import { MessageSender, type MessageStatus, type StatusChange } from "./sending";
import { ReconnectingSocket, type ConnectionError, type ConnectionState, type SocketOptions } from "./transport";
import { TypingIndicators, TypingSender, type TypingUser } from "./typing";

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

interface ConversationOptions {
  id: string;
  userId: string;
  http: Http;
  outbox: Outbox;
  wsBaseUrl: string;
  socket: Omit<SocketOptions, "url">;
  pageSize: number;
  uploads: Uploads;
  /** Resend an unacknowledged frame after this long on an open socket. Default 10 000. */
  ackTimeoutMs?: number;
}

export class Conversation extends Emitter<ConversationEvents> {
  readonly id: string;
  info: ConversationInfo | null = null;
  /** The loaded window of history, ascending and contiguous. */
  messages: ChatMessage[] = [];
  hasOlder = false;
  /** Highest seq delivered to the app. */
  lastSeq = 0;
  epoch: string | null = null;
  /** Every member's delivered/read cursors, as far as this device knows. */
  readonly cursors: Map<string, ReceiptCursor>;
  /** Messages the server refused for good, until retried or discarded. */
  readonly failed: Map<string, { item: OutboxItem; error: { code: string; message: string } }>;

  private readonly socket: ReconnectingSocket;
  private chain: Promise<void> = Promise.resolve();
  private opening: Promise<this> | null = null;
  private loadingOlder: Promise<ChatMessage[]> | null = null;
  private resyncing = false;
  private caughtUp = false;
  private readonly sender: MessageSender;
  private readonly receipts: ReceiptReporter;
  private readonly receiptCursors = new ReceiptCursors();
  private readonly typingOut: TypingSender;
  private readonly typingIn: TypingIndicators;
  private resendTimer: ReturnType<typeof setInterval> | null = null;
  private uploading = false;
  private closed = false;
  private wakeUploads: (() => void) | null = null;

  constructor(private readonly options: ConversationOptions) {
    super();
    this.id = options.id;
    this.socket = new ReconnectingSocket({
      ...options.socket,
      url: (token) => this.socketUrl(token),
    });
    this.socket.on("state", (s) => {
      if (s !== "open") {
        this.caughtUp = false;
        this.sender.disconnected();
      }
      this.emit("state", s);
      this.emit("change", undefined);
    });
    this.socket.on("error", (e) => this.emit("error", e));
    this.sender = new MessageSender({
      outbox: options.outbox,
      pending: () => this.pending,
      ready: () => this.caughtUp,
      send: (frame) => this.socket.send(frame),
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      onStatus: (change) => this.emit("status", change),
    });
    this.failed = this.sender.failed;
    this.cursors = this.receiptCursors.byUser;
    this.receipts = new ReceiptReporter((frame) => this.caughtUp && this.socket.send(JSON.stringify(frame)));
    this.typingOut = new TypingSender((frame) => this.socket.send(frame));
    this.typingIn = new TypingIndicators(() => this.emitTyping());
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
      this.closed = false;
      this.socket.start();
      void this.runUploads();
      this.resendTimer = setInterval(() => this.sender.checkTimeout(), 2_000);
      this.emit("change", undefined);
      return this;
    })();
    this.opening.catch(() => {
      this.opening = null;
    });
    return this.opening;
  }

  close(): void {
    this.closed = true;
    this.wakeUploads?.();
    this.socket.stop();
    if (this.resendTimer !== null) clearInterval(this.resendTimer);
    this.resendTimer = null;
    this.sender.stop();
    this.receipts.stop();
    this.typingIn.stop();
    this.typingOut.stop();
    this.opening = null;
  }

  /** Messages waiting for an ack, oldest first. */
  get pending(): OutboxItem[] {
    return this.options.outbox.pending(this.me, this.id);
  }

  get typing(): TypingUser[] {
    return this.typingIn.users;
  }

  /**
   * Queue a message; it is sent when the messages queued before it are stored (at once if none are
   * waiting and the socket is live), so this sender's messages keep the order of the send() calls.
   */
  async send(body: string, options: SendOptions = {}): Promise<OutboxItem> {
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId: this.id, userId: this.me, body, createdAt: this.options.outbox.stamp() };
    if (options.attachments?.length) item.attachments = options.attachments.map(toOutboxAttachment);
    await this.options.outbox.add(item);
    if (hasPendingFiles(item)) void this.runUploads();
    this.typingOut.messageSent();
    this.emit("status", { clientMsgId: item.clientMsgId, status: "pending" });
    this.emit("change", undefined);
    this.sender.pump();
    return item;
  }

  /**
   * Upload the files of queued messages, oldest message first, one file at a time. A message is sent once
   * its files are uploaded (MessageSender waits for it, and so do the messages after it). A retryable
   * failure (the network, `rate_limited`, ...) is retried with backoff, sooner when the socket reconnects;
   * a final one (`attachment_too_large`, `unsupported_media_type`, ...) fails the message.
   */
  private async runUploads(): Promise<void> {
    if (this.uploading) return this.wakeUploads?.();
    this.uploading = true;
    let attempt = 0;
    try {
      while (!this.closed) {
        const item = this.pending.find(hasPendingFiles);
        if (!item) return;
        try {
          await uploadItemFiles(this.options.uploads, this.options.outbox, item);
          attempt = 0;
          this.sender.pump();
        } catch (err) {
          const e = err instanceof ApiError ? err : new ApiError("internal_error", String(err), 0);
          if (isRetryableUploadError(e)) {
            this.emit("error", e);
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, e.retryAfterMs ?? backoffDelay(attempt++, { baseMs: 1_000, capMs: 30_000, ...this.options.socket.backoff }));
              this.wakeUploads = () => {
                clearTimeout(t);
                resolve();
              };
            });
            this.wakeUploads = null;
            continue;
          }
          this.sender.fail(item, { code: e.code, message: e.message });
          this.emit("change", undefined);
          this.sender.pump();
        }
      }
    } finally {
      this.uploading = false;
    }
  }

  /** Drop a failed message, or retry it with the same clientMsgId. */
  async retryFailed(clientMsgId: string): Promise<void> {
    const f = this.failed.get(clientMsgId);
    if (!f) return;
    this.failed.delete(clientMsgId);
    await this.options.outbox.add(f.item);
    this.emit("status", { clientMsgId, status: "pending" });
    if (hasPendingFiles(f.item)) void this.runUploads();
    this.sender.pump();
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
    if (this.receipts.read(seq)) this.emit("read", { seq });
  }

  /**
   * Call on every keystroke and with false when the input is cleared. Throttled here the way the server
   * throttles (one `active` frame per TYPING_THROTTLE_MS, reset by `active: false`): a frame the server
   * would drop is deferred to the end of the window instead, so the indicator still shows.
   */
  setTyping(active: boolean): void {
    this.typingOut.set(active);
  }

  /** How many of the other members received / read `seq`. */
  receiptCounts(seq: number): ReceiptCounts {
    return this.receiptCursors.counts(this.info?.members ?? [], this.me, seq);
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
        this.sender.disconnected(); // a new socket: nothing of ours is in flight on it
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
        return this.sender.settle(frame.clientMsgId, frame.seq);
      case "error":
        return this.onErrorFrame(frame);
      case "members_changed":
        return this.onMembersChanged(frame);
      case "typing":
        if (frame.userId === this.me) return;
        this.typingIn.apply(frame.userId, frame.username, frame.active);
        return this.emitTyping();
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
      this.sender.settle(m.clientMsgId, m.seq);
    } else {
      if (this.typingIn.remove(m.senderId)) this.emit("typing", this.typing);
      this.receipts.delivered(m.seq);
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
    for (const m of page.messages) if (m.senderId === this.me) this.sender.settle(m.clientMsgId, m.seq);
    // These messages are on this device now: report them delivered (sent once the socket is live).
    if (page.messages.some((m) => m.senderId !== this.me)) this.receipts.deliveredOnNextFlush(this.lastSeq);
  }

  private fetchPage(query: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    return this.options.http.request<HistoryPage>("GET", `/v1/conversations/${encodeURIComponent(this.id)}/messages`, { query });
  }

  private onCaughtUp(): void {
    this.caughtUp = true;
    void this.runUploads(); // the network is back: retry a waiting upload now
    this.sender.pump();
    this.receipts.flush();
    void this.refreshReceipts();
    this.emit("synced", { lastSeq: this.lastSeq });
    this.emit("change", undefined);
  }

  // ------------------------------------------------------------------ errors, members, typing, receipts

  private onErrorFrame(frame: Extract<ServerFrame, { type: "error" }>): void {
    const outcome = this.sender.refused(frame);
    // Not about a message (e.g. a frame this server does not know yet): report, keep going.
    if (outcome === "unrelated") this.emit("error", new ApiError(frame.code, frame.message, 0));
    else if (outcome === "failed") this.emit("change", undefined);
  }

  private onMembersChanged(frame: Extract<ServerFrame, { type: "members_changed" }>): void {
    if (!this.info) return;
    const members = applyMembersChanged(this.info.members, frame);
    this.info = { ...this.info, members };
    this.emit("members", members);
    this.emit("change", undefined);
  }

  private emitTyping(): void {
    this.emit("typing", this.typing);
    this.emit("change", undefined);
  }

  /** Merge cursors monotonically (updates may arrive out of order), then report status changes. */
  mergeCursors(cursors: ReceiptCursor[]): void {
    this.receiptCursors.merge(cursors);
    let checked = 0;
    for (let i = this.messages.length - 1; i >= 0 && checked < 200; i--) {
      const m = this.messages[i]!;
      if (m.senderId !== this.me) continue;
      checked++;
      this.sender.report(m.clientMsgId, this.statusOf(m), m.seq);
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
      const cursors = await fetchCursorsAt(this.options.http, this.id, own.seq);
      if (cursors.length) this.mergeCursors(cursors);
    } catch {
      // A transient error: live receipt frames still arrive.
    }
  }
}

/** A file to upload with a message: the file and what `upload()` takes. */
export interface NewAttachment {
  file: FileLike;
  name: string;
  contentType?: string;
  width?: number;
  height?: number;
  preview?: string;
}

export interface SendOptions {
  /**
   * Up to 10: ids or attachment objects of completed uploads (`chat.upload()`), or files to upload first
   * (`{ file, name, contentType? }`): the message then waits in the outbox for its uploads.
   */
  attachments?: Array<string | AttachmentInfo | NewAttachment>;
}

function toOutboxAttachment(a: string | AttachmentInfo | NewAttachment): OutboxAttachment {
  if (typeof a === "string") return { id: a };
  if ("file" in a) {
    const { file, ...meta } = a;
    const blob =
      file instanceof Blob ? file : new Blob([Uint8Array.from(file)], a.contentType ? { type: a.contentType } : {});
    return { ...meta, file: blob };
  }
  return { id: a.id };
}
