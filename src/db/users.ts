// D1 access for accounts. Usernames are stored lowercased; the column is also COLLATE NOCASE.
import type { PublicUser } from "../protocol/api";
import { AppError } from "../lib/errors";
import { privacyOf } from "./privacy";
import { refreshTokensOf } from "./refresh-tokens";

export interface UserRecord extends PublicUser {
  passwordHash: string | null;
  createdAt: number;
}

const COLUMNS = "id, username, password_hash AS passwordHash, created_at AS createdAt";

export async function findUserByUsername(db: D1Database, username: string): Promise<UserRecord | null> {
  return db.prepare(`SELECT ${COLUMNS} FROM users WHERE username = ?`).bind(username).first<UserRecord>();
}

export async function findUserById(db: D1Database, id: string): Promise<UserRecord | null> {
  return db.prepare(`SELECT ${COLUMNS} FROM users WHERE id = ?`).bind(id).first<UserRecord>();
}

/**
 * The caller's account, or `unauthorized`: an access token outlives an erased account (protocol 17) until it
 * expires, so the routes that would store something for the caller (a conversation, a setting, a block) check.
 */
export async function requireAccount(db: D1Database, id: string): Promise<void> {
  const row = await db.prepare("SELECT 1 AS one FROM users WHERE id = ?").bind(id).first();
  if (row === null) throw new AppError("unauthorized", "this account no longer exists");
}

/** Users among `ids` that exist (chunks of 90 to stay under D1's 100 bound parameters). */
export async function findUsersByIds(db: D1Database, ids: string[]): Promise<PublicUser[]> {
  const unique = [...new Set(ids)];
  const out: PublicUser[] = [];
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < unique.length; i += 90) {
    const chunk = unique.slice(i, i + 90);
    statements.push(db.prepare(`SELECT id, username FROM users WHERE id IN (${chunk.map(() => "?").join(", ")})`).bind(...chunk));
  }
  if (statements.length === 0) return out;
  for (const r of await db.batch<PublicUser>(statements)) out.push(...r.results);
  return out;
}

/** Insert a user; returns false when the username (or id) is taken. */
export async function insertUser(
  db: D1Database,
  user: { id: string; username: string; passwordHash: string | null },
): Promise<boolean> {
  const r = await db
    .prepare("INSERT OR IGNORE INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)")
    .bind(user.id, user.username, user.passwordHash, Date.now())
    .run();
  return r.meta.changes === 1;
}

/**
 * Remove an account and everything D1 keeps about it as a person, in one transaction (an erasure, protocol 17):
 * its refresh tokens, its settings, its blocks (both ways: a block of a user who no longer exists means
 * nothing), and the `users` row. Idempotent. The directory rows go with the conversations (src/db/memberships.ts).
 */
export async function eraseAccount(db: D1Database, userId: string): Promise<void> {
  await db.batch([
    refreshTokensOf(db, userId),
    ...privacyOf(db, userId),
    db.prepare("DELETE FROM users WHERE id = ?").bind(userId),
  ]);
}
