// Signed download URLs: browsers cannot put a header on <img src>, and an export's download link goes to
// someone who holds no token. The signature is an HMAC over (resource id, user id, expiry) with a key derived
// from AUTH_SECRET and the URL's purpose, so checking one needs no D1 read and no call to an object, and a
// signature made for one purpose (an attachment) is worthless for another (an export).
import { base64url } from "./ids";
import { secretEquals } from "./http";

/** What a URL unlocks; each purpose has its own key. */
export type UrlPurpose = "attachment" | "export";

/** The key labels. The attachment label predates exports: changing it would void every attachment URL in use. */
const LABEL: Record<UrlPurpose, string> = { attachment: "edgechat attachment urls", export: "edgechat export urls" };

async function key(secret: string, purpose: UrlPurpose): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(`${LABEL[purpose]}\u0000${secret}`), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function signature(secret: string, purpose: UrlPurpose, id: string, userId: string, exp: number): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await key(secret, purpose), new TextEncoder().encode(`${id}\n${userId}\n${exp}`));
  return base64url(new Uint8Array(mac));
}

/** Query string (`u`, `exp`, `sig`) that lets `userId` fetch `id` for `purpose` until `exp` (seconds). */
export async function signUrl(secret: string, purpose: UrlPurpose, id: string, userId: string, exp: number): Promise<string> {
  const params = new URLSearchParams({ u: userId, exp: String(exp), sig: await signature(secret, purpose, id, userId, exp) });
  return params.toString();
}

export type SignatureCheck = { ok: true; userId: string } | { ok: false; reason: "expired" | "invalid" };

export async function verifyUrl(secret: string, purpose: UrlPurpose, id: string, query: URLSearchParams, nowSeconds = Date.now() / 1000): Promise<SignatureCheck> {
  const userId = query.get("u") ?? "";
  const expText = query.get("exp") ?? "";
  const sig = query.get("sig") ?? "";
  if (!userId || !/^\d{1,12}$/.test(expText) || !sig) return { ok: false, reason: "invalid" };
  const exp = Number(expText);
  if (!(await secretEquals(sig, await signature(secret, purpose, id, userId, exp)))) return { ok: false, reason: "invalid" };
  if (exp <= nowSeconds) return { ok: false, reason: "expired" };
  return { ok: true, userId };
}

/** Query string that lets `userId` download `attachmentId` until `exp` (seconds). */
export function signAttachment(secret: string, attachmentId: string, userId: string, exp: number): Promise<string> {
  return signUrl(secret, "attachment", attachmentId, userId, exp);
}

export function verifyAttachmentSignature(secret: string, attachmentId: string, query: URLSearchParams, nowSeconds = Date.now() / 1000): Promise<SignatureCheck> {
  return verifyUrl(secret, "attachment", attachmentId, query, nowSeconds);
}
