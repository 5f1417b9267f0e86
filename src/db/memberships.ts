// D1 access for the membership directory (conversation_members), written by conversation objects
// through their D1 outbox and read here for questions that span conversations (presence visibility and
// consent are in db/privacy.ts).

/** Whether the directory lists `userId` in `conversationId` (one primary-key lookup). */
export async function isListedMember(db: D1Database, conversationId: string, userId: string): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS one FROM conversation_members WHERE conversation_id = ? AND user_id = ?")
    .bind(conversationId, userId)
    .first<{ one: number }>();
  return row !== null;
}

/** The conversations the directory lists `userId` in, by id after `after` (keyset pages; the user index). */
export async function listMemberships(db: D1Database, userId: string, after: string, limit: number): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT conversation_id AS id FROM conversation_members WHERE user_id = ? AND conversation_id > ? ORDER BY conversation_id LIMIT ?")
    .bind(userId, after, limit)
    .all<{ id: string }>();
  return results.map((r) => r.id);
}

/** Drop every directory row of `userId` (an erasure's last step: rows its conversations did not remove). */
export async function deleteMemberships(db: D1Database, userId: string): Promise<void> {
  await db.prepare("DELETE FROM conversation_members WHERE user_id = ?").bind(userId).run();
}
