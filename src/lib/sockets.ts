// Small WebSocket helpers shared by the Worker and both Durable Objects (objects/shared/sockets.ts builds on them).

/** Send, ignoring a socket that is closing or gone: its close handler cleans up, and clients resume by seq. */
export function trySend(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // CLOSING or closed.
  }
}

export function tryClose(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

/** Answer a client's close with the same code, or the client sees 1006. 1005/1006/1015 may not be sent. */
export function reciprocateClose(ws: WebSocket, code: number, reason: string): void {
  tryClose(ws, code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
}

/** Complete the upgrade and close at once: a browser cannot read an HTTP status from a failed upgrade, but it can read a close code. */
export function refusedUpgrade(code: number, reason: string, headers?: HeadersInit): Response {
  const pair = new WebSocketPair();
  pair[1].accept();
  pair[1].close(code, reason);
  return new Response(null, { status: 101, webSocket: pair[0], headers });
}
