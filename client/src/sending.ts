// This user's messages between the outbox and the server: MessageSender owns the send frames, the
// ordering rule that keeps this sender's messages in the order they were written, the ack timeout that
// resends, settling on an ack (or the message's echo in the stream), the messages the server refused
// for good (`failed`), and the status last reported for each message.
//
// The ordering rule (docs/protocol.md section 10): at most one send frame is on the wire at a time. The
// next frame (the oldest outbox entries, batched) leaves only once every entry of the previous one was
// answered. An entry refused with a retryable error (`rate_limited` ...) pauses the outbox for the
// server's `retryAfterMs`, then sending resumes from the oldest entry, so nothing sent later can be
// stored before it. The server stores a batch's entries in order and, once it refuses one for the
// rate, refuses every later new entry of that frame too, so a frame never leaves a hole.
//
// Changes to earlier messages (edit, delete, react: docs/protocol.md 15) wait in the same outbox, in the
// order the user made them, and follow the same rule: a change is a frame of its own (a batch stops
// before it), and nothing else is on the wire while it is.
import * as v from "valibot";
import {
  DeleteFrameSchema,
  EditFrameSchema,
  MAX_BATCH_MESSAGES,
  MAX_FRAME_BYTES,
  OutgoingMessageSchema,
  ReactFrameSchema,
  utf8Length,
  type ClientFrame,
  type OutgoingMessage,
  type ServerFrame,
} from "../../src/protocol/frames";
import { isRetryableError } from "../../src/protocol/errors";
import { backoffDelay } from "./backoff";
import { attachmentIds, hasPendingFiles, isChangeItem, type Outbox, type OutboxItem } from "./outbox";

export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

export interface StatusChange {
  clientMsgId: string;
  status: MessageStatus;
  seq?: number;
  error?: { code: string; message: string };
}

interface MessageSenderOptions {
  outbox: Outbox;
  /** This conversation's unacknowledged items, oldest first. */
  pending: () => OutboxItem[];
  /** True while the socket is live (past `caught_up`): frames may be sent. */
  ready: () => boolean;
  /** False when the socket could not take the frame: the items stay unsent, in the outbox. */
  send: (frame: string) => boolean;
  /** False on a protocol-1 socket: a change in the outbox fails with `unsupported` instead of being sent. */
  supportsChanges?: () => boolean;
  ackTimeoutMs: number;
  onStatus: (change: StatusChange) => void;
}

export class MessageSender {
  /** New messages refused for good. */
  readonly failed = new Map<string, { item: OutboxItem; error: { code: string; message: string } }>();
  /** Changes (edit, delete, react) refused for good. */
  readonly failedChanges = new Map<string, { item: OutboxItem; error: { code: string; message: string } }>();
  readonly #options: MessageSenderOptions;
  /** Entries of the send frame on the wire that are not answered yet. Empty: the next frame may go. */
  readonly #inFlight = new Set<string>();
  #sentAt = 0;
  /** No frame leaves before this time (the server asked us to wait). */
  #pausedUntil = 0;
  #resumeTimer: ReturnType<typeof setTimeout> | null = null;
  /** Retryable refusals in a row without `retryAfterMs` (server errors): the backoff's attempt. */
  #serverErrors = 0;
  readonly #reported = new Map<string, MessageStatus>();

  constructor(options: MessageSenderOptions) {
    this.#options = options;
  }

  /** Send the next frame if the rule allows it: live, nothing in flight, not paused. Call after any change. */
  pump(): void {
    const { ready, pending, send } = this.#options;
    if (!ready() || this.#inFlight.size > 0) return;
    const wait = this.#pausedUntil - Date.now();
    if (wait > 0) {
      this.#resumeTimer ??= setTimeout(() => {
        this.#resumeTimer = null;
        this.pump();
      }, wait);
      return;
    }
    // A message waits for its files: the frame ends before the first entry with an upload still to do,
    // so nothing written after it is stored before it (the uploads run in the conversation, ./attachments).
    const all = pending();
    const waiting = all.findIndex(hasPendingFiles);
    const { chunk, invalid } = nextFrame(waiting < 0 ? all : all.slice(0, waiting), this.#options.supportsChanges?.() ?? true);
    // The server would refuse these for good, some without naming them (a whole batch): fail them here.
    for (const { item, error } of invalid) this.#fail(item, error);
    if (chunk.length === 0) return;
    const frame: ClientFrame =
      chunk.length === 1
        ? (changeFrame(chunk[0]!) ?? { type: "send", ...outgoing(chunk[0]!) })
        : { type: "send_batch", messages: chunk.map(outgoing) };
    if (!send(JSON.stringify(frame))) return;
    this.#sentAt = Date.now();
    for (const m of chunk) this.#inFlight.add(m.clientMsgId);
  }

  /** The socket went away: whatever was in flight is resent, from the oldest entry, once live again. */
  disconnected(): void {
    this.#inFlight.clear();
  }

  /** Called periodically: an answer overdue on a live socket means it was lost; resend from the oldest. */
  checkTimeout(): void {
    if (this.#inFlight.size > 0 && Date.now() - this.#sentAt >= this.#options.ackTimeoutMs) this.#inFlight.clear();
    this.pump();
  }

  stop(): void {
    if (this.#resumeTimer !== null) clearTimeout(this.#resumeTimer);
    this.#resumeTimer = null;
  }

  /** The server holds this message (or change): leave the outbox, report "sent". Idempotent. */
  settle(clientMsgId: string, seq: number): void {
    const { outbox } = this.#options;
    const wasPending = outbox.has(clientMsgId);
    if (wasPending) void outbox.remove(clientMsgId);
    if (!this.#reported.has(clientMsgId)) {
      this.#reported.set(clientMsgId, "sent");
      if (wasPending) this.#options.onStatus({ clientMsgId, status: "sent", seq });
    }
    this.#serverErrors = 0;
    this.#answered(clientMsgId);
  }

  /** A stored message's status as the receipts now say; reported when it changed. */
  report(clientMsgId: string, status: MessageStatus, seq: number): void {
    if (this.#reported.get(clientMsgId) === status) return;
    this.#reported.set(clientMsgId, status);
    this.#options.onStatus({ clientMsgId, status, seq });
  }

  /**
   * An error frame: "unrelated" when it is not about a pending message, "retry" when the message stays
   * in the outbox and is resent after the wait, "failed" when the server will never accept it (now in
   * `failed`). Which codes are retryable is the protocol's rule, `isRetryableError`.
   */
  refused(frame: Extract<ServerFrame, { type: "error" }>): "unrelated" | "retry" | "failed" {
    const id = frame.clientMsgId;
    const item = id ? this.#options.outbox.get(id) : undefined;
    if (!id || !item) {
      if (id) this.#answered(id);
      return "unrelated";
    }
    if (isRetryableError(frame)) {
      // Keep it, pause the outbox: nothing later may be sent before it is stored.
      const wait = frame.retryAfterMs ?? backoffDelay(this.#serverErrors++, { baseMs: 1_000, capMs: 30_000 });
      this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + wait);
      this.#answered(id);
      return "retry";
    }
    // Too large, invalid...: stop retrying, tell the app; the entries after it go on.
    this.#fail(item, { code: frame.code, message: frame.message });
    this.#answered(id);
    return "failed";
  }

  /** A message that can never be sent (e.g. a file of it was refused for good): remove it, report `failed`. */
  fail(item: OutboxItem, error: { code: string; message: string }): void {
    this.#fail(item, error);
  }

  #fail(item: OutboxItem, error: { code: string; message: string }): void {
    void this.#options.outbox.remove(item.clientMsgId);
    (isChangeItem(item) ? this.failedChanges : this.failed).set(item.clientMsgId, { item, error });
    this.#options.onStatus({ clientMsgId: item.clientMsgId, status: "failed", error });
  }

  #answered(clientMsgId: string): void {
    if (this.#inFlight.delete(clientMsgId) && this.#inFlight.size === 0) this.pump();
  }
}

type Refusal = { item: OutboxItem; error: { code: string; message: string } };

/**
 * The oldest entries that fit one frame (at most MAX_BATCH_MESSAGES, within MAX_FRAME_BYTES), and the
 * entries before the frame's end that no server would ever take (6.1 field rules, or too big for a frame).
 * A change (edit, delete, react) is a frame of its own: the oldest entry alone when it is a change, else
 * the batch ends before the first change.
 */
export function nextFrame(pending: OutboxItem[], supportsChanges = true): { chunk: OutboxItem[]; invalid: Refusal[] } {
  const chunk: OutboxItem[] = [];
  const invalid: Refusal[] = [];
  let bytes = 40; // {"type":"send_batch","messages":[]}
  for (const item of pending) {
    if (isChangeItem(item)) {
      if (chunk.length > 0) break;
      if (!supportsChanges) {
        invalid.push({ item, error: { code: "unsupported", message: "this server speaks protocol 1: messages cannot be edited, deleted or reacted to" } });
        continue;
      }
      const error = changeFrameError(item);
      if (error) {
        invalid.push({ item, error });
        continue;
      }
      chunk.push(item);
      break;
    }
    const entry = outgoing(item);
    const parsed = v.safeParse(OutgoingMessageSchema, entry);
    if (!parsed.success) {
      invalid.push({ item, error: { code: "validation_failed", message: parsed.issues[0].message } });
      continue;
    }
    // JSON escapes can grow a body (a quote takes two bytes, a control character six): count the encoding.
    const size = utf8Length(JSON.stringify(entry)) + 1;
    if (size + 30 > MAX_FRAME_BYTES) {
      invalid.push({ item, error: { code: "frame_too_large", message: `a message must fit one ${MAX_FRAME_BYTES}-byte frame` } });
      continue;
    }
    if (chunk.length >= MAX_BATCH_MESSAGES || bytes + size > MAX_FRAME_BYTES) break;
    chunk.push(item);
    bytes += size;
  }
  return { chunk, invalid };
}

/** The wire form of an entry: `{clientMsgId, body, attachments?, replyTo?, mentions?, mentionsAll?}` (6.1, 15). */
export function outgoing(item: OutboxItem): OutgoingMessage {
  const entry: OutgoingMessage = { clientMsgId: item.clientMsgId, body: item.body };
  const ids = attachmentIds(item);
  if (ids) entry.attachments = ids;
  if (item.replyTo !== undefined) entry.replyTo = item.replyTo;
  if (item.mentions?.length) entry.mentions = item.mentions;
  if (item.mentionsAll) entry.mentionsAll = true;
  return entry;
}

/** The frame of a change item (`edit`, `delete`, `react`); undefined for a new message. */
export function changeFrame(item: OutboxItem): ClientFrame | undefined {
  const c = item.change;
  if (!c) return undefined;
  switch (c.type) {
    case "edit":
      return { type: "edit", clientMsgId: item.clientMsgId, seq: c.seq, body: item.body };
    case "delete":
      return { type: "delete", clientMsgId: item.clientMsgId, seq: c.seq };
    case "react":
      return { type: "react", clientMsgId: item.clientMsgId, seq: c.seq, emoji: c.emoji, on: c.on };
  }
}

const CHANGE_SCHEMAS = { edit: EditFrameSchema, delete: DeleteFrameSchema, react: ReactFrameSchema } as const;

/** Why no server would take this change (bad seq, emoji or body), or null when it is well formed. */
export function changeFrameError(item: OutboxItem): { code: string; message: string } | null {
  const frame = changeFrame(item);
  if (!frame || !(frame.type in CHANGE_SCHEMAS)) return { code: "validation_failed", message: "not a change" };
  const parsed = v.safeParse(CHANGE_SCHEMAS[frame.type as keyof typeof CHANGE_SCHEMAS], frame);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".");
    return { code: "validation_failed", message: path ? `${path}: ${issue.message}` : issue.message };
  }
  if (utf8Length(JSON.stringify(frame)) > MAX_FRAME_BYTES) return { code: "frame_too_large", message: `a change must fit one ${MAX_FRAME_BYTES}-byte frame` };
  return null;
}

/**
 * The REST call that makes an outbox item (docs/protocol.md 4.7, 15.1-15.3), for conversations with no
 * open socket. Each is idempotent by its clientMsgId (PATCH in the body, the others in the query).
 */
export function restCall(item: OutboxItem): { method: string; path: string; body?: unknown; query?: Record<string, string> } {
  const base = `/v1/conversations/${encodeURIComponent(item.conversationId)}/messages`;
  const c = item.change;
  if (!c) return { method: "POST", path: base, body: outgoing(item) };
  const query = { clientMsgId: item.clientMsgId };
  switch (c.type) {
    case "edit":
      return { method: "PATCH", path: `${base}/${c.seq}`, body: { clientMsgId: item.clientMsgId, body: item.body } };
    case "delete":
      return { method: "DELETE", path: `${base}/${c.seq}`, query };
    case "react":
      return { method: c.on ? "PUT" : "DELETE", path: `${base}/${c.seq}/reactions/${encodeURIComponent(c.emoji)}`, query };
  }
}
