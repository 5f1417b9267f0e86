import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, createGroup, mintUser, sendRest } from "./helpers";

async function drainAlarms(conversationId: string) {
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
  await stub.flushArchive();
}

it("sends every message after since, then caught_up, then live: no gap, no duplicate", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  for (let i = 1; i <= 12; i++) await sendRest(a, conv.id, `m${i}`);
  const s = await TestSocket.conversation(conv.id, b, { since: 5 });
  const welcome = await s.next("welcome");
  expect(welcome).toMatchObject({ lastSeq: 12, reset: false, userId: b.id, conversationId: conv.id });
  const caught = await s.next("caught_up");
  expect(caught.seq).toBe(12);
  await sendRest(a, conv.id, "m13");
  await s.waitForMessages(8);
  expect(s.messages().map((m) => m.seq)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
  // Order of frame kinds: welcome, backlog..., caught_up, then message.
  const kinds = s.frames.map((f) => f.type);
  expect(kinds[0]).toBe("welcome");
  expect(kinds.indexOf("caught_up")).toBeGreaterThan(kinds.lastIndexOf("backlog"));
  expect(kinds.indexOf("message")).toBeGreaterThan(kinds.indexOf("caught_up"));
  s.close();
});

it("includes messages sent while the backlog streams from D1, exactly once", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  // 260 messages with a hot tail of 20: most of the backlog has to come from D1, in several pages.
  const sender = await TestSocket.conversation(conv.id, a);
  await sender.next("caught_up");
  for (let i = 0; i < 260; i += 50) {
    sender.send({ type: "send_batch", messages: Array.from({ length: 50 }, (_, j) => ({ clientMsgId: `b${i + j}`, body: `msg ${i + j}` })).slice(0, Math.min(50, 260 - i)) });
  }
  await sender.waitForMessages(260);
  await drainAlarms(conv.id);

  const reader = await TestSocket.conversation(conv.id, b, { since: 3 });
  // Keep sending while the reader is catching up.
  for (let i = 0; i < 30; i++) sender.send({ type: "send", clientMsgId: `live${i}`, body: `live ${i}` });
  await reader.waitForMessages(260 - 3 + 30, 15_000);
  const seqs = reader.messages().map((m) => m.seq);
  expect(seqs).toEqual(Array.from({ length: 287 }, (_, i) => i + 4));
  expect(reader.frames.filter((f) => f.type === "backlog").length).toBeGreaterThan(2);
  sender.close();
  reader.close();
});

it("without since there is no backlog; a stale epoch or a since beyond the stream says reset", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  for (let i = 1; i <= 3; i++) await sendRest(a, conv.id, `m${i}`);

  const live = await TestSocket.conversation(conv.id, b);
  expect(await live.next("welcome")).toMatchObject({ reset: false, lastSeq: 3 });
  expect(await live.next("caught_up")).toMatchObject({ seq: 3 });
  expect(live.messages()).toHaveLength(0);

  const stale = await TestSocket.conversation(conv.id, b, { since: 2, epoch: "someotherepoch" });
  expect(await stale.next("welcome")).toMatchObject({ reset: true, epoch: conv.epoch });
  await stale.next("caught_up");
  expect(stale.messages()).toHaveLength(0);

  const ahead = await TestSocket.conversation(conv.id, b, { since: 99, epoch: conv.epoch });
  expect(await ahead.next("welcome")).toMatchObject({ reset: true });

  const same = await TestSocket.conversation(conv.id, b, { since: 1, epoch: conv.epoch });
  expect(await same.next("welcome")).toMatchObject({ reset: false });
  await same.next("caught_up");
  expect(same.messages().map((m) => m.seq)).toEqual([2, 3]);
  [live, stale, ahead, same].forEach((s) => s.close());
});
