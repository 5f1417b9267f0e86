// The inbox counts messages, never change entries (docs/protocol.md 15.6, 12.2): the user object applied to
// summaries as conversation objects send them (new code with counts, old code without), in any order. The
// end-to-end path through real edits, deletes, reactions and mentions is in
// test/inbox-follows-edits-deletes-reactions-and-mentions.test.ts.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationSummary, FanoutTarget, PushJob } from "../src/objects/shared/updates";
import { recordingInbox } from "./inbox-helpers";
import { TestSocket, api, mintUser, uniq, type TestUser } from "./helpers";

const userStub = (u: TestUser) => env.USERS.get(env.USERS.idFromName(u.id));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Last = NonNullable<ConversationSummary["lastMessage"]>;

const OTHER = "u_someone_else";
const msg = (seq: number, preview: string, more: Partial<Last> = {}): Last => ({ seq, senderId: OTHER, preview, createdAt: 1_000 + seq, ...more });

function summary(conversationId: string, lastSeq: number, lastCount: number | undefined, lastMessage: Last | null): ConversationSummary {
  return { conversationId, type: "group", title: "t", directMembers: null, receipts: [], lastSeq, lastMessage, ...(lastCount === undefined ? {} : { lastCount }) };
}

function target(user: TestUser, readSeq: number, counts?: { readCount: number; mentions?: number }): FanoutTarget {
  return { userId: user.id, deliveredSeq: readSeq, readSeq, joinedAt: 1_000, ...(counts ?? {}) };
}

async function entryOf(user: TestUser, conversationId: string) {
  const page = (await api("GET", "/v1/me/conversations", { token: user.token })).body;
  return { entry: page.conversations.find((c: any) => c.conversationId === conversationId), totalUnread: page.totalUnread as number };
}

const updates = (s: TestSocket, conversationId: string) => s.frames.filter((f: any) => f.type === "inbox_update" && f.entry.conversationId === conversationId) as any[];

it("unread counts messages: reactions send nothing, an edit of the preview updates it, a delete shows the message before", async () => {
  const me = await mintUser();
  const c = uniq("g");
  const socket = await TestSocket.user(me);
  await socket.nextAny((f) => f.type === "hello");
  const stub = userStub(me);

  await stub.conversationUpdate(summary(c, 3, 3, msg(3, "three")), target(me, 0, { readCount: 0 }));
  await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).conversationId === c);
  // Two reactions: the position moves, nothing shown changes, so no frame; still 3 unread.
  await stub.conversationUpdate(summary(c, 5, 3, msg(3, "three")), target(me, 0, { readCount: 0 }));
  expect(await entryOf(me, c)).toMatchObject({ totalUnread: 3, entry: { lastSeq: 5, unread: 3, unreadMentions: 0, lastMessage: { seq: 3, preview: "three" } } });
  await sleep(50);
  expect(updates(socket, c)).toHaveLength(1);
  // An edit of the newest message: the preview follows, with when it was edited; unread does not move.
  await stub.conversationUpdate(summary(c, 6, 3, msg(3, "three, fixed", { editedAt: 5_000 })), target(me, 0, { readCount: 0 }));
  const edited = await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastMessage?.preview === "three, fixed");
  expect(edited).toMatchObject({ totalUnread: 3, entry: { lastSeq: 6, unread: 3, lastMessage: { seq: 3, editedAt: 5_000 } } });
  // The newest message deleted: the one before it is the preview.
  await stub.conversationUpdate(summary(c, 7, 3, msg(2, "two")), target(me, 0, { readCount: 0 }));
  const deleted = await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 7);
  expect(deleted.entry.lastMessage).toEqual({ seq: 2, senderId: OTHER, preview: "two", createdAt: 1_002 });
  // A late summary from before (any order, any number of times) changes nothing.
  await stub.conversationUpdate(summary(c, 6, 3, msg(3, "three, fixed", { editedAt: 5_000 })), target(me, 0, { readCount: 0 }));
  expect((await entryOf(me, c)).entry).toMatchObject({ lastSeq: 7, lastMessage: { seq: 2, preview: "two" } });
  // Read up to the last message (seq 3), not the change entries after it: nothing is unread.
  await stub.conversationUpdate(summary(c, 7, 3, msg(2, "two")), target(me, 3, { readCount: 3 }));
  expect(await entryOf(me, c)).toMatchObject({ totalUnread: 0, entry: { lastSeq: 7, readSeq: 3, unread: 0 } });
  // Every message deleted: no preview.
  await stub.conversationUpdate(summary(c, 9, 3, null), target(me, 3, { readCount: 3 }));
  expect((await entryOf(me, c)).entry).toMatchObject({ lastSeq: 9, lastMessage: null, unread: 0 });
  socket.close();
});

it("mentions count separately, never above unread; live events of change entries do not count", async () => {
  const me = await mintUser();
  const c = uniq("g");
  const socket = await TestSocket.user(me);
  await socket.nextAny((f) => f.type === "hello");
  const stub = userStub(me);
  await stub.conversationUpdate(summary(c, 4, 4, msg(4, "@me four", { mentions: [me.id] })), target(me, 1, { readCount: 1, mentions: 2 }));
  expect((await entryOf(me, c)).entry).toMatchObject({ unread: 3, unreadMentions: 2 });

  // Live: a new message mentioning everyone, then a reaction-free edit of it (a change entry at seq 6).
  await stub.conversationLive([{ ...summary(c, 5, 5, msg(5, "@all five", { mentionsAll: true })) }]);
  const live = await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 5);
  expect(live).toMatchObject({ totalUnread: 4, entry: { unread: 4, unreadMentions: 3, lastMessage: { seq: 5, preview: "@all five" } } });
  await stub.conversationLive([summary(c, 6, 5, msg(5, "@all five!", { mentionsAll: true, editedAt: 9_000 }))]);
  const edit = await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 6);
  expect(edit).toMatchObject({ totalUnread: 4, entry: { unread: 4, unreadMentions: 3, lastMessage: { seq: 5, preview: "@all five!", editedAt: 9_000 } } });
  // A message of my own (from another device): sending marks read, so mentions before it are read too.
  await stub.conversationLive([summary(c, 7, 6, { ...msg(7, "mine"), senderId: me.id })]);
  const own = await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 7);
  expect(own).toMatchObject({ totalUnread: 0, entry: { unread: 0, unreadMentions: 0, readSeq: 7 } });
  // The inbox read stores what the sockets saw; the fan-out that follows agrees.
  expect((await entryOf(me, c)).entry).toMatchObject({ lastSeq: 7, unread: 0, unreadMentions: 0, lastMessage: { seq: 7, preview: "mine" } });
  await stub.conversationUpdate(summary(c, 7, 6, { ...msg(7, "mine"), senderId: me.id }), target(me, 7, { readCount: 6, mentions: 0 }));
  expect((await entryOf(me, c)).totalUnread).toBe(0);
  socket.close();
});

it("rollout: summaries without counts (old conversation code) count seqs; counts at the same position fill in", async () => {
  const me = await mintUser();
  const c = uniq("g");
  const stub = userStub(me);
  await stub.conversationUpdate(summary(c, 5, undefined, msg(5, "five")), target(me, 1));
  expect((await entryOf(me, c)).entry).toMatchObject({ lastSeq: 5, unread: 4, unreadMentions: 0, lastMessage: { seq: 5 } });
  // The conversation now runs new code: same position, counted (seq 3 was a reaction).
  await stub.conversationUpdate(summary(c, 5, 4, msg(5, "five")), target(me, 1, { readCount: 1 }));
  expect((await entryOf(me, c)).entry).toMatchObject({ lastSeq: 5, unread: 3 });
  // And back to old code on another instance mid-deploy, with a newer position: seqs again, never stuck.
  await stub.conversationUpdate(summary(c, 6, undefined, msg(6, "six")), target(me, 1));
  expect((await entryOf(me, c)).entry).toMatchObject({ lastSeq: 6, unread: 5, lastMessage: { seq: 6, preview: "six" } });
});

it("push: only a new unread message from someone else, never a change entry; `mentioned` when it mentions the user", async () => {
  const me = await mintUser();
  const c = uniq("g");
  await runInDurableObject(userStub(me), async (_o, state) => {
    const jobs: PushJob[] = [];
    const inbox = recordingInbox(state, jobs);
    const t = (readSeq: number, readCount: number) => target(me, readSeq, { readCount });

    await inbox.update(summary(c, 1, 1, msg(1, "one")), t(0, 0));
    expect(jobs).toEqual([{ userId: me.id, conversationId: c, seq: 1, senderId: OTHER, preview: "one", unread: 1, totalUnread: 1, createdAt: 1_001 }]);
    await inbox.update(summary(c, 2, 1, msg(1, "one")), t(0, 0)); // a reaction
    await inbox.update(summary(c, 3, 1, msg(1, "one!", { editedAt: 7 })), t(0, 0)); // an edit
    expect(jobs).toHaveLength(1);
    await inbox.update(summary(c, 4, 2, msg(4, "@me", { mentions: ["u_x", me.id] })), t(0, 0));
    expect(jobs[1]).toMatchObject({ seq: 4, unread: 2, mentioned: true });
    await inbox.update(summary(c, 5, 3, msg(5, "@all", { mentionsAll: true })), t(0, 0));
    expect(jobs[2]).toMatchObject({ seq: 5, unread: 3, mentioned: true });
    await inbox.update(summary(c, 6, 4, msg(6, "@someone", { mentions: ["u_x"] })), t(0, 0));
    expect(jobs[3]!.mentioned).toBeUndefined();
    await inbox.update(summary(c, 7, 4, msg(5, "@all", { mentionsAll: true })), t(0, 0)); // the newest deleted
    await inbox.update(summary(c, 8, 5, { ...msg(8, "mine"), senderId: me.id }), t(8, 5)); // my own
    await inbox.update(summary(c, 9, 5, { ...msg(8, "mine"), senderId: me.id }), t(8, 5)); // a reaction to it
    expect(jobs).toHaveLength(4);
  });
});
