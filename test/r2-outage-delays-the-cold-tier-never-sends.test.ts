import { expect, it } from "vitest";
import { TestSocket, api, createGroup, mintUser, restartConversation } from "./helpers";
import { coldBucket, flakyBucket, range, stubOf, tiers, walkHistory, where } from "./tiers";

it("with R2 down, sends are acked and archived to D1, cold reads answer unavailable, and the cold tier catches up after", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  await tiers(conv.id, { warmMessages: 40, segmentMessages: 25 });
  const s = await TestSocket.conversation(conv.id, alice);
  await s.next("caught_up");
  const sendBatch = async (from: number) => {
    s.send({ type: "send_batch", messages: Array.from({ length: 50 }, (_, j) => ({ clientMsgId: `m${from + j}`, body: `body ${from + j}` })) });
    await s.waitForMessages(from + 49);
  };
  await sendBatch(1);
  await sendBatch(51);
  await stubOf(conv.id).flushArchive(); // 1-50 cold, 51-100 warm, 81-100 hot
  expect((await where(conv.id)).segments.map((x) => [x.first, x.last])).toEqual([[1, 25], [26, 50]]);

  await coldBucket(conv.id, flakyBucket("down"));
  await sendBatch(101);
  await sendBatch(151); // every message acked (waitForMessages waits for the broadcasts after each ack)
  s.close();
  const during = await stubOf(conv.id).flushArchive();
  expect(during).toEqual({ archivedSeq: 200, lastSeq: 200, coldSeq: 50 }); // D1 has everything; nothing moved
  const stored = await where(conv.id);
  expect(stored.d1).toEqual(range(51, 200));
  expect(stored.hot).toEqual(range(181, 200));
  // Warm and hot pages are served; a cold page not in the object's memory answers unavailable (retryable).
  await restartConversation(conv.id);
  await tiers(conv.id, { warmMessages: 40, segmentMessages: 25 }); // (seams are per instance)
  await coldBucket(conv.id, flakyBucket("down"));
  const warm = await api("GET", `/v1/conversations/${conv.id}/messages?after=50&limit=150`, { token: bob.token });
  expect(warm.body.messages.map((m: { seq: number }) => m.seq)).toEqual(range(51, 200));
  const cold = await api("GET", `/v1/conversations/${conv.id}/messages?after=0&limit=10`, { token: bob.token });
  expect(cold.status).toBe(503);
  expect(cold.body.error.code).toBe("unavailable");

  await coldBucket(conv.id, undefined);
  expect(await stubOf(conv.id).flushArchive()).toEqual({ archivedSeq: 200, lastSeq: 200, coldSeq: 150 });
  expect((await where(conv.id)).d1).toEqual(range(151, 200));
  const { forwards, backwards, pages } = await walkHistory(bob, conv.id, 45);
  expect(forwards).toEqual(range(1, 200));
  expect(backwards).toEqual(range(1, 200));
  expect(pages.flatMap((p) => p.messages).every((m: { seq: number; body: string }) => m.body === `body ${m.seq}`)).toBe(true);
});
