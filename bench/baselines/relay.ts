// Baseline relays, run in their own process. Same frames as edgechat (send / send_batch in;
// caught_up, ack, message out), same fan-out (every socket in the room, sender included).
//   plain:   no auth, no persistence: the ceiling for "a socket server on this machine".
//   durable: appends each frame's messages to a file and fdatasyncs before acking and relaying:
//            the cost of "acknowledged means on disk" on this disk (one sync per incoming frame,
//            like the runtime's one commit per incoming event).
// User channel (scenario 8, live inbox notifications): a socket opened with `?user=<id>&inbox=1` (no
// room) subscribes to that user's channel and gets `hello`, then one `inbox_update` per message relayed
// in any room the user is a member of (the fields of edgechat's user-socket frame that scenario 8 reads:
// conversationId, lastSeq, lastMessage {seq, senderId, preview, createdAt}, unread, totalUnread).
// A room's members are the users named in `members=<id>,<id>,...` on the URL of any of its room sockets
// (the sender passes them once). Rooms without `members=` (scenarios 1-3) do no inbox work at all, so
// those baselines are unchanged. Each message goes to every subscriber of every member's channel,
// sender included, after the message frames (the durable relay: after its fdatasync, like them).
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocketServer, type WebSocket } from "ws";

interface Room {
  seq: number;
  sockets: Set<WebSocket>;
  members: Set<string>;
}

interface UserChannel {
  sockets: Set<WebSocket>;
  /** Unread per room (messages from others), for `unread` and `totalUnread` in inbox_update. */
  unread: Map<string, number>;
  totalUnread: number;
}

const durable = process.argv.includes("--durable");
const dir = durable ? mkdtempSync(join(tmpdir(), "edgechat-bench-relay-")) : null;
const fd = dir ? openSync(join(dir, "log.jsonl"), "a") : -1;
const rooms = new Map<string, Room>();
const users = new Map<string, UserChannel>();
let nextId = 0;

function channel(user: string): UserChannel {
  let c = users.get(user);
  if (!c) users.set(user, (c = { sockets: new Set(), unread: new Map(), totalUnread: 0 }));
  return c;
}

/** Like edgechat's InboxEntry preview: whitespace runs to one space, trimmed, at most 140 characters. */
function preview(body: string): string {
  const t = body.replace(/\s+/g, " ").trim();
  return t.length <= 140 ? t : `${t.slice(0, 139)}\u2026`;
}

function notifyMembers(roomId: string, room: Room, m: { seq: number; senderId: string; body: string; createdAt: number }): void {
  const last = `{"seq":${m.seq},"senderId":${JSON.stringify(m.senderId)},"preview":${JSON.stringify(preview(m.body))},"createdAt":${m.createdAt}}`;
  const conv = JSON.stringify(roomId);
  for (const member of room.members) {
    const c = channel(member);
    if (member !== m.senderId) {
      c.unread.set(roomId, (c.unread.get(roomId) ?? 0) + 1);
      c.totalUnread++;
    }
    if (c.sockets.size === 0) continue;
    const text = `{"type":"inbox_update","totalUnread":${c.totalUnread},"entry":{"conversationId":${conv},"lastSeq":${m.seq},"lastMessage":${last},"unread":${c.unread.get(roomId) ?? 0}}}`;
    for (const s of c.sockets) s.send(text);
  }
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });

wss.on("connection", (ws, req) => {
  const url = new URL(req.url ?? "/", "http://relay");
  const user = url.searchParams.get("user") ?? "anon";
  if (url.searchParams.get("inbox") === "1" && !url.searchParams.has("room")) {
    const c = channel(user);
    c.sockets.add(ws);
    ws.send(`{"type":"hello","protocol":1,"userId":${JSON.stringify(user)},"totalUnread":${c.totalUnread}}`);
    ws.on("close", () => c.sockets.delete(ws));
    ws.on("message", (data: Buffer) => {
      if (data.toString("utf8") === '{"type":"ping"}') ws.send('{"type":"pong"}');
    });
    return;
  }
  const roomId = url.searchParams.get("room") ?? "default";
  let room = rooms.get(roomId);
  if (!room) rooms.set(roomId, (room = { seq: 0, sockets: new Set(), members: new Set() }));
  const r = room;
  for (const m of url.searchParams.get("members")?.split(",") ?? []) if (m) r.members.add(m);
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
    if (r.members.size) for (const m of messages) notifyMembers(roomId, r, m);
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
