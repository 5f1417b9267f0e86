// Short-lived signed download URLs: browsers cannot put a header on <img src>. The signature is an HMAC
// over (attachment id, user id, expiry) with a key derived from AUTH_SECRET, so checking one needs no D1
// read and no call to the conversation object.
import { base64url } from "./ids";
import { safeEqual } from "./http";

async function key(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(`edgechat attachment urls\u0000${secret}`), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function signature(secret: string, attachmentId: string, userId: string, exp: number): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await key(secret), new TextEncoder().encode(`${attachmentId}\n${userId}\n${exp}`));
  return base64url(new Uint8Array(mac));
}

/** Query string (`u`, `exp`, `sig`) that lets `userId` download `attachmentId` until `exp` (seconds). */
export async function signAttachment(secret: string, attachmentId: string, userId: string, exp: number): Promise<string> {
  const params = new URLSearchParams({ u: userId, exp: String(exp), sig: await signature(secret, attachmentId, userId, exp) });
  return params.toString();
}

export type SignatureCheck = { ok: true; userId: string } | { ok: false; reason: "expired" | "invalid" };

export async function verifyAttachmentSignature(secret: string, attachmentId: string, query: URLSearchParams, nowSeconds = Date.now() / 1000): Promise<SignatureCheck> {
  const userId = query.get("u") ?? "";
  const expText = query.get("exp") ?? "";
  const sig = query.get("sig") ?? "";
  if (!userId || !/^\d{1,12}$/.test(expText) || !sig) return { ok: false, reason: "invalid" };
  const exp = Number(expText);
  if (!safeEqual(sig, await signature(secret, attachmentId, userId, exp))) return { ok: false, reason: "invalid" };
  if (exp <= nowSeconds) return { ok: false, reason: "expired" };
  return { ok: true, userId };
}
