// The offline outbox against the real server: sends while the network is down are kept, retried on
// reconnect, acknowledged once, and survive a restart of the client (same storage). Then messages that
// change (docs/protocol.md 15), whose edits, deletes and reactions travel through the same outbox: live
// between two clients, made offline and applied exactly once, and on resume with `since`; each client's
// `messages` must equal REST history. (One file, one server start: the client suite stays fast.)
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import {
  ChatClient,
  MemoryOutboxStorage,
  isChangeEntry,
  type ChatMessage,
  type Conversation,
  type HistoryPage,
  type MessageStatus,
  type StatusChange,
} from "../src/index";
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

// ------------------------------------------------------------------ messages that change (protocol 15)

/** A signed-up user with their own network and outbox storage. */
async function member(name: string, net = new Network()) {
  const storage = new MemoryOutboxStorage();
  const client = new ChatClient({
    baseUrl: server.url,
    WebSocket: net.WebSocket,
    storage,
    backoff: { baseMs: 20, capMs: 200 },
    fetch: (input, init) => (net.up ? fetch(input, init) : Promise.reject(new TypeError("network down"))),
  });
  await client.auth.signup(name, PASSWORD);
  return { client, net, storage };
}

/** Every message of the conversation as REST history reads it for this user (change entries left out). */
async function history(client: ChatClient, id: string): Promise<ChatMessage[]> {
  const all: ChatMessage[] = [];
  for (let after: number | null = 0; after !== null; ) {
    const page: HistoryPage = await client.http.request<HistoryPage>("GET", `/v1/conversations/${id}/messages`, { query: { after, limit: 200 } });
    all.push(...page.messages);
    after = page.nextAfter;
  }
  return all.filter((m) => !isChangeEntry(m));
}

async function pair(tag: string) {
  const sfx = `${tag}${Date.now().toString(36)}`;
  const alice = await member(`a_${sfx}`);
  const bob = await member(`b_${sfx}`);
  const dm = await alice.client.createDirectByUsername(`b_${sfx}`);
  const a = await alice.client.open(dm.id);
  const b = await bob.client.open(dm.id);
  await until(() => a.state === "open" && b.state === "open", 10_000, "both open");
  return { alice, bob, a, b, id: dm.id };
}

const bySeq = (c: Conversation, seq: number) => c.messages.find((m) => m.seq === seq);

it("edit, react, reply and delete reach the other client live, as `updated`, never as new messages", async () => {
  const { alice, bob, a, b, id } = await pair("l");
  expect(a.protocol).toBe(2);
  expect(a.supportsChanges).toBe(true);
  const bobNew: ChatMessage[] = [];
  const bobUpdated: ChatMessage[] = [];
  b.on("message", (m) => bobNew.push(m));
  b.on("updated", (m) => bobUpdated.push(m));

  await a.send("helo wrld");
  await until(() => bySeq(b, 1), 10_000, "bob has 1");
  await a.edit(1, "hello world");
  await until(() => bySeq(b, 1)?.body === "hello world", 10_000, "bob sees the edit");
  expect(bySeq(b, 1)!.edited).toMatchObject({ version: 2 });
  // Alice's own view changes when her edit comes back in the stream, which may be after bob's.
  await until(() => bySeq(a, 1)?.body === "hello world", 10_000, "alice's edit comes back to her");

  await b.react(1, "👍");
  await until(() => bySeq(a, 1)?.reactions?.[0]?.count === 1, 10_000, "alice sees the reaction");
  expect(bySeq(a, 1)!.reactions).toEqual([{ emoji: "👍", count: 1, me: false }]);
  await until(() => bySeq(b, 1)?.reactions?.[0]?.me === true, 10_000, "bob's own reaction is `me`");

  await b.send("hi back", { replyTo: 1, mentions: [alice.client.auth.user!.id] });
  const reply = await until(() => a.messages.find((m) => m.body === "hi back"), 10_000, "alice has the reply");
  expect(reply.replyTo).toMatchObject({ seq: 1, quote: "hello world" });
  expect(reply.mentions).toEqual([alice.client.auth.user!.id]);
  await until(() => bySeq(a, 1)?.replies?.count === 1 && bySeq(b, 1)?.replies?.count === 1, 10_000, "replies counted");
  const thread = await a.thread(1);
  expect(thread.messages.map((m) => m.body)).toEqual(["hi back"]);
  expect(thread.parent.replies?.count).toBe(1);
  const who = await a.reactionsOf(1);
  expect(who.reactions).toEqual([{ emoji: "👍", count: 1, userIds: [bob.client.auth.user!.id] }]);

  await a.deleteMessage(1);
  await until(() => bySeq(b, 1)?.deleted && bySeq(a, 1)?.deleted, 10_000, "both see the tombstone");
  expect(b.messages.find((m) => m.body === "hi back")!.replyTo).toMatchObject({ seq: 1, quote: "", deleted: true });
  expect(bySeq(b, 1)!.body).toBe("");
  expect(bySeq(b, 1)!.reactions).toBeUndefined();

  // A refused change fails like a send: dropped from the outbox, status `failed`.
  const statuses: StatusChange[] = [];
  b.on("status", (s) => statuses.push(s));
  const refused = await b.react(1, "🎉");
  await until(() => statuses.some((s) => s.clientMsgId === refused.clientMsgId && s.status === "failed"), 10_000, "refused");
  expect(statuses.find((s) => s.status === "failed")!.error!.code).toBe("message_deleted");
  expect(b.pendingChanges).toEqual([]);
  expect(b.failedChanges.has(refused.clientMsgId)).toBe(true);

  expect(bobNew.map((m) => m.body)).toEqual(["helo wrld", "hi back"]);
  expect(bobUpdated.every((m) => !m.change)).toBe(true);
  expect(a.messages).toEqual(await history(alice.client, id));
  expect(b.messages).toEqual(await history(bob.client, id));
  alice.client.close();
  bob.client.close();
});

it("an edit and a reaction made offline are applied once when back online, also when resent", async () => {
  const { alice, bob, a, b, id } = await pair("o");
  await a.send("from alice");
  await until(() => b.lastSeq === 1, 10_000, "alice's message is seq 1"); // then bob's is seq 2, whatever the timing
  await b.send("from bob, with a tpyo");
  await until(() => a.lastSeq === 2 && b.lastSeq === 2, 10_000, "both have 2");

  bob.net.cut();
  await until(() => b.state !== "open", 5_000, "bob offline");
  const edit = await b.edit(2, "from bob, fixed");
  const react = await b.react(1, "🎉");
  expect(b.pendingChanges.map((i) => i.change!.type)).toEqual(["edit", "react"]);
  await new Promise((r) => setTimeout(r, 200));
  expect(bySeq(a, 2)!.body).toBe("from bob, with a tpyo");

  bob.net.restore();
  await until(() => b.pendingChanges.length === 0 && a.lastSeq === 4, 10_000, "both applied");
  expect(bySeq(a, 2)!.body).toBe("from bob, fixed");
  expect(bySeq(a, 1)!.reactions).toEqual([{ emoji: "🎉", count: 1, me: false }]);

  // As if the acks never reached storage: both are resent with the same clientMsgIds and stored nothing new.
  await bob.client.outbox.add(edit);
  await bob.client.outbox.add(react);
  b.reconnect();
  await until(() => b.pendingChanges.length === 0, 10_000, "resent and settled");
  await new Promise((r) => setTimeout(r, 200));
  const entries = (await bob.client.http.request<HistoryPage>("GET", `/v1/conversations/${id}/messages`, { query: { after: 0 } })).messages.filter(isChangeEntry);
  expect(entries.map((e) => e.change.type)).toEqual(["edit", "reaction"]);
  expect(a.lastSeq).toBe(4);
  expect(b.lastSeq).toBe(4);
  expect(a.messages).toEqual(await history(alice.client, id));
  expect(b.messages).toEqual(await history(bob.client, id));
  alice.client.close();
  bob.client.close();
});

it("a client that resumes with `since` ends in the state history reads: new messages in their current state, then older entries", async () => {
  const { alice, bob, a, b, id } = await pair("r");
  await a.send("held by bob");
  await until(() => b.lastSeq === 1, 10_000, "bob has 1");

  bob.net.cut();
  await until(() => b.state !== "open", 5_000, "bob offline");
  // While bob is away: a message he does not hold yet, changed several times, replied to; and his held one changed.
  await a.send("new while away");
  await until(() => a.lastSeq === 2, 10_000, "2");
  await a.edit(2, "new while away, edited once");
  await a.edit(2, "new while away, edited twice");
  await a.react(2, "👍");
  await a.react(2, "❤️");
  await a.react(2, "👍", false);
  await a.send("a reply in the thread", { replyTo: 2 });
  await a.edit(1, "held by bob, edited");
  await a.react(1, "🎉");
  await a.send("to be deleted");
  const doomed = (await until(() => a.messages.find((m) => m.body === "to be deleted"), 10_000, "alice done")).seq;
  await a.deleteMessage(doomed);
  await until(() => a.pendingChanges.length === 0 && bySeq(a, doomed)?.deleted, 10_000, "deleted");

  const updated: number[] = [];
  const fresh: number[] = [];
  b.on("updated", (m) => updated.push(m.seq));
  b.on("message", (m) => fresh.push(m.seq));
  bob.net.restore();
  await until(() => b.lastSeq === a.lastSeq && b.state === "open", 10_000, "bob caught up");
  const resumed = new URL(bob.net.urls.at(-1)!).searchParams;
  expect(resumed.get("since")).toBe("1");
  expect(resumed.get("v")).toBe("2");

  expect(b.messages).toEqual(await history(bob.client, id));
  expect(bySeq(b, 2)).toMatchObject({ body: "new while away, edited twice", edited: { version: 3 }, reactions: [{ emoji: "❤️", count: 1 }], replies: { count: 1 } });
  expect(bySeq(b, 1)).toMatchObject({ body: "held by bob, edited", reactions: [{ emoji: "🎉", count: 1 }] });
  expect(b.messages.map((m) => m.body)).toEqual(["held by bob, edited", "new while away, edited twice", "a reply in the thread", ""]);
  expect(fresh.length).toBe(3); // messages 2, the reply and the deleted one; never a change entry
  expect(updated).toContain(1);
  expect(a.messages).toEqual(await history(alice.client, id));
  alice.client.close();
  bob.client.close();
});
