// Receipts in large groups: every client reports delivery of every message, so pushing every cursor to every
// socket would grow with members squared. Above 100 members a cursor change reaches only its owner's sockets
// (their other devices), and only when they read: delivery reports are announced to no one. Everyone asks
// GET …/receipts?seq= for counts. Up to 100 members nothing changes.
import { expect, it } from "vitest";
import { TestSocket, api, createSettledGroup, liveSocket as live, sendRest, type TestUser } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const receiptsOf = (s: TestSocket) => s.frames.filter((f) => f.type === "receipts").flatMap((f: any) => f.cursors as { userId: string }[]);

/** A group of `size` members besides its owner, in every inbox; `reader` and `other` are two of its members. */
async function group(size: number, title: string) {
  const { owner, members, g } = await createSettledGroup(size, title);
  return { owner, g, reader: members[3]!, other: members[60]! };
}

/** Send a marker and wait for it everywhere: frames are ordered per socket, so any receipts frame of the run before it is in. */
async function fence(sender: TestUser, conversationId: string, sockets: TestSocket[], id: string): Promise<void> {
  await sendRest(sender, conversationId, id);
  await Promise.all(sockets.map((s) => s.next("message", (f) => f.message.clientMsgId === id)));
}

it("above 100 members a member's cursor reaches only that member's own sockets; counts stay readable", async () => {
  const { owner, g, reader, other } = await group(120, "large receipts");
  const ownerSocket = await live(g.id, owner);
  const [readerPhone, readerLaptop, otherSocket] = [await live(g.id, reader), await live(g.id, reader), await live(g.id, other)];
  await sendRest(owner, g.id, "m1");
  // Delivery alone is announced to no one (every client reports it for every message); the counts have it.
  readerPhone.send({ type: "receipt", delivered: 1 });
  await sleep(1_500); // past the next fan-out run
  await fence(owner, g.id, [ownerSocket, otherSocket, readerLaptop, readerPhone], "fence0");
  for (const s of [ownerSocket, otherSocket, readerLaptop, readerPhone]) expect(receiptsOf(s).filter((c) => c.userId === reader.id)).toEqual([]);
  const delivered = await api("GET", `/v1/conversations/${g.id}/receipts?seq=1`, { token: owner.token });
  expect(delivered.body.receipts).toMatchObject({ seq: 1, of: 120, read: 0, delivered: 1 });
  readerPhone.send({ type: "receipt", read: 1 });
  // A read: the reader's other device hears it (at most a second later, coalesced)...
  const own = await readerLaptop.next("receipts", (f) => f.cursors.some((c) => c.userId === reader.id && c.readSeq === 1), 3_000);
  expect(own.cursors).toEqual([{ userId: reader.id, deliveredSeq: 1, readSeq: 1 }]);
  await readerPhone.next("receipts", (f) => f.cursors.some((c) => c.userId === reader.id));
  // ...and no one else does: not the sender, not another member. Sending moved the owner's cursors too: only the owner hears them.
  await fence(owner, g.id, [ownerSocket, otherSocket, readerLaptop], "fence1");
  expect(receiptsOf(otherSocket)).toEqual([]);
  expect(receiptsOf(ownerSocket).every((c) => c.userId === owner.id)).toBe(true);
  expect(receiptsOf(readerLaptop).every((c) => c.userId === reader.id)).toBe(true);
  // The counts are there for whoever asks.
  const r = await api("GET", `/v1/conversations/${g.id}/receipts?seq=1`, { token: owner.token });
  expect(r.body.receipts).toMatchObject({ seq: 1, of: 120, read: 1, delivered: 1 });
  for (const s of [ownerSocket, readerPhone, readerLaptop, otherSocket]) s.close();
});

it("up to 100 members every cursor change still reaches every live socket", async () => {
  const { owner, g, reader, other } = await group(99, "small receipts");
  const [ownerSocket, readerSocket, otherSocket] = [await live(g.id, owner), await live(g.id, reader), await live(g.id, other)];
  await sendRest(owner, g.id, "m1");
  readerSocket.send({ type: "receipt", read: 1 });
  for (const s of [ownerSocket, otherSocket]) await s.next("receipts", (f) => f.cursors.some((c) => c.userId === reader.id && c.readSeq === 1), 3_000);
  for (const s of [ownerSocket, readerSocket, otherSocket]) s.close();
});
