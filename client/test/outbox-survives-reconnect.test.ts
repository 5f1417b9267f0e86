// The offline outbox against the real server: sends while the network is down are kept, retried on
// reconnect, acknowledged once, and survive a restart of the client (same storage).
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ChatClient, MemoryOutboxStorage, type ChatMessage, type MessageStatus } from "../src/index";
import { Network, until } from "./net";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

const PASSWORD = "correct horse battery";

async function user(name: string, net: Network, storage = new MemoryOutboxStorage()) {
  const client = new ChatClient({
    baseUrl: server.url,
    WebSocket: net.WebSocket,
    storage,
    backoff: { baseMs: 20, capMs: 200 },
    fetch: (input, init) => (net.up ? fetch(input, init) : Promise.reject(new TypeError("network down"))),
  });
  await client.auth.signup(name, PASSWORD);
  return { client, storage };
}

it("queues sends while offline, delivers each exactly once after reconnect, and survives a client restart", async () => {
  const sfx = Date.now().toString(36);
  const aliceNet = new Network();
  const bobNet = new Network();
  const alice = await user(`alice_${sfx}`, aliceNet);
  const bob = await user(`bob_${sfx}`, bobNet);
  const dm = await alice.client.createDirectByUsername(`bob_${sfx}`);
  const a = await alice.client.open(dm.id);
  const b = await bob.client.open(dm.id);
  await until(() => a.state === "open" && b.state === "open", 10_000, "both open");

  const aliceGot: ChatMessage[] = [];
  a.on("message", (m) => aliceGot.push(m));
  const statuses = new Map<string, MessageStatus[]>();
  b.on("status", (s) => statuses.set(s.clientMsgId, [...(statuses.get(s.clientMsgId) ?? []), s.status]));

  bobNet.cut();
  await until(() => b.state === "reconnecting", 5_000, "bob notices");
  const first = await b.send("sent in a tunnel 1");
  const second = await b.send("sent in a tunnel 2");
  expect(b.pending.map((i) => i.clientMsgId)).toEqual([first.clientMsgId, second.clientMsgId]);
  expect((await bob.storage.getAll()).length).toBe(2);
  await new Promise((r) => setTimeout(r, 300));
  expect(aliceGot).toEqual([]);

  bobNet.restore();
  await until(() => aliceGot.length === 2 && b.pending.length === 0, 10_000, "outbox flushed");
  expect(aliceGot.map((m) => m.body)).toEqual(["sent in a tunnel 1", "sent in a tunnel 2"]);
  expect(statuses.get(first.clientMsgId)).toEqual(["pending", "sent"]);
  expect(await bob.storage.getAll()).toEqual([]);

  // Restart: a message is in storage but the app died before the ack. A new client on the same storage
  // sends it when the conversation opens; the copy already on the server (same clientMsgId) is not doubled.
  const third = await b.send("sent just before the app died");
  await until(() => aliceGot.length === 3, 10_000, "third delivered");
  await bob.storage.put(third); // as if the ack never reached storage
  bob.client.close();
  const bob2 = new ChatClient({ baseUrl: server.url, WebSocket: bobNet.WebSocket, storage: bob.storage, session: bob.client.auth.session });
  const fourth = { ...third, clientMsgId: `${third.clientMsgId}x`, body: "queued before the restart" };
  await bob.storage.put(fourth);
  const b2 = await bob2.open(dm.id);
  await until(() => aliceGot.length === 4 && b2.pending.length === 0, 10_000, "restart flushed");
  await new Promise((r) => setTimeout(r, 300));
  expect(aliceGot.map((m) => m.body)).toEqual(["sent in a tunnel 1", "sent in a tunnel 2", "sent just before the app died", "queued before the restart"]);
  expect(aliceGot.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  expect(await bob.storage.getAll()).toEqual([]);

  // Conversations that are not open are flushed over REST with the same idempotency key.
  const fifth = { ...third, clientMsgId: `${third.clientMsgId}y`, body: "flushed over REST" };
  await bob.storage.put(fifth);
  bob2.closeConversation(dm.id);
  const bob3 = new ChatClient({ baseUrl: server.url, WebSocket: bobNet.WebSocket, storage: bob.storage, session: bob2.auth.session });
  expect(await bob3.flushOutbox()).toBe(1);
  expect(await bob3.flushOutbox()).toBe(0);
  await until(() => aliceGot.length === 5, 10_000, "REST flush delivered");
  expect(aliceGot.at(-1)!.body).toBe("flushed over REST");

  alice.client.close();
  bob2.close();
  bob3.close();
});
