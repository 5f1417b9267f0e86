// The bare comparison for scenario 4: a Worker routing to a SQLite-backed Durable Object that only
// accepts hibernatable WebSockets. No auth, no storage, no protocol: the runtime's own cost per socket.
import { DurableObject } from "cloudflare:workers";

export class BareObject extends DurableObject {
  async fetch(request) {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("awake");
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async webSocketMessage(ws, message) {
    ws.send(message);
  }

  async webSocketClose(ws, code) {
    // Reciprocate, or the client sees 1006.
    try {
      ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code);
    } catch {}
  }
}

export default {
  fetch(request, env) {
    const name = new URL(request.url).searchParams.get("o") ?? "default";
    return env.BARE.get(env.BARE.idFromName(name)).fetch(request);
  },
};
