// TEMPORARY during the reshape (removed before it lands).
export function openSocketStates<T>(ctx: DurableObjectState): Map<WebSocket, T> {
  const map = new Map<WebSocket, T>();
  for (const ws of ctx.getWebSockets()) {
    const state = ws.readyState === WebSocket.OPEN ? (ws.deserializeAttachment() as T | null) : null;
    if (state) map.set(ws, state);
  }
  return map;
}
