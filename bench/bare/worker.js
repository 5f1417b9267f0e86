// The bare comparisons: for scenario 4, a Worker routing to a SQLite-backed Durable Object that only
// accepts hibernatable WebSockets. No auth, no storage, no protocol: the runtime's own cost per socket.
// For scenarios 1 and 3, `BareRelay` below (under `/relay`).
// With ?welcome=1 it also sends one frame shaped like edgechat's `welcome` on accept: the first frame a
// socket carries makes the runtime keep buffers for it (scenario 4 reports both).
import { DurableObject } from "cloudflare:workers";

/** Answer a client's close with the same code, or the client sees 1006 (1005/1006/1015 may not be sent). */
function reciprocateClose(ws, code) {
  try {
    ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code);
  } catch {}
}

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
    reciprocateClose(ws, code);
  }
}

/**
 * The runtime's floor for scenarios 1 and 3: the durable relay's room (bench/baselines/relay.ts) as a SQLite-backed
 * object with hibernatable sockets. `send` / `send_batch` in; each frame's messages inserted (committed before any
 * frame goes out, as the runtime holds output until its writes are durable), then `ack`, then `message` to every
 * socket of the room, sender included. No auth, no validation, no idempotency, no history, no inbox.
 */
export class BareRelay extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, sender TEXT, client_msg_id TEXT, body TEXT, created_at INTEGER)");
    this.seq = ctx.storage.sql.exec("SELECT coalesce(max(seq), 0) AS seq FROM messages").one().seq;
  }

  async fetch(request) {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].serializeAttachment({ user: new URL(request.url).searchParams.get("user") ?? "anon" });
    pair[1].send(JSON.stringify({ type: "caught_up", seq: this.seq }));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async webSocketMessage(ws, data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      ws.send('{"type":"error","code":"invalid_json","message":"frame is not valid JSON"}');
      return;
    }
    if (frame.type === "ping") return ws.send('{"type":"pong"}');
    const items = frame.type === "send" ? [frame] : frame.type === "send_batch" ? (frame.messages ?? []) : [];
    const senderId = ws.deserializeAttachment().user;
    const createdAt = Date.now();
    const messages = items.map((m) => ({ seq: ++this.seq, id: `m${this.seq}`, senderId, clientMsgId: String(m.clientMsgId), body: String(m.body), createdAt }));
    for (const m of messages) this.ctx.storage.sql.exec("INSERT INTO messages VALUES (?, ?, ?, ?, ?)", m.seq, m.senderId, m.clientMsgId, m.body, m.createdAt);
    for (const m of messages) ws.send(JSON.stringify({ type: "ack", clientMsgId: m.clientMsgId, seq: m.seq, id: m.id, createdAt, duplicate: false }));
    for (const m of messages) {
      const text = JSON.stringify({ type: "message", message: m });
      for (const s of this.ctx.getWebSockets()) {
        try {
          s.send(text);
        } catch {}
      }
    }
  }

  async webSocketClose(ws, code) {
    reciprocateClose(ws, code);
  }
}

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/relay")) return env.RELAY.get(env.RELAY.idFromName(url.searchParams.get("room") ?? "default")).fetch(request);
    const name = url.searchParams.get("o") ?? "default";
    return env.BARE.get(env.BARE.idFromName(name)).fetch(request);
  },
};
