// Protocol negotiation and the change path against a scripted `ws` server (no real server needed): the SDK
// asks for v=2, falls back to v=1 when an older server closes with 4426 (then edit/delete/react reject with
// `unsupported`), and on a v=2 server an edit leaves the outbox as an `edit` frame and comes back applied.
import { afterEach, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { ApiError, ChatClient, CloseCode, MemoryOutboxStorage, fallbackVersion, negotiatedVersion, type ChatMessage, type ConnectionError, type FetchLike } from "../src/index";
import { until } from "./net";

let server: WebSocketServer | null = null;
let chat: ChatClient | null = null;

afterEach(async () => {
  chat?.close();
  chat = null;
  if (server) {
    for (const c of server.clients) c.terminate();
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
  }
});

it("chooses the version: 4426 steps down once, to 1; other codes and v=1 do not", () => {
  expect(fallbackVersion(2, CloseCode.VersionUnsupported)).toBe(1);
  expect(fallbackVersion(1, CloseCode.VersionUnsupported)).toBeNull();
  expect(fallbackVersion(2, CloseCode.NotAMember)).toBeNull();
  expect(fallbackVersion(2, CloseCode.TokenExpired)).toBeNull();
  expect(negotiatedVersion(2, 2)).toBe(2);
  expect(negotiatedVersion(2, 1)).toBe(1);
  expect(negotiatedVersion(1, 2)).toBe(1); // a newer server still answers a v=1 socket as version 1
  expect(negotiatedVersion(2, Number.NaN)).toBe(2);
});

const ME = "u_me";
const ORIGINAL: ChatMessage = { seq: 1, id: "m1", senderId: ME, clientMsgId: "c1", body: "helo", createdAt: 1_000 };

async function scripted(onFrame: (ws: WebSocket, url: URL, frame: Record<string, unknown> | null) => void): Promise<{ wsUrl: string; urls: URL[] }> {
  const urls: URL[] = [];
  server = new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols: () => "edgechat.v1" });
  server.on("connection", (ws, req) => {
    const url = new URL(req.url ?? "/", "ws://x");
    urls.push(url);
    ws.on("message", (data) => {
      const text = String(data);
      if (text === '{"type":"ping"}') return ws.send('{"type":"pong"}');
      onFrame(ws, url, JSON.parse(text) as Record<string, unknown>);
    });
    onFrame(ws, url, null);
  });
  await new Promise<void>((r) => server!.once("listening", () => r()));
  const addr = server.address();
  if (typeof addr === "string" || addr === null) throw new Error("no port");
  return { wsUrl: `ws://127.0.0.1:${addr.port}`, urls };
}

/** REST answers for one direct conversation holding ORIGINAL. */
const fakeFetch: FetchLike = async (input) => {
  const path = new URL(input).pathname;
  const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
  if (path === "/v1/me") return json({ user: { id: ME, username: "me" } });
  if (path === "/v1/conversations/c1") {
    return json({ conversation: { id: "c1", type: "direct", title: null, createdBy: ME, createdAt: 1, epoch: "e1", lastSeq: 1, members: [] } });
  }
  if (path === "/v1/conversations/c1/messages") return json({ messages: [ORIGINAL], nextBefore: null, nextAfter: null, lastSeq: 1, epoch: "e1" });
  if (path.startsWith("/v1/conversations/c1/receipts")) return json({ cursors: [] });
  return new Response(JSON.stringify({ error: { code: "not_found", message: path } }), { status: 404 });
};

function welcome(ws: WebSocket, protocol: number): void {
  ws.send(JSON.stringify({ type: "welcome", protocol, conversationId: "c1", userId: ME, epoch: "e1", lastSeq: 1, reset: false }));
  ws.send(JSON.stringify({ type: "caught_up", seq: 1 }));
}

function client(wsUrl: string): ChatClient {
  chat = new ChatClient({ baseUrl: "http://127.0.0.1:9", wsUrl, WebSocket, fetch: fakeFetch, getToken: () => "tok", storage: new MemoryOutboxStorage(), backoff: { baseMs: 10, capMs: 50 } });
  return chat;
}

it("an older server closes v=2 with 4426: reconnects at once with v=1, and changes reject with `unsupported`", async () => {
  const { wsUrl, urls } = await scripted((ws, url, frame) => {
    if (frame) return;
    if (url.searchParams.get("v") === "2") ws.close(CloseCode.VersionUnsupported, "protocol version 2 is not supported");
    else welcome(ws, 1);
  });
  const c = await client(wsUrl).open("c1");
  const errors: unknown[] = [];
  c.on("error", (e) => errors.push(e));
  await until(() => c.state === "open" && c.protocol === 1, 5_000, "open at v=1");
  expect(urls.map((u) => u.searchParams.get("v"))).toEqual(["2", "1"]);
  expect(c.supportsChanges).toBe(false);
  await expect(c.edit(1, "hello")).rejects.toMatchObject({ name: "ApiError", code: "unsupported" });
  await expect(c.react(1, "👍")).rejects.toBeInstanceOf(ApiError);
  await expect(c.deleteMessage(1)).rejects.toMatchObject({ code: "unsupported" });
  expect(c.pendingChanges).toEqual([]);
  expect(errors).toEqual([]);
});

it("a server that refuses v=1 too: a terminal error, no loop", async () => {
  const { wsUrl, urls } = await scripted((ws, _url, frame) => {
    if (!frame) ws.close(CloseCode.VersionUnsupported, "no");
  });
  const c = await client(wsUrl).open("c1");
  const errors: ConnectionError[] = [];
  c.on("error", (e) => errors.push(e as ConnectionError));
  await until(() => c.state === "closed", 5_000, "closed");
  await new Promise((r) => setTimeout(r, 100));
  expect(urls.map((u) => u.searchParams.get("v"))).toEqual(["2", "1"]);
  expect(errors.map((e) => [e.code, e.terminal])).toEqual([[CloseCode.VersionUnsupported, true]]);
});

it("on a v=2 server an edit goes as an `edit` frame after the earlier send, and its entry updates the message", async () => {
  const frames: Record<string, unknown>[] = [];
  let seq = 1;
  const { wsUrl } = await scripted((ws, _url, frame) => {
    if (!frame) return welcome(ws, 2);
    if (frame.type === "receipt" || frame.type === "typing") return;
    frames.push(frame);
    const at = 2_000 + seq;
    const entry: ChatMessage =
      frame.type === "edit"
        ? { seq: ++seq, id: `m${seq}`, senderId: ME, clientMsgId: String(frame.clientMsgId), body: `* ${String(frame.body)}`, createdAt: at, change: { type: "edit", target: Number(frame.seq), version: 2, body: String(frame.body) } }
        : { seq: ++seq, id: `m${seq}`, senderId: ME, clientMsgId: String(frame.clientMsgId), body: String(frame.body), createdAt: at };
    ws.send(JSON.stringify({ type: "ack", clientMsgId: entry.clientMsgId, seq: entry.seq, id: entry.id, createdAt: at, duplicate: false }));
    ws.send(JSON.stringify({ type: "message", message: entry }));
  });
  const c = await client(wsUrl).open("c1");
  const messages: ChatMessage[] = [];
  const updated: ChatMessage[] = [];
  c.on("message", (m) => messages.push(m));
  c.on("updated", (m) => updated.push(m));
  // Queued before the socket is live: the send and the edit keep the order they were made in.
  const sent = await c.send("second");
  const edit = await c.edit(1, "hello");
  expect(c.pending.map((i) => i.clientMsgId)).toEqual([sent.clientMsgId]);
  expect(c.pendingChanges.map((i) => i.clientMsgId)).toEqual([edit.clientMsgId]);
  await until(() => c.lastSeq === 3 && c.pendingChanges.length === 0, 5_000, "edit applied");
  expect(c.protocol).toBe(2);
  expect(frames.map((f) => f.type)).toEqual(["send", "edit"]);
  expect(frames[1]).toEqual({ type: "edit", clientMsgId: edit.clientMsgId, seq: 1, body: "hello" });
  expect(messages.map((m) => m.body)).toEqual(["second"]);
  expect(updated).toEqual([{ ...ORIGINAL, body: "hello", edited: { at: 2_002, version: 2 } }]);
  expect(c.messages.map((m) => [m.seq, m.body])).toEqual([
    [1, "hello"],
    [2, "second"],
  ]);
  await expect(c.react(1, "not an emoji")).rejects.toMatchObject({ code: "validation_failed" });
});
