// This user's side of one conversation's outbox: what send(), edit(), deleteMessage() and react() queue
// (new messages and changes to earlier ones, as outbox items, with their send options), the uploads a
// queued message waits for, and retrying or discarding what the server refused for good. Owns the upload
// loop and the conversation's MessageSender (./sending: the frames, their order and the ack rule).
import type { AttachmentInfo } from "../../src/protocol/attachments";
import { isRetryableUploadError, uploadItemFiles, type FileLike, type Uploads } from "./attachments";
import { backoffDelay, type BackoffOptions } from "./backoff";
import type { Emit } from "./events";
import { ApiError } from "./http";
import { hasPendingFiles, isChangeItem, newClientMsgId, type Outbox, type OutboxAttachment, type OutboxChange, type OutboxItem } from "./outbox";
import { changeFrameError, MessageSender } from "./sending";
import { supportsChanges } from "./version";

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

interface OutgoingOptions {
  conversationId: string;
  userId: string;
  outbox: Outbox;
  uploads: Uploads;
  /** The protocol version the socket speaks: changes need 2. */
  protocol: () => number;
  /** True while the socket is live (past `caught_up`): frames may be sent. */
  ready: () => boolean;
  /** False when the socket could not take the frame. */
  send: (frame: string) => boolean;
  /** Resend an unacknowledged frame after this long on an open socket. */
  ackTimeoutMs: number;
  /** Delays between retries of an upload that failed for now (the socket's backoff options). */
  backoff: BackoffOptions | undefined;
  /** A new message was queued (the typing indicator ends). */
  messageSent: () => void;
  emit: Emit;
}

export class Outgoing {
  readonly sender: MessageSender;
  readonly #options: OutgoingOptions;
  #uploading = false;
  #closed = false;
  #wakeUploads: (() => void) | null = null;

  constructor(options: OutgoingOptions) {
    this.#options = options;
    const { outbox, userId, conversationId, protocol, emit } = options;
    this.sender = new MessageSender({
      outbox,
      pending: () => outbox.pending(userId, conversationId),
      ready: options.ready,
      send: options.send,
      supportsChanges: () => supportsChanges(protocol()),
      ackTimeoutMs: options.ackTimeoutMs,
      onStatus: (change) => emit("status", change),
    });
  }

  /** New messages waiting for an ack, oldest first. */
  get pending(): OutboxItem[] {
    const { outbox, userId, conversationId } = this.#options;
    return outbox.pending(userId, conversationId).filter((i) => !isChangeItem(i));
  }

  /** Edits, deletes and reactions waiting for an ack, in the order they were made. */
  get pendingChanges(): OutboxItem[] {
    const { outbox, userId, conversationId } = this.#options;
    return outbox.pending(userId, conversationId).filter(isChangeItem);
  }

  /** Queue a new message; sent when the messages queued before it are stored (Conversation.send). */
  async send(body: string, options: SendOptions): Promise<OutboxItem> {
    const { outbox, conversationId, userId, emit } = this.#options;
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId, userId, body, createdAt: outbox.stamp() };
    if (options.attachments?.length) item.attachments = options.attachments.map(toOutboxAttachment);
    if (options.replyTo !== undefined) item.replyTo = options.replyTo;
    if (options.mentions?.length) item.mentions = [...new Set(options.mentions)];
    if (options.mentionsAll) item.mentionsAll = true;
    await outbox.add(item);
    if (hasPendingFiles(item)) void this.runUploads();
    this.#options.messageSent();
    emit("status", { clientMsgId: item.clientMsgId, status: "pending" });
    emit("change", undefined);
    this.sender.pump();
    return item;
  }

  /** Queue an edit, a delete or a reaction (Conversation.edit, deleteMessage, react). */
  async change(change: OutboxChange, body = ""): Promise<OutboxItem> {
    const { outbox, conversationId, userId, emit } = this.#options;
    const protocol = this.#options.protocol();
    if (!supportsChanges(protocol)) {
      throw new ApiError("unsupported", `this server speaks protocol ${protocol}: messages cannot be edited, deleted or reacted to`, 0);
    }
    const item: OutboxItem = { clientMsgId: newClientMsgId(), conversationId, userId, body, createdAt: outbox.stamp(), change };
    const invalid = changeFrameError(item);
    if (invalid) throw new ApiError(invalid.code, invalid.message, 0);
    await outbox.add(item);
    emit("status", { clientMsgId: item.clientMsgId, status: "pending" });
    emit("change", undefined);
    this.sender.pump();
    return item;
  }

  /** Drop a failed message (or change), or retry it with the same clientMsgId. */
  async retryFailed(clientMsgId: string): Promise<void> {
    const { outbox, emit } = this.#options;
    const f = this.sender.failed.get(clientMsgId) ?? this.sender.failedChanges.get(clientMsgId);
    if (!f) return;
    this.sender.failed.delete(clientMsgId);
    this.sender.failedChanges.delete(clientMsgId);
    await outbox.add(f.item);
    emit("status", { clientMsgId, status: "pending" });
    if (hasPendingFiles(f.item)) void this.runUploads();
    this.sender.pump();
  }

  discardFailed(clientMsgId: string): void {
    const { emit } = this.#options;
    if (this.sender.failed.delete(clientMsgId) || this.sender.failedChanges.delete(clientMsgId)) emit("change", undefined);
  }

  /** The conversation opened (again): uploads may run. */
  opened(): void {
    this.#closed = false;
  }

  /** The conversation closed: the upload loop stops (a waiting retry ends at once). */
  closed(): void {
    this.#closed = true;
    this.#wakeUploads?.();
  }

  /**
   * Upload the files of queued messages, oldest message first, one file at a time. A message is sent once
   * its files are uploaded (MessageSender waits for it, and so do the messages after it). A retryable
   * failure (the network, `rate_limited`, ...) is retried with backoff, sooner when this is called again
   * (the socket reconnected); a final one (`attachment_too_large`, `unsupported_media_type`, ...) fails the message.
   */
  async runUploads(): Promise<void> {
    if (this.#uploading) return this.#wakeUploads?.();
    const { uploads, outbox, emit } = this.#options;
    this.#uploading = true;
    let attempt = 0;
    try {
      while (!this.#closed) {
        const item = this.pending.find(hasPendingFiles);
        if (!item) return;
        try {
          await uploadItemFiles(uploads, outbox, item, (file, p) =>
            emit("uploadProgress", { clientMsgId: item.clientMsgId, file, loaded: p.loaded, total: p.total }),
          );
          attempt = 0;
          this.sender.pump();
        } catch (err) {
          const e = err instanceof ApiError ? err : new ApiError("internal_error", String(err), 0);
          if (isRetryableUploadError(e)) {
            emit("error", e);
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, e.retryAfterMs ?? backoffDelay(attempt++, { baseMs: 1_000, capMs: 30_000, ...this.#options.backoff }));
              this.#wakeUploads = () => {
                clearTimeout(t);
                resolve();
              };
            });
            this.#wakeUploads = null;
            continue;
          }
          this.sender.fail(item, { code: e.code, message: e.message });
          emit("change", undefined);
          this.sender.pump();
        }
      }
    } finally {
      this.#uploading = false;
    }
  }
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
