import { describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, api, createDirect, createGroup, mintUser, sendRest, type TestUser } from "./helpers";

async function inbox(user: TestUser, query = "") {
  const r = await api("GET", `/v1/me/conversations${query}`, { token: user.token });
  expect(r.status).toBe(200);
  return r.body as { conversations: any[]; nextCursor: string | null; totalUnread: number };
}

async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 8000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`not reached: ${JSON.stringify(v).slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("unread counts", () => {
  it("count others' messages after readSeq, drop on read, never count your own, and follow membership", async () => {
    const [a, b, c] = [await mintUser(), await mintUser(), await mintUser()];
    const dm = (await createDirect(a, b)).body.conversation;
    const g = await createGroup(a, [b], "g");
    for (let i = 1; i <= 3; i++) await sendRest(a, dm.id, `dm${i}`, `hello ${i}`);
    await sendRest(a, g.id, "g1", "group hello");

    const bInbox = await eventually(() => inbox(b), (v) => v.totalUnread === 4);
    const bDm = bInbox.conversations.find((x) => x.conversationId === dm.id);
    expect(bDm).toMatchObject({ type: "direct", unread: 3, lastSeq: 3, peer: { userId: a.id, username: a.username } });
    expect(bDm.lastMessage).toMatchObject({ seq: 3, senderId: a.id, preview: "hello 3" });
    // The sender has nothing unread: sending marks read up to your own message.
    const aInbox = await eventually(() => inbox(a), (v) => v.conversations.length === 2);
    expect(aInbox.totalUnread).toBe(0);

    // b reads the DM up to 2 over REST: one left.
    expect((await api("POST", `/v1/conversations/${dm.id}/receipts`, { token: b.token, body: { read: 2 } })).status).toBe(204);
    await eventually(() => inbox(b), (v) => v.totalUnread === 2);
    // Cursors never move backwards, whatever order the reports arrive in.
    await api("POST", `/v1/conversations/${dm.id}/receipts`, { token: b.token, body: { read: 1, delivered: 1 } });
    const still = await inbox(b);
    expect(still.conversations.find((x) => x.conversationId === dm.id)).toMatchObject({ readSeq: 2, deliveredSeq: 2 });
    expect(still.totalUnread).toBe(2);
    // b replies: its own message marks the DM read.
    await sendRest(b, dm.id, "reply", "hi a");
    await eventually(() => inbox(b), (v) => v.totalUnread === 1);

    // c joins the group later: history before joining is not unread.
    await api("POST", `/v1/conversations/${g.id}/members`, { token: a.token, body: { userIds: [c.id] } });
    const cInbox = await eventually(() => inbox(c), (v) => v.conversations.length === 1);
    expect(cInbox.totalUnread).toBe(0);
    await sendRest(a, g.id, "g2", "welcome c");
    await eventually(() => inbox(c), (v) => v.totalUnread === 1);
    // b leaves the group: it disappears from b's inbox, with its unread.
    await api("DELETE", `/v1/conversations/${g.id}/members/${b.id}`, { token: b.token });
    const bAfter = await eventually(() => inbox(b), (v) => !v.conversations.some((x) => x.conversationId === g.id));
    expect(bAfter.totalUnread).toBe(0);
    // A fan-out update still in flight for the old membership (queued before the removal) cannot bring it back...
    await sendRest(a, g.id, "g3", "after b left");
    const stale = { conversationId: g.id, type: "group" as const, title: "g", directMembers: null, lastSeq: 3, lastMessage: null, receipts: [] };
    await env.USERS.get(env.USERS.idFromName(b.id)).conversationUpdate(stale, { userId: b.id, deliveredSeq: 0, readSeq: 0, joinedAt: g.createdAt });
    expect((await inbox(b)).conversations.some((x) => x.conversationId === g.id)).toBe(false);
    // ...but being added again does.
    await api("POST", `/v1/conversations/${g.id}/members`, { token: a.token, body: { userIds: [b.id] } });
    const back = await eventually(() => inbox(b), (v) => v.conversations.some((x) => x.conversationId === g.id));
    expect(back.conversations.find((x) => x.conversationId === g.id)).toMatchObject({ unread: 0, lastSeq: 3 });
  });

  it("refuses cursors for conversations you are not in, and bad bodies", async () => {
    const [a, b, outsider] = [await mintUser(), await mintUser(), await mintUser()];
    const g = await createGroup(a, [b]);
    const r = await api("POST", `/v1/conversations/${g.id}/receipts`, { token: outsider.token, body: { read: 1 } });
    expect(r.status).toBe(403);
    for (const body of [{}, { read: -1 }, { read: 1.5 }, { read: "1" }]) {
      const bad = await api("POST", `/v1/conversations/${g.id}/receipts`, { token: a.token, body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
    }
  });
});

describe("inbox", () => {
  it("orders by last activity, pages with a cursor, and is pushed on the user socket", async () => {
    const me = await mintUser();
    const others = await Promise.all(Array.from({ length: 7 }, () => mintUser()));
    const ids: string[] = [];
    for (const o of others) ids.push((await createDirect(o, me)).body.conversation.id);
    const socket = await TestSocket.user(me);
    const hello = await socket.nextAny((f) => f.type === "hello");
    expect(hello).toMatchObject({ userId: me.id, protocol: 1 });
    // Activity in reverse creation order, with distinct timestamps.
    for (let i = 0; i < others.length; i++) {
      await sendRest(others[i]!, ids[i]!, `m${i}`, `message ${i}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const full = await eventually(() => inbox(me, "?limit=100"), (v) => v.totalUnread === 7);
    expect(full.conversations.map((c) => c.conversationId)).toEqual([...ids].reverse());
    const pages: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { conversations: any[]; nextCursor: string | null } = await inbox(me, `?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      pages.push(...page.conversations.map((c) => c.conversationId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toEqual([...ids].reverse());
    // The first conversation gets new activity and moves to the top, pushed in real time.
    await sendRest(others[0]!, ids[0]!, "again", "bump");
    const update = await socket.nextAny((f) => f.type === "inbox_update" && (f.entry as any).conversationId === ids[0] && (f.entry as any).lastSeq === 2);
    expect(update.totalUnread).toBe(8);
    expect(update.entry.lastMessage.preview).toBe("bump");
    expect((await inbox(me, "?limit=1")).conversations[0].conversationId).toBe(ids[0]);
    expect((await api("GET", "/v1/me/conversations?cursor=garbage!", { token: me.token })).status).toBe(400);
    expect((await api("GET", "/v1/me/conversations?limit=1000", { token: me.token })).status).toBe(400);
    socket.close();
  });
});

describe("receipts", () => {
  it("1:1: the sender sees delivered then read, pushed coalesced on its sockets, and over REST", async () => {
    const [a, b] = [await mintUser(), await mintUser()];
    const dm = (await createDirect(a, b)).body.conversation;
    const as = await TestSocket.conversation(dm.id, a);
    const au = await TestSocket.user(a);
    await as.next("caught_up");
    await au.nextAny((f) => f.type === "hello");
    for (let i = 0; i < 5; i++) as.send({ type: "send", clientMsgId: `r${i}`, body: `m${i}` });
    await as.waitForMessages(5);
    const bs = await TestSocket.conversation(dm.id, b, { since: 0 });
    await bs.waitForMessages(5);
    // b reports every message as delivered (as the SDK does), then reads up to 3.
    for (let seq = 1; seq <= 5; seq++) bs.send({ type: "receipt", delivered: seq });
    bs.send({ type: "receipt", read: 3 });
    const onConversation = await as.next("receipts", (f) => f.cursors.some((c) => c.userId === b.id && c.readSeq === 3));
    expect(onConversation.cursors.find((c) => c.userId === b.id)).toEqual({ userId: b.id, deliveredSeq: 5, readSeq: 3 });
    // Coalesced: far fewer receipt frames than reports.
    expect(as.frames.filter((f) => f.type === "receipts").length).toBeLessThan(4);
    const onUser = await au.nextAny((f) => f.type === "receipts" && (f.cursors as any[]).some((c) => c.userId === b.id && c.readSeq === 3));
    expect(onUser.conversationId).toBe(dm.id);

    const r3 = await api("GET", `/v1/conversations/${dm.id}/receipts?seq=3`, { token: a.token });
    expect(r3.body.receipts).toEqual({ seq: 3, of: 1, delivered: 1, read: 1, deliveredTo: [b.id], readBy: [b.id] });
    const r4 = await api("GET", `/v1/conversations/${dm.id}/receipts?seq=4`, { token: a.token });
    expect(r4.body.receipts).toMatchObject({ delivered: 1, read: 0 });
    expect((await api("GET", `/v1/conversations/${dm.id}/receipts?seq=99`, { token: a.token })).status).toBe(404);
    [as, au, bs].forEach((s) => s.close());
  });

  it("group: counts of how many of how many, cursors clamp to the stream and never go back", async () => {
    const users = await Promise.all(Array.from({ length: 4 }, () => mintUser()));
    const [a, ...rest] = users;
    const g = await createGroup(a!, rest);
    await sendRest(a!, g.id, "g1");
    await sendRest(a!, g.id, "g2");
    await api("POST", `/v1/conversations/${g.id}/receipts`, { token: rest[0]!.token, body: { read: 2 } });
    await api("POST", `/v1/conversations/${g.id}/receipts`, { token: rest[1]!.token, body: { delivered: 99 } });
    await api("POST", `/v1/conversations/${g.id}/receipts`, { token: rest[1]!.token, body: { delivered: 1 } });
    const r = await api("GET", `/v1/conversations/${g.id}/receipts?seq=2`, { token: a!.token });
    expect(r.body.receipts).toMatchObject({ seq: 2, of: 3, delivered: 2, read: 1 });
    expect(r.body.receipts.readBy).toEqual([rest[0]!.id]);
  });
});
