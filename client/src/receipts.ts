// Receipts of one conversation, both directions: ReceiptReporter owns what this device tells the server
// (delivered/read up to a seq, debounced into one `receipt` frame per burst); ReceiptCursors owns where
// every member is (their delivered/read cursors) and the counts the ticks are drawn from (receiptStatus).
import type { Member } from "../../src/protocol/api";
import type { ChatMessage, ClientFrame } from "../../src/protocol/frames";
import type { ReceiptCursor, ReceiptState } from "../../src/protocol/user";
import type { Http } from "./http";

export interface ReceiptCounts {
  /** Members other than the sender. */
  of: number;
  delivered: number;
  read: number;
}

type ReceiptFrame = Extract<ClientFrame, { type: "receipt" }>;

export const RECEIPT_DEBOUNCE_MS = 150;
/**
 * Delivery alone, in conversations above RECEIPTS_LIVE_MAX_MEMBERS members: no one is told of it there (only the
 * counts hold it), and every member's client reports it, so once per few seconds is enough.
 */
export const LARGE_DELIVERY_DEBOUNCE_MS = 3_000;

/**
 * The range a delivery report waits in large conversations: LARGE_DELIVERY_DEBOUNCE_MS spread over half to one and a
 * half times itself. Every member got the same message at the same moment, and reports timed alike would reach the
 * conversation as one burst of thousands of frames.
 */
export const LARGE_DELIVERY_SPREAD_MS = { min: LARGE_DELIVERY_DEBOUNCE_MS / 2, max: (LARGE_DELIVERY_DEBOUNCE_MS * 3) / 2 } as const;

/** A wait drawn at random from LARGE_DELIVERY_SPREAD_MS. */
export function largeDeliveryDebounceMs(): number {
  const { min, max } = LARGE_DELIVERY_SPREAD_MS;
  return Math.round(min + Math.random() * (max - min));
}

/** Reports only advances: each cursor is sent when it passes what the server was last told. */
export class ReceiptReporter {
  readonly #send: (frame: ReceiptFrame) => boolean;
  readonly #deliveryDebounceMs: () => number;
  #timerAt = 0;
  #wantDelivered = 0;
  #wantRead = 0;
  #reportedDelivered = 0;
  #reportedRead = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  /**
   * `send` returns false when the frame cannot go out now (not caught up, socket down): it is sent on a later flush.
   * `deliveryDebounceMs`: how long a delivery alone waits for more (a read always goes out after RECEIPT_DEBOUNCE_MS).
   */
  constructor(send: (frame: ReceiptFrame) => boolean, deliveryDebounceMs: () => number = () => RECEIPT_DEBOUNCE_MS) {
    this.#send = send;
    this.#deliveryDebounceMs = deliveryDebounceMs;
  }

  /** Messages up to `seq` are on this device: reported after the debounce. */
  delivered(seq: number): void {
    this.#wantDelivered = Math.max(this.#wantDelivered, seq);
    this.#schedule(this.#deliveryDebounceMs());
  }

  /** As `delivered`, but left for the next flush (the one on caught_up): for pages loaded before the socket is live. */
  deliveredOnNextFlush(seq: number): void {
    this.#wantDelivered = Math.max(this.#wantDelivered, seq);
  }

  /** The user read up to `seq` (which implies delivered). False when that is not news. */
  read(seq: number): boolean {
    if (seq <= this.#wantRead) return false;
    this.#wantRead = seq;
    this.#wantDelivered = Math.max(this.#wantDelivered, seq);
    this.#schedule(RECEIPT_DEBOUNCE_MS);
    return true;
  }

  /** Send what the server has not been told yet, if anything. */
  flush(): void {
    const frame: ReceiptFrame = { type: "receipt" };
    if (this.#wantDelivered > this.#reportedDelivered) frame.delivered = this.#wantDelivered;
    if (this.#wantRead > this.#reportedRead) frame.read = this.#wantRead;
    if (frame.delivered === undefined && frame.read === undefined) return;
    if (!this.#send(frame)) return;
    this.#reportedDelivered = Math.max(this.#reportedDelivered, frame.delivered ?? 0);
    this.#reportedRead = Math.max(this.#reportedRead, frame.read ?? 0);
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(ms: number): void {
    // Coalesce: one receipt frame per burst of messages, not one per message. A sooner deadline (a read while a
    // delivery waits) moves the frame earlier; a later one never delays it.
    const at = Date.now() + ms;
    if (this.#timer !== null) {
      if (this.#timerAt <= at) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, ms);
  }
}

/** Every member's cursors, merged monotonically: updates may arrive out of order, from either socket. */
export class ReceiptCursors {
  readonly byUser = new Map<string, ReceiptCursor>();

  merge(cursors: ReceiptCursor[]): void {
    for (const c of cursors) {
      const old = this.byUser.get(c.userId);
      this.byUser.set(c.userId, {
        userId: c.userId,
        deliveredSeq: Math.max(old?.deliveredSeq ?? 0, c.deliveredSeq, c.readSeq),
        readSeq: Math.max(old?.readSeq ?? 0, c.readSeq),
      });
    }
  }

  /** How many of `members` other than `me` received / read `seq`. */
  counts(members: readonly Member[], me: string, seq: number): ReceiptCounts {
    const others = members.filter((m) => m.userId !== me);
    let delivered = 0;
    let read = 0;
    for (const m of others) {
      const c = this.byUser.get(m.userId);
      if (!c) continue;
      if (c.readSeq >= seq) read++;
      if (Math.max(c.deliveredSeq, c.readSeq) >= seq) delivered++;
    }
    return { of: others.length, delivered, read };
  }
}

/** The tick of a stored message of this user's: read, or delivered, once every other member is there. */
export function receiptStatus(c: ReceiptCounts): "sent" | "delivered" | "read" {
  if (c.of > 0 && c.read === c.of) return "read";
  if (c.of > 0 && c.delivered === c.of) return "delivered";
  return "sent";
}

/** `me`'s newest messages in `messages` (ascending), newest first, at most `max`: the ones receipts move. */
export function* newestOwn(messages: readonly ChatMessage[], me: string, max: number): Generator<ChatMessage> {
  let found = 0;
  for (let i = messages.length - 1; i >= 0 && found < max; i--) {
    const m = messages[i]!;
    if (m.senderId !== me) continue;
    found++;
    yield m;
  }
}

/**
 * Counts for conversations above RECEIPTS_LIVE_MAX_MEMBERS members, where `receipts` frames carry only this user's
 * own cursors: they come from GET …/receipts?seq=. Cursors only move forward, so what was answered for a message
 * is a floor for every earlier one. The answers for the newest KEPT messages are kept.
 */
export class ReceiptCountFloors {
  static readonly KEPT = 20;
  readonly #bySeq = new Map<number, ReceiptCounts>();

  add(r: ReceiptState): void {
    const old = this.#bySeq.get(r.seq);
    this.#bySeq.set(r.seq, { of: r.of, delivered: Math.max(old?.delivered ?? 0, r.delivered), read: Math.max(old?.read ?? 0, r.read) });
    if (this.#bySeq.size > ReceiptCountFloors.KEPT) this.#bySeq.delete(Math.min(...this.#bySeq.keys()));
  }

  /** How many of the other members received / read `seq`, as far as is known; `of` when nothing was answered for it. */
  counts(seq: number, of: number): ReceiptCounts {
    const exact = this.#bySeq.get(seq);
    const total = exact?.of ?? of;
    let delivered = 0;
    let read = 0;
    for (const [s, c] of this.#bySeq) {
      if (s < seq) continue;
      delivered = Math.max(delivered, c.delivered);
      read = Math.max(read, c.read);
    }
    return { of: total, delivered: Math.min(delivered, total), read: Math.min(read, total) };
  }
}

export function fetchReceipts(http: Http, conversationId: string, seq: number): Promise<ReceiptState> {
  return http
    .request<{ receipts: ReceiptState }>("GET", `/v1/conversations/${encodeURIComponent(conversationId)}/receipts`, { query: { seq } })
    .then((r) => r.receipts);
}

/**
 * Where the members are for a message (GET …/receipts?seq=, with its id lists), as cursors: each member at `seq` if
 * they got / read it, else 0 (merging keeps what is already known).
 */
export function cursorsAt(receipts: ReceiptState): ReceiptCursor[] {
  const delivered = new Set(receipts.deliveredTo ?? []);
  const read = new Set(receipts.readBy ?? []);
  return [...new Set([...delivered, ...read])].map((userId) => ({
    userId,
    deliveredSeq: delivered.has(userId) || read.has(userId) ? receipts.seq : 0,
    readSeq: read.has(userId) ? receipts.seq : 0,
  }));
}
