import { expect, it } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser } from "./helpers";
import { DownArchive } from "./backlog-helpers";
import type { ConversationObject } from "../src/objects/conversation";
import { coldBucket, flakyBucket, range, segmentText, stubOf, tiers, walkHistory, where } from "./tiers";

const DAY = 86_400_000;

it("retention deletes messages older than the period from every tier, survives an R2 failure mid-way, and history starts at the floor", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  expect(conv).toMatchObject({ retentionDays: 0, retentionOwn: false }); // the deployment keeps everything
  await tiers(conv.id, { warmMessages: 40, segmentMessages: 25 });
  // D1 down while sending, so every row is still in the object when it is made 10 days old (seqs 1-60).
  await runInDurableObject(stubOf(conv.id), (o: ConversationObject) => void (o.archive = new DownArchive({} as D1Database)));
  const s = await TestSocket.conversation(conv.id, alice);
  await s.next("caught_up");
  for (let i = 0; i < 150; i += 50) {
    s.send({ type: "send_batch", messages: Array.from({ length: 50 }, (_, j) => ({ clientMsgId: `m${i + j + 1}`, body: `body ${i + j + 1}` })) });
    await s.waitForMessages(i + 50);
  }
  s.close();
  await runInDurableObject(stubOf(conv.id), (o: ConversationObject, state) => {
    state.storage.sql.exec("UPDATE messages SET created_at = created_at - ? WHERE seq <= 60", 10 * DAY);
    o.archive = undefined;
  });
  expect(await stubOf(conv.id).flushArchive()).toEqual({ archivedSeq: 150, lastSeq: 150, coldSeq: 100 });

  // Only the owner or an admin sets a group's period.
  expect((await api("PUT", `/v1/conversations/${conv.id}/retention`, { token: bob.token, body: { days: 5 } })).body.error.code).toBe("forbidden");
  expect((await api("PUT", `/v1/conversations/${conv.id}/retention`, { token: alice.token, body: { days: -1 } })).body.error.code).toBe("validation_failed");
  // R2 refuses writes: the straddling segment (51-75) cannot be rewritten yet.
  await coldBucket(conv.id, flakyBucket("writesDown"));
  const set = await api("PUT", `/v1/conversations/${conv.id}/retention`, { token: alice.token, body: { days: 5 } });
  expect(set.status).toBe(200);
  expect(set.body.conversation).toMatchObject({ retentionDays: 5, retentionOwn: true });
  await stubOf(conv.id).flushArchive();
  // The floor is raised before anything is deleted: nothing below it is served even while the job is stuck.
  const stuck = await walkHistory(bob, conv.id, 32);
  expect(stuck.forwards).toEqual(range(61, 150));
  expect(stuck.backwards).toEqual(range(61, 150));
  expect(stuck.pages.every((p) => p.firstSeq === 61)).toBe(true);
  expect((await where(conv.id)).segments.map((x) => x.first)).toContain(51);

  // R2 is back: the job resumes where it stopped.
  await coldBucket(conv.id, undefined);
  await stubOf(conv.id).flushArchive();
  const stored = await where(conv.id);
  expect(stored.segments).toEqual([
    { first: 61, last: 75 },
    { first: 76, last: 100 },
  ]);
  expect(stored.r2Keys).toHaveLength(2); // whole segments and the replaced version are deleted from R2
  expect(stored.d1.every((seq) => seq >= 61)).toBe(true);
  const r2 = await segmentText(conv.id);
  expect(r2).not.toContain('"body 60"');
  expect(r2).toContain('"body 61"');
  expect((await walkHistory(bob, conv.id, 50)).forwards).toEqual(range(61, 150));

  // A client holding seqs below the floor is told to reset; one above it gets its backlog.
  const old = await TestSocket.conversation(conv.id, bob, { since: 10 });
  expect(await old.next("welcome")).toMatchObject({ reset: true, firstSeq: 61 });
  old.close();
  const recent = await TestSocket.conversation(conv.id, bob, { since: 70 });
  await recent.next("caught_up");
  expect(recent.messages().map((m) => m.seq)).toEqual(range(71, 150));
  recent.close();

  // Back to the deployment's period (keep forever): nothing more is deleted, nothing comes back.
  expect((await api("PUT", `/v1/conversations/${conv.id}/retention`, { token: alice.token, body: { days: null } })).body.conversation).toMatchObject({ retentionDays: 0, retentionOwn: false });
  expect((await walkHistory(bob, conv.id, 50)).forwards).toEqual(range(61, 150));
});
