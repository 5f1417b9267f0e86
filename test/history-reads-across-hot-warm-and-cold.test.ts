import { expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser } from "./helpers";
import { range, segmentText, stubOf, tiers, walkHistory, where } from "./tiers";

/**
 * 150 entries: 1–100 in four R2 segments of 25, 101–150 in D1, 131–150 also hot. Seq 5 is a thread parent with
 * replies in every tier (seqs 10 and 60 cold, 110 warm, 140 hot).
 */
async function threeTiers() {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  await tiers(conv.id, { warmMessages: 40, segmentMessages: 25 });
  const s = await TestSocket.conversation(conv.id, alice);
  await s.next("caught_up");
  for (let i = 0; i < 150; i += 50) {
    s.send({
      type: "send_batch",
      messages: Array.from({ length: 50 }, (_, j) => {
        const seq = i + j + 1;
        return { clientMsgId: `m${seq}`, body: `body ${seq}`, ...([10, 60, 110, 140].includes(seq) ? { replyTo: 5 } : {}) };
      }),
    });
    await s.waitForMessages(i + 50);
  }
  s.close();
  const flushed = await stubOf(conv.id).flushArchive();
  return { alice, bob, conv, flushed };
}

it("history pages, threads and resumes read the hot tail, D1 and R2 as one stream, with no gap or duplicate at either boundary", async () => {
  const { bob, conv, flushed } = await threeTiers();
  expect(flushed).toEqual({ archivedSeq: 150, lastSeq: 150, coldSeq: 100 });
  const stored = await where(conv.id);
  expect(stored.hot).toEqual(range(131, 150));
  expect(stored.d1).toEqual(range(101, 150));
  expect(stored.segments).toEqual([
    { first: 1, last: 25 },
    { first: 26, last: 50 },
    { first: 51, last: 75 },
    { first: 76, last: 100 },
  ]);
  expect(stored.r2Keys).toHaveLength(4);

  // Page sizes that straddle both boundaries (100/101 and 130/131) at different offsets.
  for (const limit of [7, 32, 100]) {
    const { backwards, forwards, pages } = await walkHistory(bob, conv.id, limit);
    expect(backwards).toEqual(range(1, 150));
    expect(forwards).toEqual(range(1, 150));
    for (const p of pages) expect(p.messages.every((m: { body: string; seq: number }) => m.body === `body ${m.seq}`)).toBe(true);
  }

  // The thread: replies from every tier, in order, each quoting its parent.
  const thread = await api("GET", `/v1/conversations/${conv.id}/messages/5/replies?limit=10`, { token: bob.token });
  expect(thread.status).toBe(200);
  expect(thread.body.parent.replies.count).toBe(4);
  expect(thread.body.messages.map((m: { seq: number }) => m.seq)).toEqual([10, 60, 110, 140]);
  expect(thread.body.messages.every((m: { replyTo: { seq: number; quote: string } }) => m.replyTo.seq === 5 && m.replyTo.quote === "body 5")).toBe(true);
  const paged = await api("GET", `/v1/conversations/${conv.id}/messages/5/replies?after=10&limit=2`, { token: bob.token });
  expect(paged.body.messages.map((m: { seq: number }) => m.seq)).toEqual([60, 110]);

  // Resuming from inside each tier: the backlog is exactly since+1..150, then live.
  for (const since of [0, 24, 99, 100, 101, 129, 130, 149]) {
    const r = await TestSocket.conversation(conv.id, bob, { since });
    const done = await r.next("caught_up", () => true, 10_000);
    expect(done.seq).toBe(150);
    expect(r.messages().map((m) => m.seq)).toEqual(range(since + 1, 150));
    r.close();
  }
});

it("edits, deletes, reactions and quotes reach every tier: served at once, and a deleted body is gone from R2, D1 and the object", async () => {
  const { alice, bob, conv } = await threeTiers();
  const act = (method: string, path: string, body?: unknown) => api(method, `/v1/conversations/${conv.id}/messages/${path}`, { token: alice.token, body });
  expect((await act("PATCH", "3", { clientMsgId: "e3", body: "edited cold" })).status).toBe(201); // cold
  expect((await act("DELETE", "30?clientMsgId=d30")).status).toBe(201); // cold
  expect((await act("PUT", "105/reactions/%F0%9F%91%8D?clientMsgId=r105")).status).toBe(201); // warm
  expect((await act("DELETE", "145?clientMsgId=d145")).status).toBe(201); // hot
  expect((await act("DELETE", "5?clientMsgId=d5")).status).toBe(201); // the cold thread parent: every reply's quote empties

  const check = async () => {
    const { forwards, pages } = await walkHistory(bob, conv.id, 40);
    expect(forwards).toEqual(range(1, 155));
    const bySeq = new Map(pages.flatMap((p) => p.messages).map((m: any) => [m.seq, m]));
    expect(bySeq.get(3).body).toBe("edited cold");
    expect(bySeq.get(3).edited.version).toBe(2);
    for (const seq of [5, 30, 145]) expect(bySeq.get(seq)).toMatchObject({ body: "", deleted: expect.anything() });
    expect(bySeq.get(105).reactions).toEqual([expect.objectContaining({ emoji: "👍", count: 1 })]);
    for (const seq of [10, 60, 110, 140]) expect(bySeq.get(seq).replyTo).toMatchObject({ seq: 5, quote: "", deleted: true });
  };
  // Before the archive job applies them: reads overlay the queue.
  await check();
  await stubOf(conv.id).flushArchive();
  await check();

  // Applied: the deleted bodies and the replaced text are in no tier; replaced segment versions are deleted from R2.
  const r2 = await segmentText(conv.id);
  for (const gone of ['"body 30"', '"body 5"', '"body 3"']) expect(r2).not.toContain(gone);
  expect(r2).toContain('"edited cold"');
  const stored = await where(conv.id);
  expect(stored.r2Keys).toHaveLength(stored.segments.length);
  expect(stored.segments.map((s) => [s.first, s.last])).toEqual([
    [1, 25],
    [26, 50],
    [51, 75],
    [76, 100],
  ]);
});
