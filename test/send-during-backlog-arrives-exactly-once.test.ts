// docs/protocol.md 7.3: a client may send before `caught_up`. Its ack may come before or after `caught_up`
// (not asserted: both are allowed), and its message reaches it exactly once, in seq order, in the backlog or
// as a live `message` frame, so the socket's stream is still exactly since+1 .. lastSeq.
// Which of the two sends gets the lower seq is not asserted here: vitest-pool-workers wraps each Durable Object
// handler in a module import that awaits an RPC to its runner, so two frames can reach the object in either
// order. Send order is asserted on the runtime as deployed, in e2e/per-sender-order.test.ts.
import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, createGroup, mintUser } from "./helpers";

it("a message sent while the backlog streams from the archive is acked once and arrives once, in order", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const writer = await TestSocket.conversation(g.id, a);
  await writer.next("caught_up");
  for (let i = 0; i < 150; i += 50) {
    writer.send({ type: "send_batch", messages: Array.from({ length: 50 }, (_, j) => ({ clientMsgId: `w${i + j}`, body: `old ${i + j + 1}` })) });
    await writer.waitForMessages(i + 50);
  }
  writer.close();
  // Most of the history now lives in D1 only, so the backlog awaits D1 reads while the frames below arrive.
  await env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(g.id)).flushArchive();

  const s = await TestSocket.conversation(g.id, b, { since: 0 });
  s.send({ type: "send", clientMsgId: "during-backlog", body: "sent before caught_up" });
  s.send({ type: "send", clientMsgId: "during-backlog-2", body: "and another" });
  const acks = [await s.next("ack"), await s.next("ack")];
  expect(acks.map((a) => a.clientMsgId).sort()).toEqual(["during-backlog", "during-backlog-2"]);
  expect(acks.map((a) => a.seq).sort()).toEqual([151, 152]);
  expect(acks.every((a) => !a.duplicate)).toBe(true);
  await s.waitForMessages(152);
  const caughtUpAt = s.frames.findIndex((f) => f.type === "caught_up");
  expect(caughtUpAt).toBeGreaterThan(-1);
  expect(s.messages().map((m) => m.seq)).toEqual(Array.from({ length: 152 }, (_, i) => i + 1));
  expect(s.messages().filter((m) => m.clientMsgId.startsWith("during-backlog"))).toHaveLength(2);
  // No message frame before caught_up, whichever side of it the acks came.
  expect(s.frames.slice(0, caughtUpAt).some((f) => f.type === "message")).toBe(false);
  s.close();
});
