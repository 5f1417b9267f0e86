// The per-user features through the SDK against the real server (issue 3): inbox with unread counts,
// pending -> sent -> delivered -> read, typing, presence; and consent settings and blocks (issue 11).
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ApiError, ChatClient, MemoryOutboxStorage, type InboxEntry, type MessageStatus, type TypingUser } from "../src/index";
import { Network, until } from "./net";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

async function user(name: string, net = new Network()) {
  const client = new ChatClient({ baseUrl: server.url, WebSocket: net.WebSocket, storage: new MemoryOutboxStorage(), backoff: { baseMs: 20, capMs: 200 } });
  await client.auth.signup(name, "correct horse battery");
  return client;
}

it("inbox unread counts, pending -> sent -> delivered -> read, typing and presence", async () => {
  const sfx = Date.now().toString(36);
  const alice = await user(`ra_${sfx}`);
  const bobNet = new Network();
  const bob = await user(`rb_${sfx}`, bobNet);
  const bobId = (await bob.me()).id;
  alice.connect();
  bob.connect();
  const dm = await alice.createDirect(bobId);
  const a = await alice.open(dm.id);
  await until(() => a.state === "open", 10_000, "alice open");

  const statuses: MessageStatus[] = [];
  a.on("status", (s) => statuses.push(s.status));
  await a.send("one");
  await a.send("two");
  await until(() => a.lastSeq === 2, 10_000, "acked");

  // Bob has not opened the conversation: his inbox says 2 unread.
  let entry: InboxEntry | undefined;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const page = await bob.inbox();
    entry = page.conversations.find((c) => c.conversationId === dm.id);
    if (entry?.unread === 2 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(entry?.unread).toBe(2);
  expect(entry?.lastMessage?.preview).toBe("two");
  expect(bob.inboxState.totalUnread).toBeGreaterThanOrEqual(2);

  // Presence: alice follows bob, who is connected (user socket).
  alice.subscribePresence([bobId]);
  await until(() => alice.presenceOf(bobId)?.online === true, 10_000, "bob online for alice");

  // Bob opens: the SDK reports delivered by itself; then he reads.
  const b = await bob.open(dm.id);
  await until(() => a.statusOf(a.messages[1]!) === "delivered", 10_000, "delivered tick");
  b.markRead();
  await until(() => a.statusOf(a.messages[1]!) === "read", 10_000, "read tick");
  expect(statuses.filter((s, i) => statuses.indexOf(s) === i)).toEqual(["pending", "sent", "delivered", "read"]);
  expect(a.receiptCounts(2)).toEqual({ of: 1, delivered: 1, read: 1 });
  await until(() => bob.inboxState.entries.find((e) => e.conversationId === dm.id)?.unread === 0, 10_000, "unread cleared");

  // A fresh device of alice's learns the current receipts on open (frames only carry changes).
  const alice2Net = new Network();
  const alice2 = new ChatClient({ baseUrl: server.url, WebSocket: alice2Net.WebSocket, storage: new MemoryOutboxStorage(), session: alice.auth.session });
  const a2 = await alice2.open(dm.id);
  await until(() => a2.messages.length === 2 && a2.statusOf(a2.messages[1]!) === "read", 10_000, "read on a second device");

  // Presence rides on the user socket (protocol 5.1, 12.4): bob's conversation socket says presence=0, so it
  // wakes nothing in his user object; alice2 has no user socket, so her conversation socket counts.
  const conversationUrl = (urls: string[]) => new URL(urls.find((u) => u.includes(`/conversations/${dm.id}/ws`))!);
  expect(conversationUrl(bobNet.urls).searchParams.get("presence")).toBe("0");
  expect(conversationUrl(alice2Net.urls).searchParams.get("presence")).toBeNull();

  // Typing: shown to bob, expires by itself.
  const seen: TypingUser[][] = [];
  b.on("typing", (t) => seen.push(t));
  a.setTyping(true);
  await until(() => b.typing.length === 1, 5_000, "typing shown");
  expect(b.typing[0]!.username).toBe(`ra_${sfx}`);
  // A message clears the indicator for the receiver...
  await a.send("three");
  await until(() => b.lastSeq === 3 && b.typing.length === 0, 5_000, "typing cleared by the message");
  // ...and typing again right away (inside the server's 3 s throttle window) is deferred, not lost.
  a.setTyping(true);
  await until(() => b.typing.length === 1, 5_000, "typing shown again after a message");
  a.setTyping(false);
  await until(() => b.typing.length === 0, 8_000, "typing cleared");

  alice.close();
  alice2.close();
  bob.close();
});

async function refusal(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected the call to be refused");
}

// Protocol 13: the setting decides who may add you, a refusal names the users in ApiError.userIds, and a
// block stops direct messages until lifted.
it("consent settings and blocks through the SDK", async () => {
  const sfx = Date.now().toString(36);
  const [me, stranger] = [await user(`ca_${sfx}`), await user(`cb_${sfx}`)];
  const [meId, strangerId] = [(await me.me()).id, (await stranger.me()).id];
  // The test server lets anyone add anyone by default; choose "contacts" explicitly.
  expect(await me.updateSettings({ groupAdds: "contacts" })).toEqual({ groupAdds: "contacts" });
  expect(await me.settings()).toEqual({ groupAdds: "contacts" });
  expect(await refusal(stranger.createGroup("spam", [meId]))).toMatchObject({ code: "consent_required", status: 403, userIds: [meId] });

  const dm = await stranger.createDirect(meId);
  await me.block(strangerId);
  expect((await me.blocks()).map((b) => b.userId)).toEqual([strangerId]);
  expect(await refusal(stranger.createDirect(meId))).toMatchObject({ code: "blocked", status: 403 });
  await me.unblock(strangerId);
  expect(await me.blocks()).toEqual([]);
  expect((await stranger.createDirect(meId)).id).toBe(dm.id);
});
