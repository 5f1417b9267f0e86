import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser, sendRest } from "./helpers";

it("the same clientMsgId twice on one socket creates one message and repeats the original ack", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  const s = await TestSocket.conversation(conv.id, a, { since: 0 });
  await s.next("caught_up");
  // Back to back: whichever the object sees first is stored, the other gets that message's ack.
  // (Frames queued at once by this in-process harness may be delivered in either order.)
  s.send({ type: "send", clientMsgId: "once", body: "first" });
  s.send({ type: "send", clientMsgId: "once", body: "first" });
  const acks = [await s.next("ack"), await s.next("ack")];
  const original = acks.find((x) => !x.duplicate)!;
  const repeat = acks.find((x) => x.duplicate)!;
  expect(original).toBeDefined();
  expect(repeat).toMatchObject({ seq: original.seq, id: original.id, createdAt: original.createdAt, duplicate: true });
  const history = await api("GET", `/v1/conversations/${conv.id}/messages`, { token: a.token });
  expect(history.body.messages).toHaveLength(1);
  expect(history.body.messages[0]).toMatchObject({ body: "first", id: original.id });
  s.close();
});

it("a retry after a reconnect, over REST, or after the message left the hot tail still yields one message", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  let s = await TestSocket.conversation(conv.id, a, { since: 0 });
  await s.next("caught_up");
  s.send({ type: "send", clientMsgId: "lost-ack", body: "hello" });
  const original = await s.next("ack");
  s.close(); // the client pretends it never saw the ack
  s = await TestSocket.conversation(conv.id, a, { since: 0 });
  await s.next("caught_up");
  s.send({ type: "send", clientMsgId: "lost-ack", body: "hello" });
  expect(await s.next("ack")).toMatchObject({ seq: original.seq, id: original.id, duplicate: true });
  const viaRest = await sendRest(a, conv.id, "lost-ack", "hello");
  expect(viaRest.status).toBe(200);
  expect(viaRest.body.ack).toMatchObject({ seq: original.seq, duplicate: true });
  // The same clientMsgId from another sender is a different message.
  const other = await sendRest(b, conv.id, "lost-ack", "not a duplicate");
  expect(other.status).toBe(201);

  // Push the message out of the hot tail (20 in tests) and archive, then retry once more.
  for (let i = 0; i < 45; i++) await sendRest(b, conv.id, `fill-${i}`);
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id));
  await stub.flushArchive();
  const late = await sendRest(a, conv.id, "lost-ack", "hello");
  expect(late.status).toBe(200);
  expect(late.body.ack).toMatchObject({ seq: original.seq, id: original.id, duplicate: true });
  const last = await api("GET", `/v1/conversations/${conv.id}/messages?limit=1`, { token: a.token });
  expect(last.body.lastSeq).toBe(47);
  s.close();
});
