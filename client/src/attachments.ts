// Attachments (protocol.md 13): uploads in one request or in resumable multipart, signed URLs, downloads.
//
// A multipart upload keeps its state (attachment id, the etag of every answered part) in memory, keyed by
// the attachment id, until it completes or is deleted: after a dropped connection `resume()` sends only the
// parts that have no answer, then completes. A part refused with a retryable error (`isRetryableError`), or
// lost to the network, is sent again after a backoff, `retry.attempts` times; a final refusal rejects the
// upload with an UploadError carrying the server's code.
import {
  MULTIPART_PART_BYTES,
  type AttachmentInfo,
  type MultipartUpload,
  type SignedUrl,
  type UploadedAttachment,
} from "../../src/protocol/attachments";
import { isRetryableError } from "../../src/protocol/errors";
import { backoffDelay } from "./backoff";
import { ApiError, type Http } from "./http";
import { isPendingFile, type Outbox, type OutboxItem } from "./outbox";

export type FileLike = Blob | Uint8Array;

export interface UploadProgress {
  /**
   * Bytes sent so far. In browsers (XMLHttpRequest) they count as they go out; elsewhere a request's bytes count
   * when the server answers it (a one-request upload: 0, then all of them; multipart: part by part).
   */
  loaded: number;
  total: number;
}

/** What a client keeps of an open multipart upload to resume it, even in another process (outbox slots keep it). */
export interface MultipartRecord {
  attachmentId: string;
  conversationId: string;
  size: number;
  partSize: number;
  partCount: number;
  /** [partNumber, etag] of every part the server answered. */
  etags: [number, string][];
}

export interface UploadOptions {
  /** The file name shown to members (display only). */
  name: string;
  /** Media type; default the Blob's `type`, else application/octet-stream. */
  contentType?: string;
  width?: number;
  height?: number;
  /** A `data:image/jpeg|webp|png;base64,…` preview of at most 8 KiB (protocol 13.1). */
  preview?: string;
  onProgress?: (progress: UploadProgress) => void;
  /** Aborting stops the upload; a multipart upload keeps its state and can be resumed. */
  signal?: AbortSignal;
  /** Force (true) or forbid (false) multipart; default: multipart above `multipartThresholdBytes`. */
  multipart?: boolean;
  /** A multipart upload's state after it was created and after each answered part (to persist it). */
  onState?: (record: MultipartRecord) => void;
}

export interface UploadRetryOptions {
  /** Tries per request (a part, a creation, the completion, a one-request upload). Default 5. */
  attempts?: number;
  baseMs?: number;
  capMs?: number;
}

export interface UploadsOptions {
  /** Files above this go multipart. Default 8 MiB. */
  multipartThresholdBytes?: number;
  /** Parts on the wire at once, 1-4. Default 3. */
  partConcurrency?: number;
  retry?: UploadRetryOptions;
}

/** An upload that failed. `resumable`: a multipart upload whose state is kept (`resumeUpload(attachmentId, file)`). */
export class UploadError extends ApiError {
  constructor(
    cause: ApiError,
    readonly attachmentId: string | null,
    readonly resumable: boolean,
  ) {
    super(cause.code, cause.message, cause.status, cause.retryAfterMs);
    this.name = "UploadError";
  }
}

/** What is kept of an open multipart upload. */
export interface MultipartState {
  attachmentId: string;
  conversationId: string;
  size: number;
  partSize: number;
  partCount: number;
  /** partNumber -> etag, for every part the server answered. */
  etags: Map<number, string>;
}

/** True for a failure worth trying again: the network, or a retryable protocol error. */
export function isRetryableUploadError(err: unknown): boolean {
  return err instanceof ApiError && err.code !== "aborted" && (err.code === "network_error" || isRetryableError(err));
}

function toBlob(file: FileLike, contentType?: string): Blob {
  if (file instanceof Blob) return file;
  const copy = new Uint8Array(file.byteLength);
  copy.set(file);
  return new Blob([copy.buffer], contentType ? { type: contentType } : {});
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ApiError("aborted", "the upload was aborted", 0));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ApiError("aborted", "the upload was aborted", 0));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const aid = (id: string) => encodeURIComponent(id);

export class Uploads {
  /** Open multipart uploads by attachment id (in memory: lost with the page / process). */
  readonly multipart = new Map<string, MultipartState>();
  private readonly urls = new Map<string, SignedUrl>();
  private readonly threshold: number;
  private readonly concurrency: number;
  private readonly retry: Required<UploadRetryOptions>;

  constructor(
    private readonly http: Http,
    options: UploadsOptions = {},
  ) {
    this.threshold = options.multipartThresholdBytes ?? 8 * 1024 * 1024;
    this.concurrency = Math.min(4, Math.max(1, options.partConcurrency ?? 3));
    this.retry = { attempts: 5, baseMs: 500, capMs: 15_000, ...options.retry };
  }

  /** Upload a file into a conversation; resolves with the attachment (`state: "ready"`) to reference in a message. */
  async upload(conversationId: string, file: FileLike, options: UploadOptions): Promise<UploadedAttachment> {
    const blob = toBlob(file, options.contentType);
    const contentType = options.contentType || blob.type || "application/octet-stream";
    const meta = {
      name: options.name,
      size: blob.size,
      contentType,
      ...(options.width !== undefined ? { width: options.width } : {}),
      ...(options.height !== undefined ? { height: options.height } : {}),
      ...(options.preview !== undefined ? { preview: options.preview } : {}),
    };
    const multipart = options.multipart ?? blob.size > this.threshold;
    if (!multipart) {
      options.onProgress?.({ loaded: 0, total: blob.size });
      const onUploadProgress = options.onProgress ? (sent: number) => options.onProgress!({ loaded: Math.min(sent, blob.size), total: blob.size }) : undefined;
      const headers: Record<string, string> = { "Content-Type": contentType, "X-Attachment-Name": encodeURIComponent(options.name) };
      if (meta.width !== undefined) headers["X-Attachment-Width"] = String(meta.width);
      if (meta.height !== undefined) headers["X-Attachment-Height"] = String(meta.height);
      if (meta.preview !== undefined) headers["X-Attachment-Preview"] = meta.preview;
      try {
        const res = await this.withRetry(options.signal, () =>
          this.http.raw("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/attachments`, { rawBody: blob, headers, signal: options.signal, onUploadProgress }),
        );
        const { attachment } = (await res.json()) as { attachment: UploadedAttachment };
        options.onProgress?.({ loaded: blob.size, total: blob.size });
        return attachment;
      } catch (err) {
        throw new UploadError(asApiError(err), null, false);
      }
    }
    let created: MultipartUpload;
    try {
      created = await this.withRetry(options.signal, () =>
        this.http.request<MultipartUpload>("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/attachments/multipart`, { body: meta }),
      );
    } catch (err) {
      throw new UploadError(asApiError(err), null, false);
    }
    const state: MultipartState = {
      attachmentId: created.attachment.id,
      conversationId,
      size: blob.size,
      partSize: created.partSize,
      partCount: created.partCount,
      etags: new Map(),
    };
    this.multipart.set(state.attachmentId, state);
    options.onState?.(recordOf(state));
    return this.sendParts(state, blob, options);
  }

  /** Take over a multipart upload recorded elsewhere (another process, before a reload), to `resume` it. */
  adopt(record: MultipartRecord): void {
    if (this.multipart.has(record.attachmentId)) return;
    this.multipart.set(record.attachmentId, { ...record, etags: new Map(record.etags) });
  }

  /** Continue a multipart upload that failed or was aborted: only the parts without an answer are sent. */
  resume(attachmentId: string, file: FileLike, options: Pick<UploadOptions, "onProgress" | "signal" | "onState"> = {}): Promise<UploadedAttachment> {
    const state = this.multipart.get(attachmentId);
    if (!state) return Promise.reject(new UploadError(new ApiError("not_found", "no open upload with this id in this client", 0), attachmentId, false));
    const blob = toBlob(file);
    if (blob.size !== state.size) return Promise.reject(new UploadError(new ApiError("validation_failed", `the file has ${blob.size} bytes, the upload ${state.size}`, 0), attachmentId, true));
    return this.sendParts(state, blob, options);
  }

  /** Take back an upload no message references (an open multipart upload is aborted). */
  async delete(attachmentId: string): Promise<void> {
    await this.http.request<void>("DELETE", `/v1/attachments/${aid(attachmentId)}`);
    this.multipart.delete(attachmentId);
    this.urls.delete(attachmentId);
  }

  /** A signed URL for `<img src>` or a link; the same one is returned until a minute before it expires. */
  async url(attachmentId: string): Promise<SignedUrl> {
    const cached = this.urls.get(attachmentId);
    if (cached && cached.expiresAt - Date.now() > 60_000) return cached;
    const signed = await this.http.request<SignedUrl>("POST", `/v1/attachments/${aid(attachmentId)}/url`);
    this.urls.set(attachmentId, signed);
    return signed;
  }

  /** The file, with the bearer token (the Response: stream it, or `.blob()` / `.arrayBuffer()`). */
  download(attachmentId: string, options: { range?: { start: number; end?: number }; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.range) headers.Range = `bytes=${options.range.start}-${options.range.end ?? ""}`;
    return this.http.raw("GET", `/v1/attachments/${aid(attachmentId)}`, { headers, signal: options.signal });
  }

  private async sendParts(state: MultipartState, blob: Blob, options: Pick<UploadOptions, "onProgress" | "signal" | "onState">): Promise<UploadedAttachment> {
    const partBytes = (n: number) => Math.min(state.partSize, state.size - (n - 1) * state.partSize);
    let loaded = 0;
    for (const n of state.etags.keys()) loaded += partBytes(n);
    /** Bytes of parts on the wire, as they go out (browsers). */
    const inFlight = new Map<number, number>();
    const report = () => {
      let sending = 0;
      for (const b of inFlight.values()) sending += b;
      options.onProgress?.({ loaded: loaded + sending, total: state.size });
    };
    report();
    const todo: number[] = [];
    for (let n = 1; n <= state.partCount; n++) if (!state.etags.has(n)) todo.push(n);
    let failure: unknown = null;
    const worker = async () => {
      for (let n = todo.shift(); n !== undefined && failure === null; n = todo.shift()) {
        const part = n;
        try {
          const start = (part - 1) * state.partSize;
          const body = blob.slice(start, start + partBytes(part));
          const answer = await this.withRetry(options.signal, () =>
            this.http.request<{ partNumber: number; etag: string }>("PUT", `/v1/attachments/${aid(state.attachmentId)}/parts/${part}`, {
              rawBody: body,
              signal: options.signal,
              ...(options.onProgress
                ? {
                    onUploadProgress: (sent: number) => {
                      inFlight.set(part, Math.min(sent, partBytes(part)));
                      report();
                    },
                  }
                : {}),
            }),
          );
          state.etags.set(part, answer.etag);
          inFlight.delete(part);
          loaded += partBytes(part);
          report();
          options.onState?.(recordOf(state));
        } catch (err) {
          inFlight.delete(part);
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, todo.length) }, worker));
    if (failure !== null) {
      const err = asApiError(failure);
      // A final refusal of a part (e.g. 415 for an image whose bytes are not its type) ends the upload server-side.
      const resumable = err.code === "aborted" || isRetryableUploadError(err);
      if (!resumable) this.multipart.delete(state.attachmentId);
      throw new UploadError(err, state.attachmentId, resumable);
    }
    try {
      const parts = [...state.etags].sort((a, b) => a[0] - b[0]).map(([partNumber, etag]) => ({ partNumber, etag }));
      const { attachment } = await this.withRetry(options.signal, () =>
        this.http.request<{ attachment: UploadedAttachment }>("POST", `/v1/attachments/${aid(state.attachmentId)}/complete`, { body: { parts } }),
      );
      this.multipart.delete(state.attachmentId);
      return attachment;
    } catch (err) {
      const e = asApiError(err);
      const resumable = e.code === "aborted" || isRetryableUploadError(e);
      if (!resumable) this.multipart.delete(state.attachmentId);
      throw new UploadError(e, state.attachmentId, resumable);
    }
  }

  private async withRetry<T>(signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new ApiError("aborted", "the upload was aborted", 0);
      try {
        return await run();
      } catch (err) {
        if (!isRetryableUploadError(err) || attempt + 1 >= this.retry.attempts) throw err;
        const e = err as ApiError;
        await sleep(e.retryAfterMs ?? backoffDelay(attempt, { baseMs: this.retry.baseMs, capMs: this.retry.capMs }), signal);
      }
    }
  }
}

function recordOf(state: MultipartState): MultipartRecord {
  return { attachmentId: state.attachmentId, conversationId: state.conversationId, size: state.size, partSize: state.partSize, partCount: state.partCount, etags: [...state.etags] };
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError("internal_error", String(err), 0);
}

export type { AttachmentInfo, MultipartUpload, SignedUrl, UploadedAttachment };
export { MULTIPART_PART_BYTES };

/**
 * Upload the files of a queued message, in order, replacing each slot with `{ id }` in the outbox as its
 * upload completes (so a reload does not upload it again). A multipart upload records its state in the slot
 * (`multipart`: the attachment id and the etag of every answered part) as it goes, so the next call, in this
 * process or after a reload, resumes it and sends only the parts that have no answer. Throws the first
 * failure (an UploadError). `onProgress` reports each file's bytes (its index in the item's attachments).
 */
export async function uploadItemFiles(
  uploads: Uploads,
  outbox: Outbox,
  item: OutboxItem,
  onProgress?: (file: number, progress: UploadProgress) => void,
): Promise<OutboxItem> {
  let current = item;
  for (let i = 0; i < (current.attachments?.length ?? 0); i++) {
    const slot = current.attachments![i]!;
    if (!isPendingFile(slot)) continue;
    const progress = onProgress ? (p: UploadProgress) => onProgress(i, p) : undefined;
    // Persist the multipart state with the item: a reload resumes instead of starting over.
    const onState = (record: MultipartRecord) => {
      slot.multipart = record;
      slot.attachmentId = record.attachmentId;
      if (outbox.has(current.clientMsgId)) void outbox.add(current);
    };
    if (slot.multipart) uploads.adopt(slot.multipart);
    let done: UploadedAttachment;
    try {
      done =
        slot.attachmentId && uploads.multipart.has(slot.attachmentId)
          ? await uploads.resume(slot.attachmentId, slot.file, { onState, ...(progress ? { onProgress: progress } : {}) })
          : await uploads.upload(current.conversationId, slot.file, {
              name: slot.name,
              onState,
              ...(progress ? { onProgress: progress } : {}),
              ...(slot.contentType !== undefined ? { contentType: slot.contentType } : {}),
              ...(slot.width !== undefined ? { width: slot.width, height: slot.height } : {}),
              ...(slot.preview !== undefined ? { preview: slot.preview } : {}),
            });
    } catch (err) {
      if (err instanceof UploadError && err.resumable && err.attachmentId) slot.attachmentId = err.attachmentId;
      else if (err instanceof UploadError && !err.resumable) delete slot.multipart;
      throw err;
    }
    const attachments = current.attachments!.map((a, j) => (j === i ? { id: done.id } : a));
    current = { ...current, attachments };
    // Only if still queued (it may have been discarded meanwhile).
    if (outbox.has(current.clientMsgId)) await outbox.add(current);
  }
  return current;
}
