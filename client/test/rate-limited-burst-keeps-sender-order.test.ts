// A burst over the send rate (protocol.md 10, step 6; 12.10), against the real server with a low limit:
// `rate_limited` entries stay in the outbox and are resent, and the sender's own messages are stored
// in the order it sent them: over the socket, and over REST when the outbox of a conversation that is
// not open is flushed.
import { beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ChatClient, MemoryOutboxStorage, type ChatMessage, type HistoryPage, type StatusChange } from "../src/index";
import { until } from "./net";

// A token every 20 ms and a burst of 5: a burst is mostly refused, and tokens come back while later
// frames (or REST requests) are still arriving, which is what lets a later message overtake a refused one.
const local = useLocalServer({ vars: { SEND_RATE_PER_SECOND: "50", SEND_BURST: "5" } });
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

const PASSWORD = "correct horse battery";

async function user(name: string, storage = new MemoryOutboxStorage()) {
  const client = new ChatClient({ baseUrl: server.url, WebSocket, storage, backoff: { baseMs: 20, capMs: 200 } });
  await client.auth.signup(name, PASSWORD);
  return client;
}

/** The whole history, oldest first. */
async function history(client: ChatClient, conversationId: string): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (let after: number | null = 0; after !== null; ) {
    const page: HistoryPage = await client.http.request<HistoryPage>("GET", `/v1/conversations/${conversationId}/messages`, { query: { after, limit: 200 } });
    out.push(...page.messages);
    after = page.nextAfter;
  }
  return out;
}

it("resends rate_limited messages and stores a burst exactly once each, in the order it was sent", async () => {
  const sfx = Date.now().toString(36);
  const alice = await user(`alice_${sfx}`);
  const bob = await user(`bob_${sfx}`);
  const dm = await alice.createDirectByUsername(`bob_${sfx}`);
  const a = await alice.open(dm.id);
  let synced = false;
  a.on("synced", () => (synced = true)); // registered before any frame can arrive (open() has only started the socket)
  const b = await bob.open(dm.id);
  await until(() => synced && b.state === "open", 10_000, "both open, alice live");

  const statuses: StatusChange[] = [];
  a.on("status", (s) => statuses.push(s));
  const bobGot: ChatMessage[] = [];
  b.on("message", (m) => bobGot.push(m));

  const n = 60;
  // As fast as an app can call it: nobody awaits the previous send. sent[i] is the i-th call's message.
  const sent = (await Promise.all(Array.from({ length: n }, (_, i) => a.send(`burst ${i}`)))).map((item) => item.clientMsgId);
  await until(() => a.pending.length === 0 && bobGot.length === n, 30_000, "every message acked and delivered");

  // (a) acknowledged exactly once each, never given up on.
  expect(a.failed.size).toBe(0);
  for (const id of sent) expect(statuses.filter((s) => s.clientMsgId === id && s.status === "sent"), id).toHaveLength(1);
  expect(statuses.some((s) => s.status === "failed")).toBe(false);
  // (b) stored once each, in the order sent, and seen so by the other member.
  const stored = await history(alice, dm.id);
  expect(stored.map((m) => m.clientMsgId)).toEqual(sent);
  expect(bobGot.map((m) => m.clientMsgId)).toEqual(sent);
  alice.close();
  bob.close();
});

it("flushes the outbox of a conversation that is not open over REST in order, waiting out rate_limited", async () => {
  const sfx = Date.now().toString(36);
  const storage = new MemoryOutboxStorage();
  const carol = await user(`carol_${sfx}`, storage);
  await user(`dave_${sfx}`);
  const dm = await carol.createDirectByUsername(`dave_${sfx}`);
  const me = await carol.me();
  const base = Date.now();
  const queued = Array.from({ length: 40 }, (_, i) => ({
    clientMsgId: `offline-${sfx}-${i}`,
    conversationId: dm.id,
    userId: me.id,
    body: `written offline ${i}`,
    createdAt: base + i,
  }));
  for (const item of queued) await storage.put(item);

  const flushed = await carol.flushOutbox();
  expect((await history(carol, dm.id)).map((m) => m.body)).toEqual(queued.map((q) => q.body));
  expect(flushed).toBe(queued.length);
  expect(await storage.getAll()).toEqual([]);
  carol.close();
});
