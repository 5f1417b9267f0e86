import { expect, it } from "vitest";
import { TestSocket, createGroup, mintUser, sendRest } from "./helpers";

it("many sockets sending at once get one total order, and every member sees the same sequence", async () => {
  const users = await Promise.all(Array.from({ length: 6 }, () => mintUser()));
  const [owner, ...rest] = users;
  const conv = await createGroup(owner!, rest);
  // Two sockets for the first user: several devices per user are allowed.
  const sockets = await Promise.all([...users, users[0]!].map((u) => TestSocket.conversation(conv.id, u, { since: 0 })));
  await Promise.all(sockets.map((s) => s.next("caught_up")));

  const perSender = 25;
  sockets.forEach((s, i) => {
    for (let n = 0; n < perSender; n++) s.send({ type: "send", clientMsgId: `s${i}-${n}`, body: `socket ${i} message ${n}` });
  });
  // And a bot over REST at the same time.
  const rest5 = Array.from({ length: 5 }, (_, n) => sendRest(users[1]!, conv.id, `rest-${n}`));
  const total = sockets.length * perSender + 5;
  expect((await Promise.all(rest5)).every((r) => r.status === 201)).toBe(true);

  const streams = await Promise.all(sockets.map((s) => s.waitForMessages(total)));
  const reference = streams[0]!.map((m) => m.id);
  expect(streams[0]!.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  for (const stream of streams) expect(stream.map((m) => m.id)).toEqual(reference);

  // Per-socket FIFO (a sender's messages keep the order it sent them in) is checked over real sockets in
  // e2e/per-sender-order.test.ts: frames sent from this in-process test harness are not delivered FIFO.
  // Every ack matches the seq everyone saw.
  const bySeq = new Map(streams[0]!.map((m) => [m.seq, m]));
  for (const s of sockets) {
    for (const f of s.frames) if (f.type === "ack") expect(bySeq.get(f.seq)?.clientMsgId).toBe(f.clientMsgId);
  }
  sockets.forEach((s) => s.close());
});
