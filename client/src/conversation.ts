// One open conversation: the socket and the gapless stream. It wires this user's sends (./sending),
// receipts (./receipts) and typing (./typing) to the socket and turns their changes into events.
//
// Delivery rule: `lastSeq` is the highest seq delivered to the app, and every delivered seq is exactly
// lastSeq + 1. Anything at or below it is a duplicate (backlog overlap, replay after reconnect) and is
// dropped; anything above lastSeq + 1 is a gap, filled from REST history before going on. Frames are
// handled one at a time on a promise chain, so an async gap fill cannot reorder delivery.
//
// The stream's entries are messages and change entries (protocol 2, docs/protocol.md 15). Both advance
// lastSeq; a change entry is never shown, it is applied to the message it changes (./changes), so
// `messages` holds each message in its current state and `updated` tells which one changed.
import type { Conversation as ConversationInfo, HistoryPage, Member } from "../../src/protocol/api";
import { PROTOCOL_VERSION, type ChatMessage, type ServerFrame } from "../../src/protocol/frames";
import type { ReceiptCursor } from "../../src/protocol/user";
import { Emitter } from "./emitter";
import { parseConversationFrame } from "./frames";
import { ApiError, type Http } from "./http";
import { applyMembersChanged } from "./members";
import { hasPendingFiles, isChangeItem, newClientMsgId, type Outbox, type OutboxAttachment, type OutboxChange, type OutboxItem } from "./outbox";
import { ChangeApplier, isChangeEntry } from "./changes";
import { fallbackVersion, negotiatedVersion, supportsChanges } from "./version";
import { isRetryableUploadError, uploadItemFiles, type FileLike, type Uploads } from "./attachments";
import { backoffDelay } from "./backoff";
import type { AttachmentInfo } from "../../src/protocol/attachments";
import { fetchCursorsAt, ReceiptCursors, ReceiptReporter, type ReceiptCounts } from "./receipts";
import { changeFrameError, MessageSender, type MessageStatus, type StatusChange } from "./sending";
import { ReconnectingSocket, type ConnectionError, type ConnectionState, type SocketOptions } from "./transport";
import { TypingIndicators, TypingSender, type TypingUser } from "./typing";

export interface ConversationEvents {
  state: ConnectionState;
  /**
   * A new message, exactly once per seq, in seq order (own messages included, after their ack). Change
   * entries (edits, deletes, reactions) are not messages: they show up as `updated`.
   */
  message: ChatMessage;
  /**
   * A message held in `messages` changed: edited, deleted (now a tombstone), reacted to, replied to
   * (`replies`), or the quote of the message it replies to changed. The payload is the message as it is
   * now; it replaces the previous object in `messages` (same seq).
   */
  updated: ChatMessage;
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
  /**
   * The loaded window of history, ascending, each message in its current state. Change entries are not
   * in it (they are applied), so seqs may skip; the window has no missing message.
   */
  messages: ChatMessage[] = [];
  hasOlder = false;
  /** Highest seq delivered to the app. */
  lastSeq = 0;
  epoch: string | null = null;
  /** Every member's delivered/read cursors, as far as this device knows. */
  readonly cursors: Map<string, ReceiptCursor>;
  /** Messages the server refused for good, until retried or discarded. */
  readonly failed: Map<string, { item: OutboxItem; error: { code: string; message: string } }>;
  /** Edits, deletes and reactions the server refused for good, until retried or discarded. */
  readonly failedChanges: Map<string, { item: OutboxItem; error: { code: string; message: string } }>;
  /**
   * The protocol version of the socket: the newest this SDK speaks until a `welcome` says otherwise, 1 after
   * an older server refused version 2 (close 4426).
   */
  protocol: number = PROTOCOL_VERSION;

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
  /** The version the next socket asks for (`v=`). */
  private askVersion: number = PROTOCOL_VERSION;
  /** `before` for the next older page: the lowest seq loaded (messages and change entries alike). */
  private nextBefore: number | null = null;
  private readonly applier: ChangeApplier;
  private uploading = false;
  private closed = false;
  private wakeUploads: (() => void) | null = null;

  constructor(private readonly options: ConversationOptions) {
    super();
    this.id = options.id;
    this.socket = new ReconnectingSocket({
      ...options.socket,
      url: (token) => this.socketUrl(token),
      recoverTerminal: (code) => this.downgrade(code),
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
      pending: () => this.options.outbox.pending(this.me, this.id),
      ready: () => this.caughtUp,
      send: (frame) => this.socket.send(frame),
      supportsChanges: () => this.supportsChanges,
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      onStatus: (change) => this.emit("status", change),
    });
    this.failed = this.sender.failed;
    this.failedChanges = this.sender.failedChanges;
    this.applier = new ChangeApplier(options.userId);
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

  /** True when the server speaks protocol 2: messages can be edited, deleted and reacted to. */
  get supportsChanges(): boolean {
    return supportsChanges(this.protocol);
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
      // Every open tries the newest version again: the older server may have been replaced since.
      this.askVersion = PROTOCOL_VERSION;
      this.protocol = PROTOCOL_VERSION;
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

  /** New messages waiting for an ack, oldest first (changes to earlier messages are in `pendingChanges`). */
  get pending(): OutboxItem[] {
    return this.options.outbox.pending(this.me, this.id).filter((i) => !isChangeItem(i));
  }

  /** Edits, deletes and reactions waiting for an ack, in the order they were made (`item.change` says which). */
  get pendingChanges(): OutboxItem[] {
    return this.options.outbox.pending(this.me, this.id).filter(isChangeItem);
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
    if (options.replyTo !== undefined) item.replyTo = options.replyTo;
    if (options.mentions?.length) item.mentions = [...new Set(options.mentions)];
    if (options.mentionsAll) item.mentionsAll = true;
    await this.options.outbox.add(item);
    if (hasPendingFiles(item)) void this.runUploads();
    this.typingOut.messageSent();
    this.emit("status", { clientMsgId: item.clientMsgId, status: "pending" });
    this.emit("change", undefined);
    this.sender.pump();
    return item;
  }

  /**
   * Replace the body of one of your messages (docs/protocol.md 15.1). Queued in the outbox with your
   * messages, in the order of your calls, and sent once online; `status` reports it like a send (`sent`
   * with the seq of the change entry, or `failed`: `forbidden`, `message_deleted`, `edit_window_closed`, …).
   * The message in `messages` changes when the edit comes back in the stream (`updated`).
   * Rejects with ApiError `unsupported` on a protocol-1 server, `validation_failed` for a bad seq or body.
   */
  edit(seq: number, body: string): Promise<OutboxItem> {
    return this.queueChange({ type: "edit", seq }, body);
  }

  /** Delete a message (yours; in a group, an owner or admin may delete anyone's): it becomes a tombstone (15.2). */
  deleteMessage(seq: number): Promise<OutboxItem> {
    return this.queueChange({ type: "delete", seq });
  }

  /** Add (`on`, the default) or take back your reaction `emoji` (one emoji: `isReaction`) to a message (15.3). */
  react(seq: number, emoji: string, on = true): Promise<OutboxItem> {
    return this.queueChange({ type: "react", seq, emoji, on });
  }

  private async queueChange(change: OutboxChange, body = ""): Promise<OutboxItem> {
    if (!this.supportsChanges) {
      throw new ApiError("unsupported", `this server speaks protocol ${this.protocol}: messages cannot be edited, deleted or reacted to`, 0);
    }
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId: this.id, userId: this.me, body, createdAt: this.options.outbox.stamp(), change };
    const invalid = changeFrameError(item);
    if (invalid) throw new ApiError(invalid.code, invalid.message, 0);
    await this.options.outbox.add(item);
    this.emit("status", { clientMsgId: item.clientMsgId, status: "pending" });
    this.emit("change", undefined);
    this.sender.pump();
    return item;
  }

  /**
   * One page of a thread, oldest reply first (15.4): `after` is the `nextAfter` of the previous page. The
   * parent comes back in its current state and replaces the copy in `messages` if it is held.
   */
  async thread(seq: number, options: { after?: number; limit?: number } = {}): Promise<ThreadPage> {
    const page = await this.options.http.request<ThreadPage>("GET", `${this.messagesPath()}/${seq}/replies`, { query: options });
    // Fresher than anything held: entries still queued are older and apply to it as to any current read.
    if (this.emitUpdated(this.applier.replace(this.messages, page.parent))) this.emit("change", undefined);
    return page;
  }

  /**
   * Who reacted (15.3): without `emoji`, every emoji with up to 100 user ids each; with `emoji`, one page of
   * that emoji's users (`after`: the previous page's `nextAfter`; `limit` 1-1000).
   */
  reactionsOf(seq: number): Promise<ReactionsSummary>;
  reactionsOf(seq: number, options: { emoji: string; after?: string; limit?: number }): Promise<ReactionUsersPage>;
  reactionsOf(seq: number, options: { emoji?: string; after?: string; limit?: number }): Promise<ReactionsSummary | ReactionUsersPage>;
  reactionsOf(seq: number, options: { emoji?: string; after?: string; limit?: number } = {}): Promise<ReactionsSummary | ReactionUsersPage> {
    return this.options.http.request("GET", `${this.messagesPath()}/${seq}/reactions`, { query: options });
  }

  private messagesPath(): string {
    return `/v1/conversations/${encodeURIComponent(this.id)}/messages`;
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

  /** Drop a failed message (or change), or retry it with the same clientMsgId. */
  async retryFailed(clientMsgId: string): Promise<void> {
    const f = this.failed.get(clientMsgId) ?? this.failedChanges.get(clientMsgId);
    if (!f) return;
    this.failed.delete(clientMsgId);
    this.failedChanges.delete(clientMsgId);
    await this.options.outbox.add(f.item);
    this.emit("status", { clientMsgId, status: "pending" });
    if (hasPendingFiles(f.item)) void this.runUploads();
    this.sender.pump();
  }

  discardFailed(clientMsgId: string): void {
    if (this.failed.delete(clientMsgId) || this.failedChanges.delete(clientMsgId)) this.emit("change", undefined);
  }

  /** Load the page before the oldest loaded message. Returns the messages prepended. */
  loadOlder(limit = this.options.pageSize): Promise<ChatMessage[]> {
    if (!this.hasOlder) return Promise.resolve([]);
    this.loadingOlder ??= (async () => {
      try {
        const first = this.messages[0]?.seq ?? this.lastSeq + 1;
        let older: ChatMessage[] = [];
        // A page of change entries only shows nothing: go on until a message (or the start) is reached.
        for (let pages = 0; older.length === 0 && this.hasOlder && pages < 10; pages++) {
          const before = Math.min(this.nextBefore ?? first, first);
          const page = await this.fetchPage({ before, limit });
          if (page.epoch !== this.epoch) {
            // Rare: the stream was rebuilt under us. Start over from the newest page.
            this.resync();
            return [];
          }
          // Read after every entry below `first`, these are current: their own change entries are not applied.
          older = page.messages.filter((m) => m.seq < before && !isChangeEntry(m));
          this.nextBefore = page.nextBefore;
          this.hasOlder = page.nextBefore !== null;
        }
        this.messages = [...older, ...this.messages];
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
    if (!("seq" in message)) return this.failed.has(message.clientMsgId) || this.failedChanges.has(message.clientMsgId) ? "failed" : "pending";
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
    url.searchParams.set("v", String(this.askVersion));
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
        this.setProtocol(negotiatedVersion(this.askVersion, frame.protocol));
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
    this.lastSeq = m.seq;
    // Our own entry in the stream is as good as an ack (the ack may have been lost with the link).
    if (m.senderId === this.me) this.sender.settle(m.clientMsgId, m.seq);
    if (isChangeEntry(m)) {
      // Not a message: applied to the message it changes, when held (15.6).
      this.emitUpdated(this.applier.apply(this.messages, m));
      this.emit("change", undefined); // lastSeq moved, whether or not the target is held
      return;
    }
    this.messages.push(m);
    if (m.senderId !== this.me) {
      if (this.typingIn.remove(m.senderId)) this.emit("typing", this.typing);
      this.receipts.delivered(m.seq);
    }
    const parent = this.applier.countReply(this.messages, m);
    this.emit("message", m);
    this.emitUpdated(parent);
    this.emit("change", undefined);
  }

  /** Emit `updated` for each; true when there was any. */
  private emitUpdated(messages: ChatMessage[]): boolean {
    for (const u of messages) this.emit("updated", u);
    return messages.length > 0;
  }

  /** The server closed with `code`: true when a lower protocol version is worth trying (4426), at once. */
  private downgrade(code: number): boolean {
    const lower = fallbackVersion(this.askVersion, code);
    if (lower === null) return false;
    this.askVersion = lower;
    this.setProtocol(lower);
    return true;
  }

  private setProtocol(version: number): void {
    if (version === this.protocol) return;
    this.protocol = version;
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
    // The page's messages are read in their current state: its own change entries are already in them.
    this.messages = page.messages.filter((m) => !isChangeEntry(m));
    this.applier.reset();
    this.lastSeq = page.messages.at(-1)?.seq ?? page.lastSeq;
    this.epoch = page.epoch;
    this.hasOlder = page.nextBefore !== null;
    this.nextBefore = page.nextBefore;
    for (const m of page.messages) if (m.senderId === this.me) this.sender.settle(m.clientMsgId, m.seq);
    // These messages are on this device now: report them delivered (sent once the socket is live).
    if (page.messages.some((m) => m.senderId !== this.me)) this.receipts.deliveredOnNextFlush(this.lastSeq);
  }

  private fetchPage(query: { before?: number; after?: number; limit: number }): Promise<HistoryPage> {
    return this.options.http.request<HistoryPage>("GET", this.messagesPath(), { query });
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
  /** Reply to this earlier message (15.4): the server resolves a reply to a reply to the thread's parent. */
  replyTo?: number;
  /** User ids of members mentioned (at most 50; 15.5). */
  mentions?: string[];
  /** Mention everyone (groups: owners and admins only). */
  mentionsAll?: boolean;
}

/** A page of a thread (GET …/messages/:seq/replies). */
export interface ThreadPage {
  parent: ChatMessage;
  /** Replies, oldest first. */
  messages: ChatMessage[];
  /** Pass as `after` for the next page; null at the end. */
  nextAfter: number | null;
}

/** Every emoji on a message with up to 100 user ids each, first reacted first (GET …/reactions). */
export interface ReactionsSummary {
  reactions: Array<{ emoji: string; count: number; userIds: string[] }>;
}

/** One page of one emoji's users (GET …/reactions?emoji=). */
export interface ReactionUsersPage {
  emoji: string;
  count: number;
  userIds: string[];
  nextAfter: string | null;
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
