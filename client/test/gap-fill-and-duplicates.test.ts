// Delivery rules against a scripted server: a gap in the stream is filled from REST history before
// going on, duplicates are dropped, and the app sees every seq once, in order.
import { afterEach, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { ChatClient, MemoryOutboxStorage, type ChatMessage, type Session } from "../src/index";
import { until } from "./net";

let wss: WebSocketServer | null = null;
afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
  wss = null;
});

const msg = (seq: number): ChatMessage => ({ seq, id: `m${seq}`, senderId: "u_other", clientMsgId: `c${seq}`, body: `body ${seq}`, createdAt: seq });
const session: Session = { user: { id: "u_me", username: "me" }, accessToken: "t", refreshToken: "r", expiresAt: Date.now() + 3_600_000 };

it("fills a gap from REST, drops duplicates, and delivers in order", async () => {
  const urls: string[] = [];
  const protocols: string[] = [];
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  wss.on("connection", (ws, req) => {
    urls.push(req.url ?? "");
    protocols.push(String(req.headers["sec-websocket-protocol"] ?? ""));
    ws.send(JSON.stringify({ type: "welcome", protocol: 1, conversationId: "c1", userId: "u_me", epoch: "e1", lastSeq: 4, reset: false }));
    ws.send(JSON.stringify({ type: "backlog", messages: [msg(1)] })); // already have it: duplicate
    ws.send(JSON.stringify({ type: "caught_up", seq: 1 }));
    ws.send(JSON.stringify({ type: "message", message: msg(4) })); // 2 and 3 are missing: a gap
    ws.send(JSON.stringify({ type: "message", message: msg(4) })); // duplicate
    ws.send(JSON.stringify({ type: "message", message: msg(5) }));
  });
  await new Promise<void>((r) => wss!.once("listening", () => r()));
  const port = (wss.address() as { port: number }).port;

  const requests: string[] = [];
  const fetchStub = async (input: string): Promise<Response> => {
    const url = new URL(input);
    requests.push(url.pathname + url.search);
    const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
    if (url.pathname === "/v1/conversations/c1") {
      return json({ conversation: { id: "c1", type: "direct", title: null, createdBy: "u_me", createdAt: 0, epoch: "e1", lastSeq: 1, members: [] } });
    }
    if (url.pathname === "/v1/conversations/c1/messages") {
      const after = url.searchParams.get("after");
      if (after === null) return json({ messages: [msg(1)], nextBefore: null, nextAfter: null, lastSeq: 1, epoch: "e1" });
      const from = Number(after) + 1;
      const to = Math.min(5, Number(after) + Number(url.searchParams.get("limit")));
      return json({ messages: Array.from({ length: to - from + 1 }, (_, i) => msg(from + i)), nextBefore: 1, nextAfter: null, lastSeq: 5, epoch: "e1" });
    }
    return json({ error: { code: "not_found", message: "no" } }, 404);
  };

  const client = new ChatClient({
    baseUrl: `http://127.0.0.1:${port}`,
    WebSocket,
    fetch: fetchStub,
    session,
    storage: new MemoryOutboxStorage(),
  });
  const c = await client.open("c1");
  const delivered: number[] = [];
  c.on("message", (m) => delivered.push(m.seq));
  await until(() => c.lastSeq === 5, 5_000, "seq 5");
  await new Promise((r) => setTimeout(r, 100));
  expect(delivered).toEqual([2, 3, 4, 5]);
  expect(c.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
  expect(requests).toContain("/v1/conversations/c1/messages?after=1&limit=2");
  const first = new URL(urls[0]!, "ws://x").searchParams;
  expect([first.get("v"), first.get("since"), first.get("epoch"), first.get("token")]).toEqual(["2", "1", "e1", null]);
  // The token travels in the subprotocol list, never in the URL (query strings end up in access logs).
  expect(protocols[0]!.split(",").map((p) => p.trim())).toEqual(["edgechat.v1", "bearer.t"]);
  client.close();
});
