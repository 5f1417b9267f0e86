// This user's messages between the outbox and the server: MessageSender owns the send frames (batched),
// the ack timeout that resends them, settling on an ack (or the message's echo in the stream), the
// messages the server refused for good (`failed`), and the status last reported for each message.
import { MAX_BATCH_MESSAGES, type ClientFrame, type ServerFrame } from "../../src/protocol/frames";
import type { Outbox, OutboxItem } from "./outbox";

export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

export interface StatusChange {
  clientMsgId: string;
  status: MessageStatus;
  seq?: number;
  error?: { code: string; message: string };
}

interface MessageSenderOptions {
  outbox: Outbox;
  /** False when the socket could not take the frame: the items stay unsent, in the outbox. */
  send: (frame: string) => boolean;
  ackTimeoutMs: number;
  onStatus: (change: StatusChange) => void;
}

export class MessageSender {
  readonly failed = new Map<string, { item: OutboxItem; error: { code: string; message: string } }>();
  readonly #options: MessageSenderOptions;
  /** When each unacknowledged item was last sent. */
  readonly #sentAt = new Map<string, number>();
  readonly #reported = new Map<string, MessageStatus>();

  constructor(options: MessageSenderOptions) {
    this.#options = options;
  }

  /** Send items (one frame, or a batch frame for several). Unsent items stay in the outbox. */
  transmit(items: OutboxItem[]): void {
    for (let i = 0; i < items.length; i += MAX_BATCH_MESSAGES) {
      const chunk = items.slice(i, i + MAX_BATCH_MESSAGES);
      const frame: ClientFrame =
        chunk.length === 1
          ? { type: "send", clientMsgId: chunk[0]!.clientMsgId, body: chunk[0]!.body }
          : { type: "send_batch", messages: chunk.map((m) => ({ clientMsgId: m.clientMsgId, body: m.body })) };
      if (!this.#options.send(JSON.stringify(frame))) return;
      const now = Date.now();
      for (const m of chunk) this.#sentAt.set(m.clientMsgId, now);
    }
  }

  /** Resend the pending items whose ack is overdue. */
  resendStale(pending: OutboxItem[]): void {
    const now = Date.now();
    this.transmit(pending.filter((i) => now - (this.#sentAt.get(i.clientMsgId) ?? 0) >= this.#options.ackTimeoutMs));
  }

  /** The server holds this message: leave the outbox, report "sent". Idempotent. */
  settle(clientMsgId: string, seq: number): void {
    const { outbox } = this.#options;
    this.#sentAt.delete(clientMsgId);
    const wasPending = outbox.has(clientMsgId);
    if (wasPending) void outbox.remove(clientMsgId);
    if (!this.#reported.has(clientMsgId)) {
      this.#reported.set(clientMsgId, "sent");
      if (wasPending) this.#options.onStatus({ clientMsgId, status: "sent", seq });
    }
  }

  /** A stored message's status as the receipts now say; reported when it changed. */
  report(clientMsgId: string, status: MessageStatus, seq: number): void {
    if (this.#reported.get(clientMsgId) === status) return;
    this.#reported.set(clientMsgId, status);
    this.#options.onStatus({ clientMsgId, status, seq });
  }

  /**
   * An error frame: "unrelated" when it is not about a pending message, "retry" when the message will be
   * resent after the server's wait, "failed" when the server will never accept it (now in `failed`).
   */
  refused(frame: Extract<ServerFrame, { type: "error" }>): "unrelated" | "retry" | "failed" {
    const item = frame.clientMsgId ? this.#options.outbox.get(frame.clientMsgId) : undefined;
    if (!item) return "unrelated";
    if (frame.code === "rate_limited" || frame.code === "unavailable" || frame.code === "internal_error") {
      // Retry later: pretend it was sent so that the resend timer picks it up after the wait.
      this.#sentAt.set(item.clientMsgId, Date.now() - this.#options.ackTimeoutMs + (frame.retryAfterMs ?? 1_000));
      return "retry";
    }
    // Too large, invalid...: stop retrying, tell the app.
    void this.#options.outbox.remove(item.clientMsgId);
    const error = { code: frame.code, message: frame.message };
    this.failed.set(item.clientMsgId, { item, error });
    this.#options.onStatus({ clientMsgId: item.clientMsgId, status: "failed", error });
    return "failed";
  }
}
