// docs/protocol.md 4.6: `nextAfter` is null when no message lies above the page (the page reaches lastSeq or is
// past it, which includes every empty page asked with `after` and every page of an empty conversation);
// otherwise it is the page's highest seq, and 0 for the one empty page with messages above it (below seq 1).
import { expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser } from "./helpers";

it("gives one consistent nextAfter (and nextBefore) for every kind of empty page", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const page = async (q: string) => {
    const r = await api("GET", `/v1/conversations/${g.id}/messages?${q}`, { token: b.token });
    expect(r.status, q).toBe(200);
    return { seqs: r.body.messages.map((m: { seq: number }) => m.seq), nextAfter: r.body.nextAfter, nextBefore: r.body.nextBefore, lastSeq: r.body.lastSeq };
  };
  // An empty conversation: every page is empty, and nothing lies above it.
  for (const q of ["limit=5", "after=0", "after=3", "before=1", "before=0"]) {
    expect(await page(q), q).toEqual({ seqs: [], nextAfter: null, nextBefore: null, lastSeq: 0 });
  }

  const s = await TestSocket.conversation(g.id, a);
  await s.next("caught_up");
  s.send({ type: "send_batch", messages: Array.from({ length: 6 }, (_, i) => ({ clientMsgId: `e${i}`, body: `empty ${i}` })) });
  await s.waitForMessages(6);
  s.close();

  // At or past the end: empty, nothing above.
  for (const q of ["after=6", "after=7", "after=1000"]) expect(await page(q), q).toEqual({ seqs: [], nextAfter: null, nextBefore: null, lastSeq: 6 });
  // Below seq 1: empty, and everything lies above it, from after=0.
  for (const q of ["before=1", "before=0"]) expect(await page(q), q).toEqual({ seqs: [], nextAfter: 0, nextBefore: null, lastSeq: 6 });
  // Non-empty pages: the highest seq, or null when the page reaches lastSeq.
  expect(await page("after=0&limit=4")).toEqual({ seqs: [1, 2, 3, 4], nextAfter: 4, nextBefore: null, lastSeq: 6 });
  expect(await page("after=4&limit=4")).toEqual({ seqs: [5, 6], nextAfter: null, nextBefore: 5, lastSeq: 6 });
  expect(await page("before=3&limit=4")).toEqual({ seqs: [1, 2], nextAfter: 2, nextBefore: null, lastSeq: 6 });
  expect(await page("before=100&limit=2")).toEqual({ seqs: [5, 6], nextAfter: null, nextBefore: 5, lastSeq: 6 });
  // Following nextAfter from the empty page below seq 1 reads everything.
  const all: number[] = [];
  for (let after: number | null = (await page("before=1")).nextAfter; after !== null; ) {
    const p = await page(`after=${after}&limit=4`);
    all.push(...p.seqs);
    after = p.nextAfter;
  }
  expect(all).toEqual([1, 2, 3, 4, 5, 6]);
});
