// How anything (Worker routes, queue consumers, the objects themselves) reaches an object: by name.
export function conversationStub(env: Env, conversationId: string) {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
}

export function userStub(env: Env, userId: string) {
  return env.USERS.get(env.USERS.idFromName(userId));
}
