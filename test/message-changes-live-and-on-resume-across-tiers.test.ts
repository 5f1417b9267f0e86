// Protocol 15: edits, deletes, reactions and replies travel in the one ordered stream. A member who is live
// sees them as they happen; a member who was away and resumes with `since` gets them in its backlog, from
// the object and from the D1 archive; both end in exactly the state REST history serves. A deleted body is
// gone from the object's SQLite and from D1.
import { expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser } from "./helpers";
import { Applier, act, messagesOf, storedText, stubOf } from "./message-changes";

it("edits, deletes, reactions and replies reach live and resuming members from both tiers, and converge on history", async () => {
  const [alice, bob, carol] = [await mintUser(), await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob, carol]);
  const a = await TestSocket.conversation(conv.id, alice, { v: 2 });
  expect((await a.next("welcome")).protocol).toBe(2);
  await a.next("caught_up");
  a.send({ type: "send_batch", messages: Array.from({ length: 30 }, (_, i) => ({ clientMsgId: `m${i + 1}`, body: i === 3 ? "secret-body-4" : `message ${i + 1}` })) });
  await a.waitForMessages(30);

  // Bob holds the first 30 entries, then goes away.
  const bobView = new Applier(bob.id);
  const b1 = await TestSocket.conversation(conv.id, bob, { v: 2, since: 0 });
  await b1.next("caught_up");
  bobView.apply(b1.messages());
  b1.close();
  // A live observer: Carol, connected throughout.
  const carolView = new Applier(carol.id);
  const c = await TestSocket.conversation(conv.id, carol, { v: 2, since: 0 });
  await c.next("caught_up");

  // Archive and prune: the hot tail keeps 20 (test config), so messages 1-10 are in D1 only.
  await stubOf(conv.id).flushArchive();

  const acks = [
    await act(a, { type: "edit", clientMsgId: "e1", seq: 2, body: "secret-first-edit-2" }), // cold target
    await act(a, { type: "edit", clientMsgId: "e2", seq: 2, body: "message 2, fixed" }), // supersedes e1
    await act(a, { type: "edit", clientMsgId: "e3", seq: 25, body: "message 25, fixed" }), // hot target
    await act(c, { type: "react", clientMsgId: "r1", seq: 3, emoji: "👍", on: true }),
    await act(a, { type: "react", clientMsgId: "r2", seq: 3, emoji: "👍", on: true }),
    await act(a, { type: "react", clientMsgId: "r3", seq: 26, emoji: "🎉", on: true }),
    await act(c, { type: "react", clientMsgId: "r4", seq: 26, emoji: "🎉", on: true }),
    await act(c, { type: "react", clientMsgId: "r5", seq: 26, emoji: "🎉", on: false }),
    await act(a, { type: "delete", clientMsgId: "d1", seq: 4 }), // cold, its body "secret-body-4"
    await act(a, { type: "edit", clientMsgId: "e4", seq: 27, body: "secret-edit-27" }),
    await act(a, { type: "delete", clientMsgId: "d2", seq: 27 }), // hot, after an edit
  ];
  for (const ack of acks) expect(ack.type, JSON.stringify(ack)).toBe("ack");
  expect(acks.map((x) => x.seq)).toEqual(Array.from({ length: 11 }, (_, i) => 31 + i));
  // Replies: Carol replies to message 5 (cold) and mentions Bob; Bob is not there.
  c.send({ type: "send", clientMsgId: "c-reply", body: "replying to 5 @bob", replyTo: 5, mentions: [bob.id] });
  const replyAck = await c.next("ack", (f) => f.clientMsgId === "c-reply");
  expect(replyAck.seq).toBe(42);
  await c.waitForMessages(30 + 12);
  const reply = c.messages().find((m) => m.seq === 42)!;
  expect(reply.replyTo).toEqual({ seq: 5, senderId: alice.id, quote: "message 5" });
  expect(reply.mentions).toEqual([bob.id]);
  // The thread's parent is edited: the quote follows.
  expect((await act(a, { type: "edit", clientMsgId: "e5", seq: 5, body: "message 5, edited" })).type).toBe("ack");
  await c.waitForMessages(30 + 13);

  // Change entries live: each names its target, with the fallback body for protocol-1 clients.
  const live = c.messages().slice(30);
  expect(live[0]!.change).toEqual({ type: "edit", target: 2, version: 2, body: "secret-first-edit-2" });
  expect(live[0]!.body).toBe("* secret-first-edit-2");
  expect(live[4]!.change).toEqual({ type: "reaction", target: 3, emoji: "👍", on: true, count: 2 });
  expect(live[8]!.change).toEqual({ type: "delete", target: 4 });
  expect(live[8]!.body).toBe("(deleted a message)");
  carolView.apply(c.messages());

  // Part of the change entries go to D1 too, so Bob's backlog crosses the seam inside them.
  await stubOf(conv.id).flushArchive();
  const b2 = await TestSocket.conversation(conv.id, bob, { v: 2, since: bobView.cursor });
  const caught = await b2.next("caught_up");
  expect(caught.seq).toBe(43);
  const backlog = b2.messages();
  expect(backlog.map((m) => m.seq)).toEqual(Array.from({ length: 13 }, (_, i) => 31 + i));
  // Superseded and deleted edits carry no body any more: earlier bodies are not served.
  expect(backlog[0]!.change).toEqual({ type: "edit", target: 2, version: 2 });
  expect(backlog[0]!.body).toBe("* (edited)");
  expect(backlog.find((m) => m.seq === 40)!.change).toEqual({ type: "edit", target: 27, version: 2 });
  bobView.apply(backlog);

  // Everyone converges on what REST history serves, each from their own view.
  const bobHistory = await messagesOf(bob, conv.id);
  expect(bobView.state()).toEqual(bobHistory);
  expect(carolView.state()).toEqual(await messagesOf(carol, conv.id));
  const bySeq = new Map(bobHistory.map((m) => [m.seq, m]));
  expect(bySeq.get(2)).toMatchObject({ body: "message 2, fixed", edited: { version: 3 } });
  expect(bySeq.get(25)).toMatchObject({ body: "message 25, fixed", edited: { version: 2 } });
  expect(bySeq.get(3)!.reactions).toEqual([{ emoji: "👍", count: 2, me: false }]);
  expect(bySeq.get(26)!.reactions).toEqual([{ emoji: "🎉", count: 1, me: false }]);
  expect(bySeq.get(4)).toEqual({ seq: 4, id: bySeq.get(4)!.id, senderId: alice.id, clientMsgId: "m4", body: "", createdAt: bySeq.get(4)!.createdAt, deleted: { at: expect.any(Number), by: alice.id } });
  expect(bySeq.get(42)!.replyTo).toEqual({ seq: 5, senderId: alice.id, quote: "message 5, edited" });
  // `me` is per reader: Carol took hers back on 26 and kept hers on 3.
  const carolHistory = new Map((await messagesOf(carol, conv.id)).map((m) => [m.seq, m]));
  expect(carolHistory.get(3)!.reactions).toEqual([{ emoji: "👍", count: 2, me: true }]);
  expect(carolHistory.get(26)!.reactions).toEqual([{ emoji: "🎉", count: 1, me: false }]);

  // The thread: parent with its reply count, and its replies.
  const thread = await api("GET", `/v1/conversations/${conv.id}/messages/5/replies`, { token: bob.token });
  expect(thread.status).toBe(200);
  expect(thread.body.parent).toMatchObject({ seq: 5, body: "message 5, edited", replies: { count: 1 } });
  expect(thread.body.messages.map((m: { seq: number }) => m.seq)).toEqual([42]);
  expect(thread.body.nextAfter).toBeNull();
  // Who reacted.
  const who = await api("GET", `/v1/conversations/${conv.id}/messages/3/reactions`, { token: bob.token });
  expect(who.body.reactions).toEqual([{ emoji: "👍", count: 2, userIds: [alice.id, carol.id].sort() }]);

  // Deleted and superseded bodies are gone from every tier: the object's rows and D1's.
  await stubOf(conv.id).flushArchive();
  const stored = await storedText(conv.id);
  for (const secret of ["secret-body-4", "secret-first-edit-2", "secret-edit-27"]) {
    expect(stored.object).not.toContain(secret);
    expect(stored.d1).not.toContain(secret);
  }
  expect(stored.d1).toContain("message 2, fixed");
  for (const s of [a, b2, c]) s.close();
});

it("a deleted thread parent empties its replies' quotes, in the object and in D1", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const send = (user: typeof alice, clientMsgId: string, body: string, extra: Record<string, unknown> = {}) =>
    api("POST", `/v1/conversations/${conv.id}/messages`, { token: user.token, body: { clientMsgId, body, ...extra } });
  await send(alice, "p", "the parent text");
  expect((await send(bob, "r1", "first reply", { replyTo: 1 })).status).toBe(201);
  // A reply to a reply joins the thread of its root.
  expect((await send(alice, "r2", "second reply", { replyTo: 2 })).status).toBe(201);
  for (let i = 0; i < 25; i++) await send(bob, `f${i}`, `filler ${i}`); // pushes the thread into D1
  await stubOf(conv.id).flushArchive();
  expect((await send(bob, "r3", "late reply", { replyTo: 1 })).status).toBe(201); // cold parent
  const del = await api("DELETE", `/v1/conversations/${conv.id}/messages/1`, { token: alice.token });
  expect(del.status).toBe(201);
  const again = await api("DELETE", `/v1/conversations/${conv.id}/messages/1`, { token: alice.token });
  expect(again.status).toBe(200);
  expect(again.body.ack).toMatchObject({ seq: del.body.ack.seq, duplicate: true });

  const thread = await api("GET", `/v1/conversations/${conv.id}/messages/1/replies`, { token: bob.token });
  expect(thread.body.parent).toMatchObject({ seq: 1, body: "", deleted: { by: alice.id }, replies: { count: 3 } });
  expect(thread.body.messages.map((m: { seq: number; replyTo: unknown }) => [m.seq, m.replyTo])).toEqual([
    [2, { seq: 1, senderId: alice.id, quote: "", deleted: true }],
    [3, { seq: 1, senderId: alice.id, quote: "", deleted: true }],
    [29, { seq: 1, senderId: alice.id, quote: "", deleted: true }],
  ]);
  await stubOf(conv.id).flushArchive();
  const stored = await storedText(conv.id);
  expect(stored.object).not.toContain("the parent text");
  expect(stored.d1).not.toContain("the parent text");
});
