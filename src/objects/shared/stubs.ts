// How anything (Worker routes, queue consumers, the objects themselves) reaches an object: by name.
export function conversationStub(env: Env, conversationId: string) {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
}

export function userStub(env: Env, userId: string) {
  return env.USERS.get(env.USERS.idFromName(userId));
}

/**
 * During a deploy old and new code run side by side for a while: an object still on the old version
 * answers a method the new version added with this error. Callers of new methods treat it as "not yet"
 * and fall back to what the old version understands.
 */
export function isUnknownMethod(err: unknown): boolean {
  // workerd: `The RPC receiver does not implement the method "x".`; the test pool's wrapper: `... does not implement "x".`
  return /RPC receiver does not implement/i.test(String(err));
}
