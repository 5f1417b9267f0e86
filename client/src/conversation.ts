// One open conversation: its public API, its lifecycle (open, close) and what each frame of its socket
// means. It wires the modules that own the rest and turns their changes into events (./events): the socket
// and the version it asks for (./link), the gapless stream and the messages held (./stream), this user's
// queued messages and changes and their uploads (./outgoing; the frames: ./sending), the REST reads
// (./history), receipts (./receipts) and typing (./typing).
import type { Conversation as ConversationInfo } from "../../src/protocol/api";
import { PROTOCOL_VERSION, type ChatMessage, type ServerFrame } from "../../src/protocol/frames";
import { RECEIPTS_LIVE_MAX_MEMBERS, type ReceiptCursor } from "../../src/protocol/user";
import { Emitter } from "./emitter";
import type { ConversationEvents, Emit } from "./events";
import { parseConversationFrame } from "./frames";
import { HistoryReads, type ReactionsSummary, type ReactionUsersPage, type ThreadPage } from "./history";
import { ApiError, type Http } from "./http";
import { ConversationLink } from "./link";
import { applyMembersChanged } from "./members";
import { Outgoing, type SendOptions } from "./outgoing";
import type { Outbox, OutboxItem } from "./outbox";
import { negotiatedVersion, supportsChanges } from "./version";
import type { Uploads } from "./attachments";
import {
  cursorsAt,
  fetchReceipts,
  LARGE_DELIVERY_SPREAD_MS,
  largeDeliveryDebounceMs,
  newestOwn,
  RECEIPT_DEBOUNCE_MS,
  ReceiptCountFloors,
  ReceiptCursors,
  ReceiptReporter,
  receiptStatus,
  type ReceiptCounts,
} from "./receipts";
import type { MessageSender, MessageStatus } from "./sending";
import { Stream } from "./stream";
import type { ConnectionState, ReconnectingSocket, SocketOptions } from "./transport";
import { TypingIndicators, TypingSender, type TypingUser } from "./typing";

/**
 * Large conversations: how long after our message was acknowledged its counts are asked for. Members online report
 * its delivery at most LARGE_DELIVERY_SPREAD_MS.max after they got it, and the server applies those reports within
 * 250 ms: asked later than that, the counts hold every member who was online.
 */
const LARGE_COUNTS_REFRESH_MS = LARGE_DELIVERY_SPREAD_MS.max + 500;

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
  /** True while the client's user socket is started: it carries presence, so this socket asks for `presence=0`. */
  userSocketStarted?: () => boolean;
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

  private readonly link: ConversationLink;
  private readonly socket: ReconnectingSocket;
  private opening: Promise<this> | null = null;
  private caughtUp = false;
  private readonly reads: HistoryReads;
  private readonly stream: Stream;
  private readonly sender: MessageSender;
  private readonly outgoing: Outgoing;
  private readonly receipts: ReceiptReporter;
  private readonly receiptCursors = new ReceiptCursors();
  private readonly countFloors = new ReceiptCountFloors();
  private countsTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly typingOut: TypingSender;
  private readonly typingIn: TypingIndicators;
  private resendTimer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: ConversationOptions) {
    super();
    this.id = options.id;
    this.link = new ConversationLink({
      conversationId: options.id,
      wsBaseUrl: options.wsBaseUrl,
      socket: options.socket,
      position: this,
      presenceElsewhere: options.userSocketStarted ?? (() => false),
      downgraded: (version) => this.setProtocol(version),
      handle: (raw) => this.handle(raw),
      failed: (err) => this.emit("error", err),
    });
    this.socket = this.link.socket;
    this.socket.on("state", (s) => {
      if (s !== "open") {
        this.caughtUp = false;
        this.sender.disconnected();
      }
      this.emit("state", s);
      this.emit("change", undefined);
    });
    this.socket.on("error", (e) => this.emit("error", e));
    const emit: Emit = (event, payload) => this.emit(event, payload);
    this.outgoing = new Outgoing({
      conversationId: options.id,
      userId: options.userId,
      outbox: options.outbox,
      uploads: options.uploads,
      protocol: () => this.protocol,
      ready: () => this.caughtUp,
      send: (frame) => this.socket.send(frame),
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      backoff: options.socket.backoff,
      messageSent: () => this.typingOut.messageSent(),
      emit,
    });
    this.sender = this.outgoing.sender;
    this.failed = this.sender.failed;
    this.failedChanges = this.sender.failedChanges;
    this.cursors = this.receiptCursors.byUser;
    this.receipts = new ReceiptReporter(
      (frame) => this.caughtUp && this.socket.send(JSON.stringify(frame)),
      () => (this.isLarge() ? largeDeliveryDebounceMs() : RECEIPT_DEBOUNCE_MS),
    );
    this.typingOut = new TypingSender((frame) => this.socket.send(frame));
    this.typingIn = new TypingIndicators(() => this.emitTyping());
    this.reads = new HistoryReads(options.http, options.id);
    this.stream = new Stream({
      window: this,
      userId: options.userId,
      reads: this.reads,
      pageSize: options.pageSize,
      sender: this.sender,
      receipts: this.receipts,
      typing: this.typingIn,
      cursors: this.cursors,
      reconnect: () => this.socket.reconnectNow(),
      emit,
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
      const [{ conversation }, page] = await Promise.all([this.reads.info(), this.reads.page({ limit: this.options.pageSize })]);
      this.info = conversation;
      this.stream.applyLatestPage(page);
      this.outgoing.opened();
      // Every open tries the newest version again: the older server may have been replaced since.
      this.link.askNewest();
      this.protocol = PROTOCOL_VERSION;
      this.socket.start();
      void this.outgoing.runUploads();
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
    this.outgoing.closed();
    this.socket.stop();
    if (this.resendTimer !== null) clearInterval(this.resendTimer);
    this.resendTimer = null;
    this.sender.stop();
    this.receipts.stop();
    if (this.countsTimer !== null) clearTimeout(this.countsTimer);
    this.countsTimer = null;
    this.typingIn.stop();
    this.typingOut.stop();
    this.opening = null;
  }

  /** New messages waiting for an ack, oldest first (changes to earlier messages are in `pendingChanges`). */
  get pending(): OutboxItem[] {
    return this.outgoing.pending;
  }

  /** Edits, deletes and reactions waiting for an ack, in the order they were made (`item.change` says which). */
  get pendingChanges(): OutboxItem[] {
    return this.outgoing.pendingChanges;
  }

  get typing(): TypingUser[] {
    return this.typingIn.users;
  }

  /**
   * Queue a message; it is sent when the messages queued before it are stored (at once if none are
   * waiting and the socket is live), so this sender's messages keep the order of the send() calls.
   */
  send(body: string, options: SendOptions = {}): Promise<OutboxItem> {
    return this.outgoing.send(body, options);
  }

  /**
   * Replace the body of one of your messages (docs/protocol.md 15.1). Queued in the outbox with your
   * messages, in the order of your calls, and sent once online; `status` reports it like a send (`sent`
   * with the seq of the change entry, or `failed`: `forbidden`, `message_deleted`, `edit_window_closed`, …).
   * The message in `messages` changes when the edit comes back in the stream (`updated`).
   * Rejects with ApiError `unsupported` on a protocol-1 server, `validation_failed` for a bad seq or body.
   */
  edit(seq: number, body: string): Promise<OutboxItem> {
    return this.outgoing.change({ type: "edit", seq }, body);
  }

  /** Delete a message (yours; in a group, an owner or admin may delete anyone's): it becomes a tombstone (15.2). */
  deleteMessage(seq: number): Promise<OutboxItem> {
    return this.outgoing.change({ type: "delete", seq });
  }

  /** Add (`on`, the default) or take back your reaction `emoji` (one emoji: `isReaction`) to a message (15.3). */
  react(seq: number, emoji: string, on = true): Promise<OutboxItem> {
    return this.outgoing.change({ type: "react", seq, emoji, on });
  }

  /**
   * One page of a thread, oldest reply first (15.4): `after` is the `nextAfter` of the previous page. The
   * parent comes back in its current state and replaces the copy in `messages` if it is held.
   */
  async thread(seq: number, options: { after?: number; limit?: number } = {}): Promise<ThreadPage> {
    const page = await this.reads.thread(seq, options);
    // Fresher than anything held: entries still queued are older and apply to it as to any current read.
    this.stream.refresh(page.parent);
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
    return this.reads.reactions(seq, options);
  }

  /** Drop a failed message (or change), or retry it with the same clientMsgId. */
  retryFailed(clientMsgId: string): Promise<void> {
    return this.outgoing.retryFailed(clientMsgId);
  }

  discardFailed(clientMsgId: string): void {
    this.outgoing.discardFailed(clientMsgId);
  }

  /** Load the page before the oldest loaded message. Returns the messages prepended. */
  loadOlder(limit = this.options.pageSize): Promise<ChatMessage[]> {
    return this.stream.loadOlder(limit);
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

  /**
   * How many of the other members received / read `seq`. Above RECEIPTS_LIVE_MAX_MEMBERS members these are the
   * counts last fetched (after caught_up, a few seconds after each message you send, and on `refreshReceipts()`).
   */
  receiptCounts(seq: number): ReceiptCounts {
    const members = this.info?.members ?? [];
    if (this.isLarge()) return this.countFloors.counts(seq, Math.max(0, members.length - 1));
    return this.receiptCursors.counts(members, this.me, seq);
  }

  /** pending -> sent -> delivered -> read for this user's messages (and "failed"). */
  statusOf(message: ChatMessage | OutboxItem): MessageStatus {
    if (!("seq" in message)) return this.failed.has(message.clientMsgId) || this.failedChanges.has(message.clientMsgId) ? "failed" : "pending";
    return receiptStatus(this.receiptCounts(message.seq));
  }

  /** For tests and "pull to refresh": drop the link as a dead network would. */
  simulateDrop(): void {
    this.socket.simulateDrop();
  }

  reconnect(): void {
    this.socket.reconnectNow();
  }

  // ------------------------------------------------------------------ frames

  private async handle(raw: string): Promise<void> {
    const frame = parseConversationFrame(raw);
    if (!frame) return; // Unknown frame type from a newer server: ignore, never crash.
    switch (frame.type) {
      case "welcome":
        this.setProtocol(negotiatedVersion(this.link.asked, frame.protocol));
        this.stream.welcomed();
        this.caughtUp = false;
        this.sender.disconnected(); // a new socket: nothing of ours is in flight on it
        // On reset the server sends no backlog, only `caught_up`: reload the newest page over REST first.
        if (frame.reset) await this.stream.reload();
        else this.epoch = frame.epoch;
        return;
      case "backlog":
        for (const m of frame.messages) await this.stream.deliver(m);
        return;
      case "caught_up":
        if (!this.stream.resyncing) this.onCaughtUp();
        return;
      case "message":
        return this.stream.deliver(frame.message);
      case "ack":
        this.scheduleCountsRefresh();
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

  private setProtocol(version: number): void {
    if (version === this.protocol) return;
    this.protocol = version;
    this.emit("change", undefined);
  }

  private onCaughtUp(): void {
    this.caughtUp = true;
    void this.outgoing.runUploads(); // the network is back: retry a waiting upload now
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
    this.receiptsChanged();
  }

  /** Report the status changes of our newest messages, then tell the app. */
  private receiptsChanged(): void {
    for (const m of newestOwn(this.messages, this.me, 200)) this.sender.report(m.clientMsgId, this.statusOf(m), m.seq);
    this.emit("receipts", [...this.cursors.values()]);
    this.emit("change", undefined);
  }

  /**
   * Ask where the other members are for our newest message; cursors are monotonic, so that answers for every
   * earlier message too. Done after (re)connecting, as receipt frames only carry changes; in conversations above
   * RECEIPTS_LIVE_MAX_MEMBERS members, where frames carry only our own cursors, also a few seconds after each message
   * we send. Call it to bring the counts up to date (a "message info" view).
   */
  async refreshReceipts(): Promise<void> {
    const [own] = newestOwn(this.messages, this.me, 1);
    if (!own) return;
    try {
      const receipts = await fetchReceipts(this.options.http, this.id, own.seq);
      if (!this.isLarge()) {
        const cursors = cursorsAt(receipts);
        if (cursors.length) this.mergeCursors(cursors);
        return;
      }
      this.countFloors.add(receipts);
      this.receiptsChanged();
    } catch {
      // A transient error: the next refresh asks again (and small conversations' frames keep coming).
    }
  }

  private isLarge(): boolean {
    return (this.info?.members.length ?? 0) > RECEIPTS_LIVE_MAX_MEMBERS;
  }

  /** Large conversations: counts for the message just sent, once members had a moment to get it. */
  private scheduleCountsRefresh(): void {
    if (!this.isLarge() || this.countsTimer !== null) return;
    this.countsTimer = setTimeout(() => {
      this.countsTimer = null;
      void this.refreshReceipts();
    }, LARGE_COUNTS_REFRESH_MS);
  }
}
