// Protocol 15.7: who may change what, every action idempotent under retry, bad input answered with a documented
// code on a socket that stays open, and protocol-1 clients served what they understand.
import { expect, it } from "vitest";
import { TestSocket, api, createDirect, createGroup, mintUser } from "./helpers";
import { runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { TokenBuckets } from "../src/lib/rate-limit";
import { act, messagesOf, stubOf } from "./message-changes";
import { tune } from "./backlog-helpers";

it("only the sender edits, the sender or a group owner/admin deletes, members react; strangers are refused", async () => {
  const [owner, admin, member, stranger] = [await mintUser(), await mintUser(), await mintUser(), await mintUser()];
  const conv = await createGroup(owner, [admin, member]);
  expect((await api("PATCH", `/v1/conversations/${conv.id}/members/${admin.id}`, { token: owner.token, body: { role: "admin" } })).status).toBe(200);
  const post = (user: typeof owner, clientMsgId: string) => api("POST", `/v1/conversations/${conv.id}/messages`, { token: user.token, body: { clientMsgId, body: clientMsgId } });
  await post(member, "m1"); // seq 1
  await post(owner, "o1"); // seq 2
  await post(member, "m2"); // seq 3

  const edit = (user: typeof owner, seq: number, body = "changed") =>
    api("PATCH", `/v1/conversations/${conv.id}/messages/${seq}`, { token: user.token, body: { clientMsgId: `e-${user.id}-${seq}-${body}`, body } });
  expect((await edit(owner, 1)).body.error.code).toBe("forbidden"); // not the sender, whatever the role
  expect((await edit(member, 1)).status).toBe(201);
  // A member may not delete another's message; the owner and an admin may.
  expect((await api("DELETE", `/v1/conversations/${conv.id}/messages/2`, { token: member.token })).body.error.code).toBe("forbidden");
  expect((await api("DELETE", `/v1/conversations/${conv.id}/messages/3`, { token: admin.token })).status).toBe(201);
  expect((await api("DELETE", `/v1/conversations/${conv.id}/messages/1`, { token: owner.token })).status).toBe(201);
  // Edits and reactions of a deleted message are refused; so is a reply to it.
  expect((await edit(member, 1, "again")).body.error.code).toBe("message_deleted");
  expect((await api("PUT", `/v1/conversations/${conv.id}/messages/1/reactions/${encodeURIComponent("👍")}`, { token: admin.token })).body.error.code).toBe("message_deleted");
  const reply = await api("POST", `/v1/conversations/${conv.id}/messages`, { token: admin.token, body: { clientMsgId: "rp", body: "x", replyTo: 1 } });
  expect(reply.body.error.code).toBe("message_deleted");
  // A non-member cannot react, edit or delete, and learns nothing about the conversation.
  for (const r of [
    await api("PUT", `/v1/conversations/${conv.id}/messages/2/reactions/${encodeURIComponent("👍")}`, { token: stranger.token }),
    await api("DELETE", `/v1/conversations/${conv.id}/messages/2`, { token: stranger.token }),
    await api("PATCH", `/v1/conversations/${conv.id}/messages/2`, { token: stranger.token, body: { clientMsgId: "s", body: "x" } }),
  ]) {
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("not_a_member");
  }
  // A seq that is no message: beyond the stream, or a change entry.
  expect((await edit(owner, 99)).body.error.code).toBe("message_not_found");
  expect((await api("DELETE", `/v1/conversations/${conv.id}/messages/4`, { token: owner.token })).body.error.code).toBe("message_not_found");
  // Mentions: members only; everyone only by owners and admins.
  const mention = (user: typeof owner, body: Record<string, unknown>) => api("POST", `/v1/conversations/${conv.id}/messages`, { token: user.token, body: { body: "hi", ...body } });
  expect((await mention(member, { clientMsgId: "x1", mentions: [stranger.id] })).body.error.code).toBe("invalid_mention");
  expect((await mention(member, { clientMsgId: "x2", mentionsAll: true })).body.error.code).toBe("forbidden");
  expect((await mention(admin, { clientMsgId: "x3", mentionsAll: true, mentions: [member.id] })).status).toBe(201);
  // In a direct conversation, deleting the other's message is refused (no admins there).
  const dm = (await createDirect(owner, member)).body.conversation;
  await api("POST", `/v1/conversations/${dm.id}/messages`, { token: member.token, body: { clientMsgId: "d", body: "dm" } });
  expect((await api("DELETE", `/v1/conversations/${dm.id}/messages/1`, { token: owner.token })).body.error.code).toBe("forbidden");
});

it("every action is idempotent under retry, over the socket and over REST", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const a = await TestSocket.conversation(conv.id, alice, { v: 2 });
  await a.next("caught_up");
  await act(a, { type: "send", clientMsgId: "m", body: "hello" });
  const frames = [
    { type: "edit", clientMsgId: "e", seq: 1, body: "hello!" },
    { type: "react", clientMsgId: "r", seq: 1, emoji: "❤️", on: true },
    { type: "react", clientMsgId: "r-off", seq: 1, emoji: "❤️", on: false },
    { type: "delete", clientMsgId: "d", seq: 1 },
  ];
  for (const frame of frames) {
    const first = await act(a, frame);
    expect(first, JSON.stringify(first)).toMatchObject({ type: "ack", duplicate: false });
    const retry = await act(a, frame); // the same clientMsgId: the original ack, nothing stored
    expect(retry).toMatchObject({ type: "ack", seq: first.seq, id: first.id, duplicate: true });
  }
  // REST: the same clientMsgId, and natural keys (a reaction you have, a message already deleted).
  const b = (method: string, path: string, body?: unknown) => api(method, `/v1/conversations/${conv.id}${path}`, { token: bob.token, body });
  await b("POST", "/messages", { clientMsgId: "bm", body: "bob" }); // seq 6
  const e1 = await b("PATCH", "/messages/6", { clientMsgId: "be", body: "bob!" });
  const e2 = await b("PATCH", "/messages/6", { clientMsgId: "be", body: "ignored on a retry" });
  expect([e1.status, e2.status]).toEqual([201, 200]);
  expect(e2.body.ack.seq).toBe(e1.body.ack.seq);
  const thumbs = `/messages/6/reactions/${encodeURIComponent("👍")}`;
  const p1 = await b("PUT", thumbs);
  const p2 = await b("PUT", thumbs);
  expect([p1.status, p2.status]).toEqual([201, 200]);
  expect(p2.body.ack).toMatchObject({ seq: p1.body.ack.seq, duplicate: true });
  const r1 = await b("DELETE", thumbs);
  const r2 = await b("DELETE", thumbs);
  expect([r1.status, r2.status]).toEqual([201, 200]);
  const history = await messagesOf(bob, conv.id);
  expect(history.map((m) => [m.seq, m.body, m.edited?.version ?? 1, m.reactions ?? []])).toEqual([
    [1, "", 1, []],
    [6, "bob!", 2, []],
  ]);
  // Exactly the entries asked for, none twice: 1 message + edit + 2 reactions + delete, then bob's 1 + edit + 2 reactions.
  const all = await api("GET", `/v1/conversations/${conv.id}/messages?after=0&limit=200`, { token: bob.token });
  expect(all.body.lastSeq).toBe(9);
  a.close();
});

it("bad change frames get a documented error on a socket that stays open; limits are enforced", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  await tune(conv.id, { maxReactionsPerMessage: 2, editWindowSeconds: 1 });
  const a = await TestSocket.conversation(conv.id, alice, { v: 2 });
  await a.next("caught_up");
  await act(a, { type: "send", clientMsgId: "m", body: "hello" });
  const bad: [Record<string, unknown> & { clientMsgId: string }, string][] = [
    [{ type: "react", clientMsgId: "b1", seq: 1, emoji: "ab", on: true }, "validation_failed"],
    [{ type: "react", clientMsgId: "b2", seq: 1, emoji: "👍👍", on: true }, "validation_failed"],
    [{ type: "react", clientMsgId: "b3", seq: 0, emoji: "👍", on: true }, "validation_failed"],
    [{ type: "edit", clientMsgId: "b4", seq: 1, body: "" }, "validation_failed"],
    [{ type: "edit", clientMsgId: "b5", seq: 1, body: "x".repeat(9000) }, "body_too_large"],
    [{ type: "delete", clientMsgId: "b6", seq: 42 }, "message_not_found"],
    [{ type: "send", clientMsgId: "b7", body: "r", replyTo: 5 }, "message_not_found"],
  ];
  for (const [frame, code] of bad) expect((await act(a, frame)).code, JSON.stringify(frame)).toBe(code);
  expect((await act(a, { type: "react", clientMsgId: "ok1", seq: 1, emoji: "👍", on: true })).type).toBe("ack");
  expect((await act(a, { type: "react", clientMsgId: "ok2", seq: 1, emoji: "🇫🇷", on: true })).type).toBe("ack");
  expect((await act(a, { type: "react", clientMsgId: "ok3", seq: 1, emoji: "1️⃣", on: true })).code).toBe("too_many_reactions");
  await new Promise((r) => setTimeout(r, 1100));
  expect((await act(a, { type: "edit", clientMsgId: "late", seq: 1, body: "too late" })).code).toBe("edit_window_closed");
  // Still open and working.
  expect((await act(a, { type: "send", clientMsgId: "after", body: "still here" })).type).toBe("ack");
  a.close();
});

it("a protocol-1 client is served change entries as messages with readable fallback bodies, gapless", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const old = await TestSocket.conversation(conv.id, bob, { v: 1, since: 0 });
  expect((await old.next("welcome")).protocol).toBe(1);
  await old.next("caught_up");
  const a = await TestSocket.conversation(conv.id, alice, { v: 2 });
  await a.next("caught_up");
  await act(a, { type: "send", clientMsgId: "m", body: "helo" });
  await act(a, { type: "edit", clientMsgId: "e", seq: 1, body: "hello" });
  await act(a, { type: "react", clientMsgId: "r", seq: 1, emoji: "👍", on: true });
  await act(a, { type: "react", clientMsgId: "r2", seq: 1, emoji: "👍", on: false });
  await act(a, { type: "delete", clientMsgId: "d", seq: 1 });
  const got = await old.waitForMessages(5);
  // Every entry is a ChatMessage a protocol-1 client can show; the seqs stay gapless.
  expect(got.map((m) => [m.seq, m.senderId === alice.id, m.body])).toEqual([
    [1, true, "helo"],
    [2, true, "* hello"],
    [3, true, "reacted 👍"],
    [4, true, "took back 👍"],
    [5, true, "(deleted a message)"],
  ]);
  // A protocol-1 client resuming reads the same stream (the superseded/deleted edit without its body).
  const again = await TestSocket.conversation(conv.id, bob, { v: 1, since: 0 });
  await again.next("caught_up");
  expect(again.messages().map((m) => m.body)).toEqual(["", "* (edited)", "reacted 👍", "took back 👍", "(deleted a message)"]);
  for (const s of [old, a, again]) s.close();
});

it("changes to archived messages cost a token for the archive read, so naming old messages is rate-limited too", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const a = await TestSocket.conversation(conv.id, alice, { v: 2 });
  await a.next("caught_up");
  a.send({ type: "send_batch", messages: Array.from({ length: 20 }, (_, i) => ({ clientMsgId: `m${i}`, body: `m${i}` })) });
  await a.waitForMessages(20);
  a.send({ type: "send_batch", messages: Array.from({ length: 20 }, (_, i) => ({ clientMsgId: `n${i}`, body: `n${i}` })) });
  await a.waitForMessages(40);
  await stubOf(conv.id).flushArchive(); // 1-20 are in D1 only
  await runInDurableObject(stubOf(conv.id), (o: ConversationObject) => {
    o.sendLimiter = new TokenBuckets(0.01, 4);
  });
  // Each edit of an archived message costs two tokens: the archive read and the change.
  const answers = [];
  for (let i = 1; i <= 4; i++) answers.push(await act(a, { type: "edit", clientMsgId: `x${i}`, seq: i, body: "x" }));
  expect(answers.map((x) => x.code ?? x.type)).toEqual(["ack", "ack", "rate_limited", "rate_limited"]);
  expect(answers[2]!.retryAfterMs).toBeGreaterThan(0);
  a.close();
});
