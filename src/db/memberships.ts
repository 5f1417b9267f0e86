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
