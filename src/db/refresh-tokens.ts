// Refresh tokens: opaque, stored as SHA-256 hashes, rotated on every use. Presenting a token that was
// already rotated means it leaked (or a client raced itself): the whole family is revoked.
//
// The race that matters: two requests present the same token at once. The winner's successor token must
// exist before anyone can see the old token as used, or the loser's revoke could run before the insert and
// miss it. So the claim and the insert of the successor are one D1 batch (one transaction), and the insert
// only happens if the claim changed a row. Every token is thus created either by a login or together with
// the claim of its parent, and a revoke, one statement over the family, catches all of them.
import { newId, randomToken, sha256Hex } from "../lib/ids";

export interface IssuedRefreshToken {
  token: string;
  familyId: string;
}

export interface StoredRefreshToken {
  id: string;
  userId: string;
  familyId: string;
  expiresAt: number;
  rotatedAt: number | null;
  revokedAt: number | null;
}

const INSERT_COLUMNS = "(id, user_id, family_id, token_hash, created_at, expires_at)";

async function freshToken(): Promise<{ token: string; hash: string }> {
  const token = `rt_${randomToken(32)}`;
  return { token, hash: await sha256Hex(token) };
}

/** A new family (sign-up, login). */
export async function issueRefreshToken(db: D1Database, userId: string, ttlSeconds: number): Promise<IssuedRefreshToken> {
  const { token, hash } = await freshToken();
  const familyId = newId("rf");
  const now = Date.now();
  await db
    .prepare(`INSERT INTO refresh_tokens ${INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?)`)
    .bind(newId("rt"), userId, familyId, hash, now, now + ttlSeconds * 1000)
    .run();
  return { token, familyId };
}

/** The stored row of a presented token, or null if it was never issued. */
export async function findRefreshToken(db: D1Database, token: string): Promise<StoredRefreshToken | null> {
  return db
    .prepare(
      "SELECT id, user_id AS userId, family_id AS familyId, expires_at AS expiresAt, rotated_at AS rotatedAt, revoked_at AS revokedAt FROM refresh_tokens WHERE token_hash = ?",
    )
    .bind(await sha256Hex(token))
    .first<StoredRefreshToken>();
}

export type RotateResult =
  | { ok: true; userId: string; familyId: string; token: string }
  | { ok: false; reason: "expired" | "revoked" | "reused" };

/**
 * Exchange `presented` for its successor. Exactly one concurrent caller can win; a caller that finds the
 * token already used revokes the family, the winner's successor included.
 */
export async function rotateRefreshToken(db: D1Database, presented: StoredRefreshToken, ttlSeconds: number): Promise<RotateResult> {
  const early = refusal(presented, Date.now());
  if (early) return settle(db, presented, early);

  const { token, hash } = await freshToken();
  const now = Date.now();
  const [claim] = await db.batch([
    // Claim the presented token, unless it is used, revoked or expired, or its family was revoked.
    db
      .prepare(
        `UPDATE refresh_tokens SET rotated_at = ?1 WHERE id = ?2 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ?1
           AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = ?3 AND revoked_at IS NOT NULL)`,
      )
      .bind(now, presented.id, presented.familyId),
    // The successor, in the same transaction, only if the claim above changed its row.
    db
      .prepare(`INSERT INTO refresh_tokens ${INSERT_COLUMNS} SELECT ?, ?, ?, ?, ?, ? WHERE changes() = 1`)
      .bind(newId("rt"), presented.userId, presented.familyId, hash, now, now + ttlSeconds * 1000),
  ]);
  if (claim!.meta.changes === 1) return { ok: true, userId: presented.userId, familyId: presented.familyId, token };

  // Lost: someone used, revoked or let the token expire in between. Read what happened and act on it.
  const current = await db
    .prepare("SELECT id, user_id AS userId, family_id AS familyId, expires_at AS expiresAt, rotated_at AS rotatedAt, revoked_at AS revokedAt FROM refresh_tokens WHERE id = ?")
    .bind(presented.id)
    .first<StoredRefreshToken>();
  return settle(db, presented, (current && refusal(current, now)) ?? "revoked");
}

function refusal(row: StoredRefreshToken, now: number): "expired" | "revoked" | "reused" | null {
  if (row.revokedAt !== null) return "revoked";
  if (row.rotatedAt !== null) return "reused";
  if (row.expiresAt <= now) return "expired";
  return null;
}

async function settle(db: D1Database, row: StoredRefreshToken, reason: "expired" | "revoked" | "reused"): Promise<RotateResult> {
  if (reason === "reused") await revokeFamily(db, row.familyId);
  return { ok: false, reason };
}

async function revokeFamily(db: D1Database, familyId: string): Promise<void> {
  await db
    .prepare("UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL")
    .bind(Date.now(), familyId)
    .run();
}

/** The statement that deletes every refresh token of `userId` (an erasure: src/db/users.ts eraseAccount). */
export function refreshTokensOf(db: D1Database, userId: string): D1PreparedStatement {
  return db.prepare("DELETE FROM refresh_tokens WHERE user_id = ?").bind(userId);
}
