// The bare comparison for scenario 4: a Worker routing to a SQLite-backed Durable Object that only
// accepts hibernatable WebSockets. No auth, no storage, no protocol: the runtime's own cost per socket.
// With ?welcome=1 it also sends one frame shaped like edgechat's `welcome` on accept: the first frame a
// socket carries makes the runtime keep buffers for it (scenario 4 reports both).
import { DurableObject } from "cloudflare:workers";

export class BareObject extends DurableObject {
  async fetch(request) {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("awake");
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    if (new URL(request.url).searchParams.get("welcome") === "1") {
      pair[1].send(JSON.stringify({ type: "welcome", protocol: 1, conversationId: "g_0123456789abcdefghij", userId: "u_0123456789abcdef", epoch: "e_0123456789", lastSeq: 0, reset: false }));
    }
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
