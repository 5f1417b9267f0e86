// Access tokens are short-lived HS256 JWTs (hono/jwt). Refresh tokens are opaque random strings,
// stored only as SHA-256 hashes in D1 and rotated on every use (see routes/auth.ts).
import { sign, verify } from "hono/jwt";
import { AppError } from "./errors";

export interface Identity {
  userId: string;
  username: string;
  /** Access token expiry, seconds since the epoch. */
  exp: number;
}

export async function mintAccessToken(
  secret: string,
  user: { id: string; username: string },
  ttlSeconds: number,
  now = Math.floor(Date.now() / 1000),
): Promise<string> {
  return sign({ sub: user.id, name: user.username, typ: "access", iat: now, exp: now + ttlSeconds }, secret, "HS256");
}

/** Verify an access token. Throws `token_expired` or `unauthorized` (never says which part was wrong). */
export async function verifyAccessToken(secret: string, token: string): Promise<Identity> {
  let payload: Record<string, unknown>;
  try {
    // Signature first (exp unchecked), so a forged token is "unauthorized" even when it claims to be expired.
    payload = await verify(token, secret, { alg: "HS256", exp: false });
  } catch {
    throw new AppError("unauthorized", "invalid access token");
  }
  const { sub, name, typ, exp } = payload;
  if (typ !== "access" || typeof sub !== "string" || typeof name !== "string" || typeof exp !== "number") {
    throw new AppError("unauthorized", "invalid access token");
  }
  if (exp * 1000 <= Date.now()) throw new AppError("token_expired", "access token expired; refresh it");
  return { userId: sub, username: name, exp };
}

/** Pull a bearer token from `Authorization`, or for WebSocket upgrades also from `?token=` or the subprotocol list. */
export function extractToken(req: Request, allowWebSocketCarriers: boolean): string | undefined {
  const auth = req.headers.get("Authorization");
  if (auth?.startsWith("Bearer ")) return auth.slice(7).trim();
  if (!allowWebSocketCarriers) return undefined;
  const fromQuery = new URL(req.url).searchParams.get("token");
  if (fromQuery) return fromQuery;
  const protocols = req.headers.get("Sec-WebSocket-Protocol");
  const bearer = protocols?.split(",").map((p) => p.trim()).find((p) => p.startsWith("bearer."));
  return bearer?.slice("bearer.".length);
}
