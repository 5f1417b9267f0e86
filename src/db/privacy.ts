// D1 access for consent and blocking (tables `privacy_settings` and `blocks`), and the one rule both follow:
// who may put a user in a group, and who may see a user's presence. Read by the Worker's routes and the user
// objects when a subscription is made or renewed; never on the message hot path.
import type { GroupAdds } from "../lib/config";
import type { PublicUser } from "../protocol/api";

/** Most users one user may block (the list is answered whole, and exported whole). */
export const MAX_BLOCKS = 1000;

/** 90 ids + at most 2 fixed parameters per statement stays under D1's 100 bound parameters. */
const CHUNK = 90;

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** `?first, ?first+1, …`: numbered placeholders after the fixed ones. */
function placeholders(n: number, first: number): string {
  return Array.from({ length: n }, (_, i) => `?${i + first}`).join(", ");
}

export async function getGroupAdds(db: D1Database, userId: string, fallback: GroupAdds): Promise<GroupAdds> {
  return (await ownGroupAdds(db, userId)) ?? fallback;
}

export async function setGroupAdds(db: D1Database, userId: string, groupAdds: GroupAdds): Promise<void> {
  await db
    .prepare(
      "INSERT INTO privacy_settings (user_id, group_adds, updated_at) VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET group_adds = excluded.group_adds, updated_at = excluded.updated_at",
    )
    .bind(userId, groupAdds, Date.now())
    .run();
}

export async function addBlock(db: D1Database, blockerId: string, blockedId: string): Promise<void> {
  await db.prepare("INSERT OR IGNORE INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)").bind(blockerId, blockedId, Date.now()).run();
}

export async function removeBlock(db: D1Database, blockerId: string, blockedId: string): Promise<void> {
  await db.prepare("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?").bind(blockerId, blockedId).run();
}

export interface BlockEntry {
  userId: string;
  username: string;
  blockedAt: number;
}

/** The users `blockerId` blocked, newest first (at most `limit`). */
export async function listBlocks(db: D1Database, blockerId: string, limit: number): Promise<BlockEntry[]> {
  const { results } = await db
    .prepare(
      `SELECT b.blocked_id AS userId, COALESCE(u.username, '') AS username, b.created_at AS blockedAt FROM blocks b
       LEFT JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = ? ORDER BY b.created_at DESC, b.blocked_id LIMIT ?`,
    )
    .bind(blockerId, limit)
    .all<BlockEntry>();
  return results;
}

export async function countBlocks(db: D1Database, blockerId: string): Promise<number> {
  return (await db.prepare("SELECT count(*) AS n FROM blocks WHERE blocker_id = ?").bind(blockerId).first<{ n: number }>())?.n ?? 0;
}

/** True when either user blocked the other. */
export async function blockedEitherWay(db: D1Database, a: string, b: string): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS x FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2) OR (blocker_id = ?2 AND blocked_id = ?1) LIMIT 1")
    .bind(a, b)
    .first();
  return row !== null;
}

export interface AddCheck {
  /** The users among the ids that exist. */
  found: PublicUser[];
  /** Those of them who do not let `adderId` add them: their setting, or a block either way. */
  refused: string[];
}

/**
 * Who among `ids` exists, and who refuses to be put in a group by `adderId`: a block either way, a setting
 * of "nobody", or "contacts" (the default is `fallback`) without a conversation shared with the adder. Plain
 * indexed lookups per chunk of ids (users, settings, blocks each way); the shared-conversation join runs only
 * for the users whose setting is "contacts".
 */
export async function checkAdds(db: D1Database, adderId: string, ids: string[], fallback: GroupAdds): Promise<AddCheck> {
  const unique = [...new Set(ids)];
  const found: PublicUser[] = [];
  const refused: string[] = [];
  if (unique.length === 0) return { found, refused };
  const groups = chunks(unique);
  const statements = groups.flatMap((chunk) => {
    const list = placeholders(chunk.length, 2);
    const own = placeholders(chunk.length, 1);
    return [
      db.prepare(`SELECT id, username FROM users WHERE id IN (${own})`).bind(...chunk),
      db.prepare(`SELECT user_id AS id, group_adds AS groupAdds FROM privacy_settings WHERE user_id IN (${own})`).bind(...chunk),
      db.prepare(`SELECT blocked_id AS id FROM blocks WHERE blocker_id = ?1 AND blocked_id IN (${list})`).bind(adderId, ...chunk),
      db.prepare(`SELECT blocker_id AS id FROM blocks WHERE blocked_id = ?1 AND blocker_id IN (${list})`).bind(adderId, ...chunk),
    ];
  });
  const results = await db.batch<{ id: string; username?: string; groupAdds?: GroupAdds }>(statements);
  const settings = new Map<string, GroupAdds>();
  const blocked = new Set<string>();
  results.forEach(({ results: rows }, i) => {
    for (const r of rows) {
      if (i % 4 === 0) found.push({ id: r.id, username: r.username! });
      else if (i % 4 === 1) settings.set(r.id, r.groupAdds!);
      else blocked.add(r.id);
    }
  });
  const setting = (id: string) => settings.get(id) ?? fallback;
  const contacts = found.map((u) => u.id).filter((id) => !blocked.has(id) && setting(id) === "contacts");
  const shared = await sharedConversation(db, adderId, contacts);
  for (const { id } of found) {
    const allowed = !blocked.has(id) && (setting(id) === "anyone" || (setting(id) === "contacts" && shared.has(id)));
    if (!allowed) refused.push(id);
  }
  return { found, refused };
}

/** Which of `others` share at least one conversation with `userId`. */
async function sharedConversation(db: D1Database, userId: string, others: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  const statements = chunks(others).map((chunk) =>
    db
      .prepare(
        `SELECT DISTINCT b.user_id AS id FROM conversation_members a JOIN conversation_members b ON a.conversation_id = b.conversation_id
         WHERE a.user_id = ?1 AND b.user_id IN (${placeholders(chunk.length, 2)})`,
      )
      .bind(userId, ...chunk),
  );
  if (statements.length === 0) return out;
  for (const { results } of await db.batch<{ id: string }>(statements)) for (const r of results) out.add(r.id);
  return out;
}

/**
 * Whose presence `userId` may see among `others`: users who share a conversation with them, where neither
 * blocked the other. The same rule decides group adds ("contacts"), so presence follows consent.
 */
export async function presenceVisible(db: D1Database, userId: string, others: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  const statements = chunks([...new Set(others)].filter((id) => id !== userId)).map((chunk) =>
    db
      .prepare(
        `SELECT DISTINCT m.user_id AS id FROM conversation_members m
           JOIN conversation_members a ON a.conversation_id = m.conversation_id AND a.user_id = ?1
         WHERE m.user_id IN (${placeholders(chunk.length, 2)})
           AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = ?1 AND b.blocked_id = m.user_id) OR (b.blocker_id = m.user_id AND b.blocked_id = ?1))`,
      )
      .bind(userId, ...chunk),
  );
  if (statements.length === 0) return out;
  for (const { results } of await db.batch<{ id: string }>(statements)) for (const r of results) out.add(r.id);
  return out;
}

/** The statements that delete `userId`'s setting and every block by or of them (an erasure: src/db/users.ts eraseAccount). */
export function privacyOf(db: D1Database, userId: string): D1PreparedStatement[] {
  return [
    db.prepare("DELETE FROM privacy_settings WHERE user_id = ?").bind(userId),
    db.prepare("DELETE FROM blocks WHERE blocker_id = ?").bind(userId),
    db.prepare("DELETE FROM blocks WHERE blocked_id = ?").bind(userId),
  ];
}

/** A user's own choice (null: the deployment's default applies), for their export. */
export async function ownGroupAdds(db: D1Database, userId: string): Promise<GroupAdds | null> {
  const row = await db.prepare("SELECT group_adds AS groupAdds FROM privacy_settings WHERE user_id = ?").bind(userId).first<{ groupAdds: GroupAdds }>();
  return row?.groupAdds ?? null;
}
