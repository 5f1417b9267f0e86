// Refresh tokens: opaque, stored as SHA-256 hashes, rotated on every use. Presenting a token that was
// already rotated means it leaked (or a client raced itself): the whole family is revoked.
import { newId, randomToken, sha256Hex } from "../lib/ids";

export interface IssuedRefreshToken {
  token: string;
  familyId: string;
}

export async function issueRefreshToken(
  db: D1Database,
  userId: string,
  ttlSeconds: number,
  familyId = newId("rf"),
): Promise<IssuedRefreshToken> {
  const token = `rt_${randomToken(32)}`;
  const now = Date.now();
  await db
    .prepare(
      "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(newId("rt"), userId, familyId, await sha256Hex(token), now, now + ttlSeconds * 1000)
    .run();
  return { token, familyId };
}

export type RotateResult = { ok: true; userId: string; familyId: string } | { ok: false; reason: "unknown" | "expired" | "revoked" | "reused" };

/** Mark `token` as used, atomically. Exactly one concurrent caller can win; a loser revokes the family. */
export async function consumeRefreshToken(db: D1Database, token: string): Promise<RotateResult> {
  const hash = await sha256Hex(token);
  const row = await db
    .prepare(
      "SELECT id, user_id AS userId, family_id AS familyId, expires_at AS expiresAt, rotated_at AS rotatedAt, revoked_at AS revokedAt FROM refresh_tokens WHERE token_hash = ?",
    )
    .bind(hash)
    .first<{ id: string; userId: string; familyId: string; expiresAt: number; rotatedAt: number | null; revokedAt: number | null }>();
  if (!row) return { ok: false, reason: "unknown" };
  if (row.revokedAt !== null) return { ok: false, reason: "revoked" };
  const now = Date.now();
  if (row.rotatedAt !== null) {
    await revokeFamily(db, row.familyId);
    return { ok: false, reason: "reused" };
  }
  if (row.expiresAt <= now) return { ok: false, reason: "expired" };
  const claimed = await db
    .prepare("UPDATE refresh_tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL AND revoked_at IS NULL")
    .bind(now, row.id)
    .run();
  if (claimed.meta.changes !== 1) {
    await revokeFamily(db, row.familyId);
    return { ok: false, reason: "reused" };
  }
  return { ok: true, userId: row.userId, familyId: row.familyId };
}

async function revokeFamily(db: D1Database, familyId: string): Promise<void> {
  await db
    .prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL")
    .bind(Date.now(), familyId)
    .run();
}
