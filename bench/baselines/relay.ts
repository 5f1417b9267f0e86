// Baseline relays, run in their own process. Same frames as edgechat (send / send_batch in;
// caught_up, ack, message out), same fan-out (every socket in the room, sender included).
//   plain:   no auth, no persistence: the ceiling for "a socket server on this machine".
//   durable: appends each frame's messages to a file and fdatasyncs before acking and relaying:
//            the cost of "acknowledged means on disk" on this disk (one sync per incoming frame,
//            like the runtime's one commit per incoming event).
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocketServer, type WebSocket } from "ws";

interface Room {
  seq: number;
  sockets: Set<WebSocket>;
}

const durable = process.argv.includes("--durable");
const dir = durable ? mkdtempSync(join(tmpdir(), "edgechat-bench-relay-")) : null;
const fd = dir ? openSync(join(dir, "log.jsonl"), "a") : -1;
const rooms = new Map<string, Room>();
let nextId = 0;

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });

wss.on("connection", (ws, req) => {
  const url = new URL(req.url ?? "/", "http://relay");
  const roomId = url.searchParams.get("room") ?? "default";
  const user = url.searchParams.get("user") ?? "anon";
  let room = rooms.get(roomId);
  if (!room) rooms.set(roomId, (room = { seq: 0, sockets: new Set() }));
  const r = room;
  r.sockets.add(ws);
  ws.send(`{"type":"caught_up","seq":${r.seq}}`);
  ws.on("close", () => r.sockets.delete(ws));
  ws.on("message", (data: Buffer) => {
    let frame: { type?: string; clientMsgId?: string; body?: string; messages?: { clientMsgId: string; body: string }[] };
    try {
      frame = JSON.parse(data.toString("utf8"));
    } catch {
      ws.send('{"type":"error","code":"invalid_json","message":"frame is not valid JSON"}');
      return;
    }
    const items =
      frame.type === "send" ? [{ clientMsgId: String(frame.clientMsgId), body: String(frame.body) }] : frame.type === "send_batch" ? (frame.messages ?? []) : null;
    if (!items) {
      if (frame.type === "ping") ws.send('{"type":"pong"}');
      return;
    }
    const now = Date.now();
    const messages = items.map((m) => ({ seq: ++r.seq, id: `m${++nextId}`, senderId: user, clientMsgId: m.clientMsgId, body: m.body, createdAt: now }));
    if (durable) {
      writeSync(fd, messages.map((m) => `${roomId}\t${JSON.stringify(m)}\n`).join(""));
      fdatasyncSync(fd);
    }
    for (const m of messages) {
      ws.send(JSON.stringify({ type: "ack", clientMsgId: m.clientMsgId, seq: m.seq, id: m.id, createdAt: m.createdAt, duplicate: false }));
    }
    for (const m of messages) {
      const text = JSON.stringify({ type: "message", message: m });
      for (const s of r.sockets) s.send(text);
    }
  });
});

wss.on("listening", () => {
  const address = wss.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.send?.({ port, pid: process.pid });
});

function shutdown() {
  for (const c of wss.clients) c.terminate();
  wss.close();
  if (fd >= 0) closeSync(fd);
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
process.on("disconnect", shutdown);
process.on("SIGTERM", shutdown);
