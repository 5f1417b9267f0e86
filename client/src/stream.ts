// The gapless stream of one open conversation: the rules that keep the Conversation's `messages`,
// `lastSeq`, `epoch` and `hasOlder` right (its public fields, which this module writes), the newest page
// loaded on open or after a reset, older pages (loadOlder), gap fills, and change entries applied to the
// messages held. Owns the ChangeApplier, the `before` of the next older page and the resync flag.
//
// Delivery rule: `lastSeq` is the highest seq delivered to the app, and every delivered seq is exactly
// lastSeq + 1. Anything at or below it is a duplicate (backlog overlap, replay after reconnect) and is
// dropped; anything above lastSeq + 1 is a gap, filled from REST history before going on. Frames are
// handled one at a time on a promise chain (./link), so an async gap fill cannot reorder delivery.
//
// The stream's entries are messages and change entries (protocol 2, docs/protocol.md 15). Both advance
// lastSeq; a change entry is never shown, it is applied to the message it changes (./changes), so
// `messages` holds each message in its current state and `updated` tells which one changed.
import type { HistoryPage } from "../../src/protocol/api";
import type { ChatMessage } from "../../src/protocol/frames";
import type { ReceiptCursor } from "../../src/protocol/user";
import { ChangeApplier, isChangeEntry } from "./changes";
import type { Emit } from "./events";
import type { HistoryReads } from "./history";
import type { ReceiptReporter } from "./receipts";
import type { MessageSender } from "./sending";
import type { TypingIndicators } from "./typing";

/** The Conversation's public fields the stream keeps. */
export interface StreamWindow {
  messages: ChatMessage[];
  hasOlder: boolean;
  lastSeq: number;
  epoch: string | null;
}

interface StreamOptions {
  /** The Conversation: its public fields are where the stream's state is read and written. */
  window: StreamWindow;
  userId: string;
  reads: HistoryReads;
  pageSize: number;
  /** Settled by our own entries in the stream (as good as an ack). */
  sender: MessageSender;
  /** Told what others' messages reached this device. */
  receipts: ReceiptReporter;
  /** A new message from someone ends their typing indicator. */
  typing: TypingIndicators;
  /** Every member's cursors: cleared on a reset. */
  cursors: Map<string, ReceiptCursor>;
  /** Throw away the socket and connect again at once (resuming from lastSeq). */
  reconnect: () => void;
  emit: Emit;
}

export class Stream {
  readonly #options: StreamOptions;
  readonly #window: StreamWindow;
  readonly #applier: ChangeApplier;
  #resyncing = false;
  /** `before` for the next older page: the lowest seq loaded (messages and change entries alike). */
  #nextBefore: number | null = null;
  #loadingOlder: Promise<ChatMessage[]> | null = null;

  constructor(options: StreamOptions) {
    this.#options = options;
    this.#window = options.window;
    this.#applier = new ChangeApplier(options.userId);
  }

  /** True from a resync until the next socket's `welcome`: frames of the old socket are ignored. */
  get resyncing(): boolean {
    return this.#resyncing;
  }

  /** A new socket said `welcome`: its frames count again. */
  welcomed(): void {
    this.#resyncing = false;
  }

  async deliver(m: ChatMessage): Promise<void> {
    const w = this.#window;
    if (this.#resyncing || m.seq <= w.lastSeq) return;
    if (m.seq > w.lastSeq + 1) {
      const filled = await this.#fillGap(m.seq - 1);
      if (!filled) return this.#resync();
      if (m.seq <= w.lastSeq) return;
    }
    this.#append(m);
  }

  #append(m: ChatMessage): void {
    const { userId: me, sender, receipts, typing, emit } = this.#options;
    const w = this.#window;
    w.lastSeq = m.seq;
    // Our own entry in the stream is as good as an ack (the ack may have been lost with the link).
    if (m.senderId === me) sender.settle(m.clientMsgId, m.seq);
    if (isChangeEntry(m)) {
      // Not a message: applied to the message it changes, when held (15.6).
      this.#emitUpdated(this.#applier.apply(w.messages, m));
      emit("change", undefined); // lastSeq moved, whether or not the target is held
      return;
    }
    w.messages.push(m);
    if (m.senderId !== me) {
      if (typing.remove(m.senderId)) emit("typing", typing.users);
      receipts.delivered(m.seq);
    }
    const parent = this.#applier.countReply(w.messages, m);
    emit("message", m);
    this.#emitUpdated(parent);
    emit("change", undefined);
  }

  /** A message read fresh over REST (a thread's parent, in its current state) replaces the copy held. */
  refresh(message: ChatMessage): void {
    if (this.#emitUpdated(this.#applier.replace(this.#window.messages, message))) this.#options.emit("change", undefined);
  }

  /** Emit `updated` for each; true when there was any. */
  #emitUpdated(messages: ChatMessage[]): boolean {
    for (const u of messages) this.#options.emit("updated", u);
    return messages.length > 0;
  }

  /** Fetch (lastSeq, to] over REST. False when it could not (the caller reconnects instead). */
  async #fillGap(to: number): Promise<boolean> {
    const w = this.#window;
    try {
      while (w.lastSeq < to) {
        const page = await this.#options.reads.page({ after: w.lastSeq, limit: Math.min(200, to - w.lastSeq) });
        if (w.epoch && page.epoch !== w.epoch) {
          await this.reload();
          return true;
        }
        const next = page.messages.filter((m) => m.seq > w.lastSeq && m.seq <= to);
        if (next.length === 0 || next[0]!.seq !== w.lastSeq + 1) return false;
        for (const m of next) if (m.seq === w.lastSeq + 1) this.#append(m);
      }
      return true;
    } catch {
      return false;
    }
  }

  /** Throw away the link and resume from lastSeq; frames of the old link are ignored until the next welcome. */
  #resync(): void {
    this.#resyncing = true;
    this.#options.reconnect();
  }

  /** The epoch changed (or our seq is from the future): start over from the newest page. */
  async reload(): Promise<void> {
    const { reads, pageSize, cursors, emit } = this.#options;
    const page = await reads.page({ limit: pageSize });
    this.#window.messages = [];
    cursors.clear();
    this.applyLatestPage(page);
    emit("reset", undefined);
    emit("change", undefined);
  }

  applyLatestPage(page: HistoryPage): void {
    const { userId: me, sender, receipts } = this.#options;
    const w = this.#window;
    // The page's messages are read in their current state: its own change entries are already in them.
    w.messages = page.messages.filter((m) => !isChangeEntry(m));
    this.#applier.reset();
    w.lastSeq = page.messages.at(-1)?.seq ?? page.lastSeq;
    w.epoch = page.epoch;
    w.hasOlder = page.nextBefore !== null;
    this.#nextBefore = page.nextBefore;
    for (const m of page.messages) if (m.senderId === me) sender.settle(m.clientMsgId, m.seq);
    // These messages are on this device now: report them delivered (sent once the socket is live).
    if (page.messages.some((m) => m.senderId !== me)) receipts.deliveredOnNextFlush(w.lastSeq);
  }

  /** Load the page before the oldest loaded message. Returns the messages prepended. */
  loadOlder(limit: number): Promise<ChatMessage[]> {
    const w = this.#window;
    if (!w.hasOlder) return Promise.resolve([]);
    this.#loadingOlder ??= (async () => {
      try {
        const first = w.messages[0]?.seq ?? w.lastSeq + 1;
        let older: ChatMessage[] = [];
        // A page of change entries only shows nothing: go on until a message (or the start) is reached.
        for (let pages = 0; older.length === 0 && w.hasOlder && pages < 10; pages++) {
          const before = Math.min(this.#nextBefore ?? first, first);
          const page = await this.#options.reads.page({ before, limit });
          if (page.epoch !== w.epoch) {
            // Rare: the stream was rebuilt under us. Start over from the newest page.
            this.#resync();
            return [];
          }
          // Read after every entry below `first`, these are current: their own change entries are not applied.
          older = page.messages.filter((m) => m.seq < before && !isChangeEntry(m));
          this.#nextBefore = page.nextBefore;
          w.hasOlder = page.nextBefore !== null;
        }
        w.messages = [...older, ...w.messages];
        if (older.length) this.#options.emit("older", older);
        this.#options.emit("change", undefined);
        return older;
      } finally {
        this.#loadingOlder = null;
      }
    })();
    return this.#loadingOlder;
  }
}
