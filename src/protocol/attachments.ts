// Attachments (images, files) on R2: request schemas and response shapes, shared by the Worker's routes
// and the client SDK. Bytes never pass through a Durable Object; metadata lives in the conversation object.
import * as v from "valibot";
import { LONE_SURROGATE, type MessageAttachment } from "./frames";

/** `at_<time+random>.<conversationId>`: the conversation is part of the id, so a download is routed without a lookup. */
export { ATTACHMENT_ID_RE, MAX_MESSAGE_ATTACHMENTS } from "./frames";

/** The conversation an attachment id names (the part after the first `.`). */
export function conversationOfAttachment(id: string): string {
  return id.slice(id.indexOf(".") + 1);
}

/** Image types shown inline (in `<img>`), and only after their bytes were checked to be that type. */
export const INLINE_IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"] as const;
/** Types a preview may have. */
export const PREVIEW_TYPES = ["image/jpeg", "image/webp", "image/png"] as const;
/** A preview's bytes, at most (decoded). */
export const MAX_PREVIEW_BYTES = 8 * 1024;
/** Width or height of an image, at most. */
export const MAX_IMAGE_DIMENSION = 20_000;
/** Unreferenced uploads an uploader may hold in one conversation at once. */
export const MAX_PENDING_UPLOADS = 50;
/** Uploads never referenced by a message are deleted after this long. */
export const UNREFERENCED_TTL_MS = 24 * 3600_000;
/** Multipart part size (R2: every part but the last is the same size, at least 5 MiB). */
export const MULTIPART_PART_BYTES = 10 * 1024 * 1024;

/** What a message (and every route) says about an attachment; `preview` is a `data:` URL made by the uploader's client. */
export type AttachmentInfo = MessageAttachment;
export type { MessageAttachment };

export interface UploadedAttachment extends AttachmentInfo {
  conversationId: string;
  uploaderId: string;
  createdAt: number;
  /** `uploading` (multipart not completed), `ready` (uploaded, not referenced yet), `used` (referenced by a message). */
  state: "uploading" | "ready" | "used";
}

const CONTENT_TYPE_RE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

export const AttachmentNameSchema = v.pipe(
  v.string("name must be a string"),
  v.trim(),
  v.minLength(1, "name must not be empty"),
  v.maxLength(255, "name must be at most 255 characters"),
  v.check((s) => !LONE_SURROGATE.test(s) && !/[\u0000-\u001f\u007f]/.test(s), "name must be well-formed Unicode without control characters"),
);
export const ContentTypeSchema = v.pipe(
  v.string("contentType must be a string"),
  v.transform((s) => s.split(";")[0]!.trim().toLowerCase()),
  v.regex(CONTENT_TYPE_RE, "contentType must be a media type like image/png"),
);
const Dimension = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_IMAGE_DIMENSION, `at most ${MAX_IMAGE_DIMENSION} pixels`));
export const PreviewSchema = v.pipe(
  v.string("preview must be a data: URL"),
  v.maxLength(64 + Math.ceil((MAX_PREVIEW_BYTES * 4) / 3) + 4, `preview must be at most ${MAX_PREVIEW_BYTES} bytes`),
  v.regex(/^data:image\/(jpeg|webp|png);base64,[A-Za-z0-9+/]+={0,2}$/, "preview must be a data:image/jpeg|webp|png;base64 URL"),
);

/** Everything but the bytes: the body of a multipart creation, and the headers of a one-request upload. */
export const AttachmentMetaSchema = v.object({
  name: AttachmentNameSchema,
  size: v.pipe(v.number("size must be a number"), v.integer(), v.minValue(1, "an attachment has at least one byte")),
  contentType: ContentTypeSchema,
  width: v.optional(Dimension),
  height: v.optional(Dimension),
  preview: v.optional(PreviewSchema),
});
export type AttachmentMeta = v.InferOutput<typeof AttachmentMetaSchema>;

export const CompleteMultipartBodySchema = v.object({
  parts: v.pipe(
    v.array(v.object({ partNumber: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), etag: v.pipe(v.string(), v.minLength(1), v.maxLength(200)) })),
    v.minLength(1, "parts must not be empty"),
    v.maxLength(10_000),
  ),
});

/** Response of a multipart creation: upload parts 1..partCount of `partSize` bytes (the last one shorter). */
export interface MultipartUpload {
  attachment: UploadedAttachment;
  partSize: number;
  partCount: number;
}

export interface SignedUrl {
  url: string;
  expiresAt: number;
}
