// Item 8 of issue 11: the idempotency keys of messages pruned from the hot tail used to be kept forever (about
// 120 B a message, so a busy conversation's object grew without bound). Now the keys of the newest
// IDEMPOTENCY_KEYS_KEPT pruned messages are kept, and a resend of one of those is still a duplicate.
import { expect, it } from "vitest";
import { runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { createGroup, mintUser, sendRest } from "./helpers";
import { seed, stubOf, tune } from "./backlog-helpers";

it("keeps the idempotency keys of only the newest pruned messages, and those still deduplicate", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  await tune(conv.id, { idempotencyKeysKept: 30 });
  await seed(conv.id, alice, 120, 10, "k");
  await stubOf(conv.id).flushArchive();

  const state = await runInDurableObject(stubOf(conv.id), (_o: ConversationObject, s) => ({
    hot: s.storage.sql.exec<{ n: number; lo: number }>("SELECT count(*) AS n, min(seq) AS lo FROM messages").one(),
    keys: s.storage.sql.exec<{ n: number; lo: number; hi: number }>("SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM pruned_client_ids").one(),
    // The batches of one socket may reach the object in any order from this in-process harness: which key got seq 81.
    at81: s.storage.sql.exec<{ k: string }>("SELECT client_msg_id AS k FROM pruned_client_ids WHERE seq = 81").one().k,
  }));
  // The hot tail is 20 (tests): seqs 1..100 were pruned; only the keys of the newest 30 of them remain.
  expect(state.hot).toEqual({ n: 20, lo: 101 });
  expect(state.keys).toEqual({ n: 30, lo: 71, hi: 100 });

  // A resend of a pruned message whose key is kept is answered with its original ack.
  const resend = await sendRest(alice, conv.id, state.at81, "resent");
  expect(resend.status).toBe(200);
  expect(resend.body.ack).toMatchObject({ clientMsgId: state.at81, seq: 81, duplicate: true });
});
