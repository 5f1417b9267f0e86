// Live notifications: a member online only on the user socket (the inbox, another chat) hears every new
// message at once, as an inbox_update, without the user object storing anything per message. Large
// groups are fanned out on read: the inbox is right whenever it is read, and listeners hear live events.
import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, api, createDirect, createGroup, mintUser, recordSql, sendRest, type TestUser } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const userStub = (u: TestUser) => env.USERS.get(env.USERS.idFromName(u.id));
const lastSeqs = (s: TestSocket, conversationId: string) =>
  s.frames.filter((f: any) => f.type === "inbox_update" && f.entry.conversationId === conversationId).map((f: any) => f.entry.lastSeq as number);

it("direct: a member on the user socket only gets one inbox_update per message, 20 ms apart, and stores at most one per second", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const dm = (await createDirect(alice, bob)).body.conversation;
  const bobUser = await TestSocket.user(bob);
  await bobUser.nextAny((f) => f.type === "hello");
  const aliceConv = await TestSocket.conversation(dm.id, alice);
  await aliceConv.next("caught_up");
  aliceConv.send({ type: "send", clientMsgId: "first", body: "first" });
  await bobUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 1);
  await sleep(1_100); // past the stored fan-out's first run

  const stop = await recordSql(userStub(bob));
  for (let i = 2; i <= 11; i++) {
    aliceConv.send({ type: "send", clientMsgId: `m${i}`, body: `message ${i}` });
    await sleep(20);
  }
  const last = await bobUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 11, 3_000);
  const writes = (await stop()).filter((q) => /^(INSERT|UPDATE|DELETE)/.test(q) && q.includes("inbox"));
  // Every message was told on its own, in order, with its preview and the unread count of that moment.
  const seen = [...new Set(lastSeqs(bobUser, dm.id))];
  expect(seen.filter((s) => s >= 2)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  expect(last).toMatchObject({ totalUnread: 11, entry: { unread: 11, lastMessage: { seq: 11, senderId: alice.id, preview: "message 11" } } });
  // ~200 ms of messages: the stored inbox was written by the coalesced fan-out (at most twice), not per message.
  expect(writes.length).toBeLessThanOrEqual(2);
  // A read shows what the socket showed, and the stored fan-out that follows changes nothing (no regression).
  const page = (await api("GET", "/v1/me/conversations", { token: bob.token })).body;
  expect(page.conversations[0]).toMatchObject({ conversationId: dm.id, lastSeq: 11, unread: 11 });
  await sleep(1_200);
  expect(lastSeqs(bobUser, dm.id).at(-1)).toBe(11);
  [bobUser, aliceConv].forEach((s) => s.close());
});

it("the sender's own other devices see their message as read, and a group of 100 is told per message", async () => {
  const owner = await mintUser();
  const members = await Promise.all(Array.from({ length: 99 }, () => mintUser()));
  const g = await createGroup(owner, members, "hundred");
  const watcher = members[42]!;
  const watcherUser = await TestSocket.user(watcher);
  const ownerUser = await TestSocket.user(owner);
  await watcherUser.nextAny((f) => f.type === "hello");
  await ownerUser.nextAny((f) => f.type === "hello");
  // The new group reaches the inboxes through the stored fan-out, a chunk of members at a time (it yields to
  // live traffic between chunks): live events are about conversations the inbox already lists.
  await watcherUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).conversationId === g.id, 10_000);
  await sleep(1_100);
  for (let i = 1; i <= 5; i++) {
    await sendRest(owner, g.id, `g${i}`, `group ${i}`);
    await sleep(30);
  }
  await watcherUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 5, 3_000);
  expect([...new Set(lastSeqs(watcherUser, g.id))].filter((s) => s > 0)).toEqual([1, 2, 3, 4, 5]);
  const mine = await ownerUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 5, 3_000);
  expect(mine.entry).toMatchObject({ unread: 0, readSeq: 5, lastMessage: { senderId: owner.id, preview: "group 5" } });
  [watcherUser, ownerUser].forEach((s) => s.close());
}, 30_000);

it("large groups are fanned out on read: the inbox is current when read, and listeners hear messages live", async () => {
  const owner = await mintUser();
  const members = await Promise.all(Array.from({ length: 150 }, () => mintUser()));
  const g = await createGroup(owner, members, "large");
  const [offline, online] = [members[7]!, members[99]!];
  // The group reaches each inbox once (membership); messages do not wake every member's object.
  const listed = async (u: TestUser) =>
    (await api("GET", "/v1/me/conversations", { token: u.token })).body.conversations.find((c: any) => c.conversationId === g.id);
  for (let t = 0; t < 100 && !(await listed(offline)); t++) await sleep(100);
  const onlineUser = await TestSocket.user(online);
  await onlineUser.nextAny((f) => f.type === "hello");
  // The user object registers for live events of its large groups when a user socket opens; an inbox read
  // asks the large groups again at most once a second.
  await sleep(1_100);

  for (let i = 1; i <= 3; i++) await sendRest(owner, g.id, `l${i}`, `large ${i}`);
  // Read right away: no waiting for a queue.
  expect(await listed(offline)).toMatchObject({ lastSeq: 3, unread: 3, lastMessage: { seq: 3, preview: "large 3" } });
  const live = await onlineUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).conversationId === g.id && (f.entry as any).lastSeq === 3);
  expect(live.entry).toMatchObject({ unread: 3, lastMessage: { senderId: owner.id, preview: "large 3" } });
  expect(live.totalUnread).toBe(3);
  // A burst: listeners hear the newest message only, but a message that mentions them is never coalesced away.
  const ownerSocket = await TestSocket.conversation(g.id, owner, { v: 2 });
  await ownerSocket.next("caught_up");
  ownerSocket.send({
    type: "send_batch",
    messages: Array.from({ length: 20 }, (_, i) => ({ clientMsgId: `burst${i}`, body: `burst ${i}`, ...(i === 4 ? { mentions: [online.id] } : {}) })),
  });
  const mentioned = await onlineUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).conversationId === g.id && (f.entry as any).lastMessage?.seq === 8);
  expect(mentioned.entry).toMatchObject({ unreadMentions: 1, lastMessage: { preview: "burst 4" } });
  await onlineUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).conversationId === g.id && (f.entry as any).lastSeq === 23);
  ownerSocket.close();
  // Reading is reported through the inbox at once, and a removed member's inbox loses the group.
  expect((await api("POST", `/v1/conversations/${g.id}/receipts`, { token: offline.token, body: { read: 23 } })).status).toBeLessThan(300);
  await sleep(1_000); // an inbox read asks large groups again at most once a second
  expect(await listed(offline)).toMatchObject({ lastSeq: 23, unread: 0 });
  expect((await api("DELETE", `/v1/conversations/${g.id}/members/${online.id}`, { token: owner.token })).status).toBeLessThan(300);
  await onlineUser.nextAny((f) => f.type === "inbox_remove" && f.conversationId === g.id);
  await sendRest(owner, g.id, "after", "after removal");
  await sleep(300);
  expect(lastSeqs(onlineUser, g.id).every((s) => s <= 23)).toBe(true);
  onlineUser.close();
}, 40_000);
