// D1 access for the membership directory (conversation_members), written by conversation objects
// through their D1 outbox and read here for questions that span conversations.

/** Which of `others` share at least one conversation with `userId` (presence visibility; never on the hot path). */
export async function sharedConversationUsers(db: D1Database, userId: string, others: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  // 90 ids + 1 per statement stays under D1's 100 bound parameters.
  for (let i = 0; i < others.length; i += 90) {
    const chunk = others.slice(i, i + 90);
    if (chunk.length === 0) continue;
    const { results } = await db
      .prepare(
        `SELECT DISTINCT b.user_id AS id FROM conversation_members a JOIN conversation_members b ON a.conversation_id = b.conversation_id
         WHERE a.user_id = ? AND b.user_id IN (${chunk.map(() => "?").join(", ")})`,
      )
      .bind(userId, ...chunk)
      .all<{ id: string }>();
    for (const r of results) out.add(r.id);
  }
  return out;
}

/** Whether the directory lists `userId` in `conversationId` (one primary-key lookup). */
export async function isListedMember(db: D1Database, conversationId: string, userId: string): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS one FROM conversation_members WHERE conversation_id = ? AND user_id = ?")
    .bind(conversationId, userId)
    .first<{ one: number }>();
  return row !== null;
}
