// The inbox through real changes (docs/protocol.md 15.6, 12.2, 12.9): unread counts, previews and push
// count new messages from others only. Edits, deletes and reactions are change entries of the stream: they
// never count; an edit of the newest message updates the preview (stored and live); a deleted newest
// message is not the preview; mentions are counted apart and reset on read; a push says `mentioned`.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { PushJob } from "../src/objects/shared/updates";
import { recordingInbox } from "./inbox-helpers";
import { TestSocket, api, createGroup, mintUser, uniq, type TestUser } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function entryOf(user: TestUser, conversationId: string) {
  const page = (await api("GET", "/v1/me/conversations", { token: user.token })).body;
  return { ...page.conversations.find((c: any) => c.conversationId === conversationId), totalUnread: page.totalUnread as number };
}

async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`not reached: ${JSON.stringify(v).slice(0, 600)}`);
    await sleep(50);
  }
}

async function send(user: TestUser, conversationId: string, body: string, more: Record<string, unknown> = {}): Promise<number> {
  const r = await api("POST", `/v1/conversations/${conversationId}/messages`, { token: user.token, body: { clientMsgId: uniq("c"), body, ...more } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.ack?.seq ?? r.body.seq;
}
async function edit(user: TestUser, conversationId: string, seq: number, body: string) {
  const r = await api("PATCH", `/v1/conversations/${conversationId}/messages/${seq}`, { token: user.token, body: { clientMsgId: uniq("e"), body } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}
async function remove(user: TestUser, conversationId: string, seq: number) {
  const r = await api("DELETE", `/v1/conversations/${conversationId}/messages/${seq}`, { token: user.token });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}
async function react(user: TestUser, conversationId: string, seq: number, emoji = "👍") {
  const r = await api("PUT", `/v1/conversations/${conversationId}/messages/${seq}/reactions/${encodeURIComponent(emoji)}`, { token: user.token });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

const inboxUpdates = (s: TestSocket, conversationId: string) =>
  s.frames.filter((f: any) => f.type === "inbox_update" && f.entry.conversationId === conversationId).map((f: any) => f.entry);

it("unread ignores edits, deletes and reactions; an edit of the newest message updates the preview, a delete shows the one before", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b], "changes");
  const bUser = await TestSocket.user(b);
  await bUser.nextAny((f) => f.type === "hello");
  const one = await send(a, g.id, "one");
  const two = await send(a, g.id, "two");
  await eventually(() => entryOf(b, g.id), (e) => e.unread === 2 && e.lastMessage?.preview === "two");

  // Reactions (both ways) and an edit of an older message: nothing b's inbox shows changes.
  await react(b, g.id, two);
  await react(a, g.id, one, "🎉");
  await edit(a, g.id, one, "one, edited");
  const quiet = await eventually(() => entryOf(b, g.id), (e) => e.lastSeq === 5);
  expect(quiet).toMatchObject({ unread: 2, unreadMentions: 0, totalUnread: 2, lastMessage: { seq: two, preview: "two" } });
  expect(inboxUpdates(bUser, g.id).every((e) => e.unread <= 2)).toBe(true);

  // An edit of the newest message: live at once, then stored.
  await edit(a, g.id, two, "two, fixed");
  const live = await bUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastMessage?.preview === "two, fixed", 2_000);
  expect(live).toMatchObject({ totalUnread: 2, entry: { unread: 2, lastMessage: { seq: two, senderId: a.id } } });
  expect(live.entry.lastMessage.editedAt).toBeGreaterThan(0);
  await eventually(() => entryOf(b, g.id), (e) => e.lastSeq === 6);
  expect(await entryOf(b, g.id)).toMatchObject({ unread: 2, lastMessage: { seq: two, preview: "two, fixed" } });

  // The newest message deleted: the one before it, as edited, is the preview at once; the deleted message is not
  // unread any more once the stored update comes (the live event carries no per-member count).
  await remove(a, g.id, two);
  const back = await bUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastMessage?.seq === one, 2_000);
  expect(back.entry).toMatchObject({ lastMessage: { seq: one, preview: "one, edited" } });
  await eventually(() => entryOf(b, g.id), (e) => e.lastSeq === 7 && e.unread === 1);
  expect(await entryOf(b, g.id)).toMatchObject({ unread: 1, totalUnread: 1, lastMessage: { seq: one, preview: "one, edited" } });

  // Read up to the last message, not the change entries after it: nothing is unread (the conversation counts).
  bUser.send({ type: "receipt", conversationId: g.id, read: two });
  await eventually(() => entryOf(b, g.id), (e) => e.readSeq === two && e.unread === 0 && e.totalUnread === 0);
  // A reaction after that is not unread either.
  await react(a, g.id, one);
  await eventually(() => entryOf(b, g.id), (e) => e.lastSeq === 8);
  expect(await entryOf(b, g.id)).toMatchObject({ unread: 0, totalUnread: 0 });
  // Nothing shown as unread ever went above the two messages.
  expect(inboxUpdates(bUser, g.id).every((e) => e.unread <= 2)).toBe(true);
  bUser.close();
});

it("mentions are counted apart (live and stored), reset on read, and drop when the message is deleted", async () => {
  const [a, b, c] = [await mintUser(), await mintUser(), await mintUser()];
  const g = await createGroup(a, [b, c], "mentions");
  const bUser = await TestSocket.user(b);
  await bUser.nextAny((f) => f.type === "hello");
  await send(a, g.id, "hello all");
  await send(a, g.id, "@b look", { mentions: [b.id] });
  const all = await send(a, g.id, "@everyone", { mentionsAll: true });
  await send(c, g.id, "@a only", { mentions: [a.id] });
  const live = await bUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 4, 2_000);
  expect(live.entry).toMatchObject({ unread: 4, unreadMentions: 2 });
  await eventually(() => entryOf(b, g.id), (e) => e.unreadMentions === 2 && e.unread === 4);
  // a was mentioned once after its own messages.
  expect(await eventually(() => entryOf(a, g.id), (e) => e.lastSeq === 4)).toMatchObject({ unread: 1, unreadMentions: 1 });

  // A deleted mention no longer counts (the next fan-out).
  await remove(a, g.id, all);
  await eventually(() => entryOf(b, g.id), (e) => e.lastSeq === 5 && e.unreadMentions === 1);
  // Reading over the user socket resets both at once.
  bUser.send({ type: "receipt", conversationId: g.id, read: 5 });
  const read = await bUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).readSeq === 5, 2_000);
  expect(read).toMatchObject({ totalUnread: 0, entry: { unread: 0, unreadMentions: 0 } });
  // c's own message read the @everyone before it.
  expect(await entryOf(c, g.id)).toMatchObject({ unread: 0, unreadMentions: 0 });
  bUser.close();
});

it("push: a new message mentioning the user says `mentioned`; edits and reactions push nothing", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b], "push");
  const conversation = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(g.id));
  const position = async () => {
    const r = await conversation.inboxPosition(b.id, false);
    if (!r.ok) throw new Error(r.error.message);
    return r.value;
  };
  // b's inbox, with a push queue that records: a user object of its own, so b's real inbox does not interfere.
  const host = env.USERS.get(env.USERS.idFromName(uniq("host")));
  const jobs: PushJob[] = [];
  const step = async () => {
    const { summary, target } = await position();
    await runInDurableObject(host, async (_o, state) => {
      await recordingInbox(state, jobs).update(summary, target);
    });
  };
  const first = await send(a, g.id, "plain");
  await step();
  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatchObject({ userId: b.id, seq: first, preview: "plain", unread: 1 });
  expect(jobs[0]!.mentioned).toBeUndefined();
  await react(a, g.id, first);
  await step();
  await edit(a, g.id, first, "plain, edited");
  await step();
  expect(jobs).toHaveLength(1);
  const mention = await send(a, g.id, "@b", { mentions: [b.id] });
  await step();
  expect(jobs[1]).toMatchObject({ seq: mention, unread: 2, mentioned: true });
  const everyone = await send(a, g.id, "@all", { mentionsAll: true });
  await step();
  expect(jobs[2]).toMatchObject({ seq: everyone, unread: 3, mentioned: true });
  await remove(a, g.id, everyone);
  await step();
  expect(jobs).toHaveLength(3);
});
