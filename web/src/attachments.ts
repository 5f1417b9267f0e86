// Files chosen in the composer: what the browser measures before an upload (an image's size and a
// small JPEG preview, protocol 13.1), and signed URLs for showing and downloading attachments.
import type { NewAttachment, SignedUrl } from "../../client/src/index";
import { client } from "./app";

const PREVIEW_MAX_PX = 64;
const PREVIEW_MAX_CHARS = 8 * 1024;

/** Name, type and, for an image the browser can decode, width, height and a preview of at most 8 KiB. */
export async function prepareFile(file: File): Promise<NewAttachment> {
  const base: NewAttachment = { file, name: file.name || "file", contentType: file.type || "application/octet-stream" };
  if (!file.type.startsWith("image/")) return base;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return base; // not decodable here (HEIC, a broken file): sent as a plain file
  }
  try {
    const { width, height } = bitmap;
    const scale = Math.min(1, PREVIEW_MAX_PX / Math.max(width, height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    canvas.getContext("2d")?.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    let preview: string | undefined;
    for (const quality of [0.7, 0.5, 0.3]) {
      const url = canvas.toDataURL("image/jpeg", quality);
      if (url.startsWith("data:image/jpeg") && url.length <= PREVIEW_MAX_CHARS) {
        preview = url;
        break;
      }
    }
    return { ...base, width, height, ...(preview ? { preview } : {}) };
  } finally {
    bitmap.close();
  }
}

// The SDK caches each URL until a minute before it expires; this keeps the promise so one attachment
// shown in several places (the list, the lightbox) asks once, and asks again after expiry.
const urls = new Map<string, Promise<SignedUrl>>();

export function signedUrl(attachmentId: string): Promise<string> {
  let p = urls.get(attachmentId);
  if (!p) {
    p = client.attachmentUrl(attachmentId);
    urls.set(attachmentId, p);
    p.then(
      (s) => setTimeout(() => urls.delete(attachmentId), Math.max(0, s.expiresAt - Date.now() - 60_000)),
      () => urls.delete(attachmentId),
    );
  }
  return p.then((s) => s.url);
}
