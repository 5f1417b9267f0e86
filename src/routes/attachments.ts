// Attachments: upload (one request, or resumable multipart), download (Range, ETag), signed URLs.
// The bytes stream between the client and R2 through this Worker and are never buffered whole; the
// conversation object decides who may and keeps the metadata (objects/conversation/attachments.ts).
import { Hono } from "hono";
import {
  ATTACHMENT_ID_RE,
  AttachmentMetaSchema,
  conversationOfAttachment,
  CompleteMultipartBodySchema,
  INLINE_IMAGE_TYPES,
  MULTIPART_PART_BYTES,
  type AttachmentInfo,
  type AttachmentMeta,
  type MultipartUpload,
  type SignedUrl,
  type UploadedAttachment,
} from "../protocol/attachments";
import { CONVERSATION_ID_RE } from "../protocol/api";
import { parseWith } from "../protocol/frames";
import { AppError, unwrap } from "../lib/errors";
import { readJson, requireUser, type AppContext, type AppEnv } from "../lib/http";
import { spend } from "../lib/request-limits";
import { SNIFF_BYTES, bytesMatchType, servedType } from "../lib/media";
import { signAttachment, verifyAttachmentSignature } from "../lib/signed-urls";
import { extractToken, verifyAccessToken, type Identity } from "../lib/tokens";
import { attachmentKey } from "../objects/conversation/attachments";
import { conversationStub } from "../objects/shared/stubs";

/**
 * The largest body one request may carry: Cloudflare's request-body limit on the Free and Pro plans
 * (Business 200 MB, Enterprise 500 MB). Larger files go through the multipart routes.
 */
export const MAX_SINGLE_UPLOAD_BYTES = 100 * 1024 * 1024;

const INLINE = new Set<string>(INLINE_IMAGE_TYPES);

function conversationIdParam(c: AppContext): string {
  const id = c.req.param("id") ?? "";
  if (!CONVERSATION_ID_RE.test(id)) throw new AppError("not_a_member", "you are not a member of this conversation");
  return id;
}

/** An attachment id names its conversation (`at_….<conversationId>`). */
function attachmentParam(c: AppContext): { id: string; conversationId: string } {
  const id = c.req.param("aid") ?? "";
  if (!ATTACHMENT_ID_RE.test(id)) throw new AppError("not_found", "no such attachment");
  return { id, conversationId: conversationOfAttachment(id) };
}

/** `Content-Length`, required and checked before a byte of the body is read. */
function declaredLength(c: AppContext, max: number, tooLarge: string): number {
  const text = c.req.header("Content-Length");
  if (text === undefined || !/^\d{1,16}$/.test(text)) throw new AppError("length_required", "uploads need a Content-Length header");
  const n = Number(text);
  if (n < 1) throw new AppError("validation_failed", "an attachment has at least one byte");
  if (n > max) throw new AppError("attachment_too_large", tooLarge);
  return n;
}

function limitUploads(c: AppContext): Promise<void> {
  return spend(c.env.UPLOAD_LIMITER, `upload:${c.var.user.userId}`, "too many uploads; wait a minute");
}

/** The metadata of a one-request upload travels in headers (the body is the file). */
function metaFromHeaders(c: AppContext, size: number): AttachmentMeta {
  let name: string;
  try {
    name = decodeURIComponent(c.req.header("X-Attachment-Name") ?? "");
  } catch {
    throw new AppError("validation_failed", "X-Attachment-Name must be percent-encoded UTF-8");
  }
  const int = (h: string) => {
    const value = c.req.header(h);
    return value === undefined ? undefined : /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  };
  const raw = {
    name,
    size,
    contentType: c.req.header("Content-Type") ?? "application/octet-stream",
    ...(c.req.header("X-Attachment-Width") !== undefined ? { width: int("X-Attachment-Width") } : {}),
    ...(c.req.header("X-Attachment-Height") !== undefined ? { height: int("X-Attachment-Height") } : {}),
    ...(c.req.header("X-Attachment-Preview") !== undefined ? { preview: c.req.header("X-Attachment-Preview") } : {}),
  };
  const parsed = parseWith(AttachmentMetaSchema, raw);
  if (!parsed.ok) throw new AppError("validation_failed", parsed.message);
  return checkImageMeta(parsed.value);
}

/** Dimensions only for images, both or neither; a preview's bytes must be the image type it claims. */
function checkImageMeta(meta: AttachmentMeta): AttachmentMeta {
  if ((meta.width === undefined) !== (meta.height === undefined)) throw new AppError("validation_failed", "give both width and height, or neither");
  if (meta.width !== undefined && !meta.contentType.startsWith("image/")) throw new AppError("validation_failed", "width and height are for images");
  if (meta.preview !== undefined) {
    const [, type, data] = /^data:(image\/[a-z]+);base64,(.*)$/.exec(meta.preview)!;
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.from(atob(data!), (ch) => ch.charCodeAt(0));
    } catch {
      throw new AppError("validation_failed", "preview is not valid base64");
    }
    if (!bytesMatchType(type!, bytes)) throw new AppError("validation_failed", `preview bytes are not ${type}`);
  }
  return meta;
}

function publicAttachment(a: UploadedAttachment): AttachmentInfo & { state: UploadedAttachment["state"]; createdAt: number } {
  const { id, name, size, contentType, width, height, preview, state, createdAt } = a;
  return { id, name, size, contentType, ...(width !== undefined ? { width, height } : {}), ...(preview !== undefined ? { preview } : {}), state, createdAt };
}

function r2Metadata(a: UploadedAttachment, inline: boolean): R2PutOptions {
  return {
    httpMetadata: { contentType: a.contentType },
    // `inline`: the bytes were checked to be an image type shown inline. Read back by signed downloads, which ask no object.
    customMetadata: { name: a.name, conversation: a.conversationId, uploader: a.uploaderId, inline: inline ? "1" : "0" },
  };
}

/** RFC 6266: an ASCII fallback and the UTF-8 name. */
function contentDisposition(kind: "inline" | "attachment", name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export const attachmentRoutes = new Hono<AppEnv>()
  // ---- one-request upload: the body is the file, the metadata is in headers
  .post("/conversations/:id/attachments", requireUser, async (c) => {
    const conversationId = conversationIdParam(c);
    const { maxAttachmentBytes } = c.var.config;
    const max = Math.min(maxAttachmentBytes, MAX_SINGLE_UPLOAD_BYTES);
    const size = declaredLength(
      c,
      max,
      maxAttachmentBytes > max ? `one request carries at most ${max} bytes; use a multipart upload` : `attachments are limited to ${maxAttachmentBytes} bytes`,
    );
    const meta = metaFromHeaders(c, size);
    await limitUploads(c);
    const body = c.req.raw.body;
    if (!body) throw new AppError("length_required", "the request has no body");
    const stub = conversationStub(c.env, conversationId);
    const { attachment, key } = await unwrap(stub.attachmentBegin(c.var.user, meta));
    const inline = INLINE.has(meta.contentType);
    // The body goes to R2 as it arrives (its length is known from Content-Length; a shorter or longer body fails
    // the write). No JavaScript stream in between: piping through one halved throughput and reset kept-alive
    // connections locally (bench/README.md, scenario 9).
    try {
      const stored = await c.env.ATTACHMENTS.put(key, body, r2Metadata(attachment, inline));
      if (stored.size !== size) throw new Error(`stored ${stored.size} bytes of ${size}`);
    } catch (err) {
      await unwrap(stub.attachmentDiscard(c.var.user, attachment.id));
      await c.env.ATTACHMENTS.delete(key);
      console.warn(JSON.stringify({ at: "upload", conversation: conversationId, error: String(err) }));
      throw new AppError("upload_incomplete", "the upload did not complete (the body ended before Content-Length bytes, or the connection dropped)");
    }
    if (inline) await requireType(c, attachment.id, key, meta.contentType);
    const done = await unwrap(stub.attachmentUploaded(c.var.user, attachment.id));
    return c.json({ attachment: publicAttachment(done) }, 201);
  })
  // ---- multipart: create, parts, complete (resumable: parts can be re-sent, in any order)
  .post("/conversations/:id/attachments/multipart", requireUser, async (c) => {
    const conversationId = conversationIdParam(c);
    const meta = checkImageMeta(await readJson(c, AttachmentMetaSchema));
    const { maxAttachmentBytes } = c.var.config;
    if (meta.size > maxAttachmentBytes) throw new AppError("attachment_too_large", `attachments are limited to ${maxAttachmentBytes} bytes`);
    await limitUploads(c);
    const stub = conversationStub(c.env, conversationId);
    const { attachment, key } = await unwrap(stub.attachmentBegin(c.var.user, meta));
    const upload = await c.env.ATTACHMENTS.createMultipartUpload(key, r2Metadata(attachment, INLINE.has(meta.contentType)));
    await unwrap(stub.attachmentMultipart(c.var.user, attachment.id, upload.uploadId));
    const result: MultipartUpload = { attachment: publicAttachment(attachment) as UploadedAttachment, partSize: MULTIPART_PART_BYTES, partCount: Math.ceil(meta.size / MULTIPART_PART_BYTES) };
    return c.json(result, 201);
  })
  .put("/attachments/:aid/parts/:n", requireUser, async (c) => {
    const { id, conversationId } = attachmentParam(c);
    const n = Number(c.req.param("n"));
    if (!Number.isInteger(n) || n < 1) throw new AppError("validation_failed", "part numbers start at 1");
    const stub = conversationStub(c.env, conversationId);
    const { key, uploadId, size } = await multipartOf(c, id);
    const count = Math.ceil(size / MULTIPART_PART_BYTES);
    if (n > count) throw new AppError("validation_failed", `this upload has ${count} parts`);
    const expected = n < count ? MULTIPART_PART_BYTES : size - MULTIPART_PART_BYTES * (count - 1);
    const length = declaredLength(c, expected, `part ${n} has exactly ${expected} bytes`);
    if (length !== expected) throw new AppError("validation_failed", `part ${n} has exactly ${expected} bytes`);
    await limitUploads(c);
    const body = c.req.raw.body;
    if (!body) throw new AppError("length_required", "the request has no body");
    try {
      const part = await c.env.ATTACHMENTS.resumeMultipartUpload(key, uploadId).uploadPart(n, body);
      return c.json({ partNumber: part.partNumber, etag: part.etag });
    } catch (err) {
      console.warn(JSON.stringify({ at: "upload_part", conversation: conversationId, error: String(err) }));
      throw new AppError("upload_incomplete", `part ${n} did not complete; send it again`);
    }
  })
  .post("/attachments/:aid/complete", requireUser, async (c) => {
    const { id, conversationId } = attachmentParam(c);
    const { parts } = await readJson(c, CompleteMultipartBodySchema);
    const stub = conversationStub(c.env, conversationId);
    const { key, uploadId, size, contentType } = await multipartOf(c, id);
    const count = Math.ceil(size / MULTIPART_PART_BYTES);
    const numbers = parts.map((p) => p.partNumber).sort((a, b) => a - b);
    if (numbers.length !== count || numbers.some((p, i) => p !== i + 1)) throw new AppError("validation_failed", `complete with parts 1..${count}, each once`);
    let object: R2Object;
    try {
      object = await c.env.ATTACHMENTS.resumeMultipartUpload(key, uploadId).complete(parts);
    } catch (err) {
      throw new AppError("validation_failed", `the upload could not be completed (${String(err).slice(0, 200)}); send the missing parts and complete again`);
    }
    if (object.size !== size) {
      await unwrap(stub.attachmentDiscard(c.var.user, id));
      await c.env.ATTACHMENTS.delete(key);
      throw new AppError("validation_failed", `the parts hold ${object.size} bytes, not the ${size} declared; the upload was deleted`);
    }
    if (INLINE.has(contentType)) await requireType(c, id, key, contentType);
    return c.json({ attachment: publicAttachment(await unwrap(stub.attachmentUploaded(c.var.user, id))) });
  })
  // ---- take back an upload no message references (or abort a multipart upload)
  .delete("/attachments/:aid", requireUser, async (c) => {
    const { id, conversationId } = attachmentParam(c);
    const { key, uploadId } = await unwrap(conversationStub(c.env, conversationId).attachmentDiscard(c.var.user, id));
    if (uploadId) await c.env.ATTACHMENTS.resumeMultipartUpload(key, uploadId).abort().catch(() => undefined);
    await c.env.ATTACHMENTS.delete(key);
    return c.body(null, 204);
  })
  // ---- a signed URL for <img src> and links: no header needed, valid for ATTACHMENT_URL_TTL_SECONDS
  .post("/attachments/:aid/url", requireUser, async (c) => {
    const { id, conversationId } = attachmentParam(c);
    await unwrap(conversationStub(c.env, conversationId).attachmentReadable(c.var.user, id));
    const exp = Math.floor(Date.now() / 1000) + c.var.config.attachmentUrlTtl;
    const query = await signAttachment(c.env.AUTH_SECRET, id, c.var.user.userId, exp);
    const result: SignedUrl = { url: `${new URL(c.req.url).origin}/v1/attachments/${id}?${query}`, expiresAt: exp * 1000 };
    return c.json(result);
  })
  // ---- download: Authorization header (members), or a signed URL
  .get("/attachments/:aid", async (c) => {
    const { id, conversationId } = attachmentParam(c);
    const query = new URL(c.req.url).searchParams;
    let cacheControl = "private, no-cache";
    if (query.has("sig")) {
      const check = await verifyAttachmentSignature(c.env.AUTH_SECRET, id, query);
      if (!check.ok) throw new AppError("invalid_signature", check.reason === "expired" ? "this link has expired; ask for a new one" : "this link is not valid");
      const remaining = Number(query.get("exp")) - Math.floor(Date.now() / 1000);
      cacheControl = `private, max-age=${Math.max(0, Math.min(remaining, 3600))}`;
    } else {
      const token = extractToken(c.req.raw, false);
      if (!token) throw new AppError("unauthorized", "missing bearer token (or use a signed URL)");
      const user: Identity = await verifyAccessToken(c.env.AUTH_SECRET, token);
      await unwrap(conversationStub(c.env, conversationId).attachmentReadable(user, id));
    }
    const key = attachmentKey(conversationId, id);
    // One range of the form bytes=a-b, a- or -n; anything else (several ranges, another unit, bad syntax) is
    // ignored and the whole file is served, as RFC 9110 allows.
    const wanted = parseRange(c.req.header("Range"));
    let object: R2Object | R2ObjectBody | null;
    try {
      object = await c.env.ATTACHMENTS.get(key, { ...(wanted ? { range: wanted } : {}), onlyIf: c.req.raw.headers });
    } catch (err) {
      const size = wanted ? (await c.env.ATTACHMENTS.head(key))?.size : undefined;
      if (size === undefined || !unsatisfiable(wanted!, size)) throw err;
      return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${size}` } });
    }
    if (!object) throw new AppError("not_found", "no such attachment");
    if (wanted && "body" in object && unsatisfiable(wanted, object.size)) {
      await object.body.cancel();
      return new Response(null, { status: 416, headers: { "Content-Range": `bytes */${object.size}` } });
    }
    const headers = new Headers();
    const type = object.httpMetadata?.contentType ?? "application/octet-stream";
    const inline = object.customMetadata?.inline === "1" && INLINE.has(type);
    headers.set("Content-Type", inline ? type : servedType(type));
    headers.set("Content-Disposition", contentDisposition(inline ? "inline" : "attachment", object.customMetadata?.name ?? "file"));
    headers.set("ETag", object.httpEtag);
    headers.set("Cache-Control", cacheControl);
    headers.set("Accept-Ranges", "bytes");
    headers.set("X-Content-Type-Options", "nosniff");
    headers.set("Content-Security-Policy", "default-src 'none'; sandbox");
    if (!("body" in object)) return new Response(null, { status: 304, headers }); // If-None-Match matched
    const range = rangeOf(object, wanted);
    if (range) {
      headers.set("Content-Range", `bytes ${range.offset}-${range.offset + range.length - 1}/${object.size}`);
      headers.set("Content-Length", String(range.length));
      return new Response(object.body, { status: 206, headers });
    }
    headers.set("Content-Length", String(object.size));
    return new Response(object.body, { status: 200, headers });
  });

type ByteRange = { offset: number; length?: number } | { suffix: number };

/** `bytes=a-b`, `bytes=a-` or `bytes=-n`; null for anything else (served whole). */
function parseRange(header: string | undefined): ByteRange | null {
  const m = header ? /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim()) : null;
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") return Number(m[2]) > 0 ? { suffix: Number(m[2]) } : null;
  const offset = Number(m[1]);
  if (m[2] === "") return { offset };
  const last = Number(m[2]);
  return last < offset ? null : { offset, length: last - offset + 1 };
}

function unsatisfiable(range: ByteRange, size: number): boolean {
  return "offset" in range && range.offset >= size;
}

/** The range served: the request's, clamped to the object (R2 reports it on the object it returns). */
function rangeOf(object: R2Object, wanted: ByteRange | null): { offset: number; length: number } | null {
  if (!wanted) return null;
  if ("suffix" in wanted) {
    const length = Math.min(wanted.suffix, object.size);
    return { offset: object.size - length, length };
  }
  return { offset: wanted.offset, length: Math.min(wanted.length ?? Infinity, object.size - wanted.offset) };
}

/**
 * An image type shown inline must be what its bytes say (magic numbers): checked on the stored object's first
 * bytes, once all of it is in R2. A mismatch deletes it (bytes and record) and answers 415.
 */
async function requireType(c: AppContext, id: string, key: string, contentType: string): Promise<void> {
  const head = await c.env.ATTACHMENTS.get(key, { range: { offset: 0, length: SNIFF_BYTES } });
  const bytes = head ? new Uint8Array(await head.arrayBuffer()) : new Uint8Array(0);
  if (bytesMatchType(contentType, bytes)) return;
  await unwrap(conversationStub(c.env, conversationOfAttachment(id)).attachmentDiscard(c.var.user, id));
  await c.env.ATTACHMENTS.delete(key);
  throw new AppError("unsupported_media_type", `the file's bytes are not ${contentType}; the upload was deleted`);
}

/** The open multipart upload of an attachment its caller is uploading. */
async function multipartOf(c: AppContext, id: string): Promise<{ key: string; uploadId: string; size: number; contentType: string }> {
  return unwrap(conversationStub(c.env, conversationOfAttachment(id)).attachmentMultipart(c.var.user, id));
}
