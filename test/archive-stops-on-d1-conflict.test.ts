// Item 9 of issue 11: the archive writes with INSERT OR IGNORE, so it could not notice that D1 already holds a
// different message at one of its seqs (after the object's storage was restored, say) and pruned its own copy
// anyway: that message would exist nowhere. Now it compares ids, stops with a loud log, and prunes nothing at
// or after the conflict.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { api, createGroup, mintUser, archiveDb } from "./helpers";
import { captureLogs, seed, stubOf } from "./backlog-helpers";

it("a different message already in D1 at a seq stops the archive before pruning, loudly", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  // D1 holds another message at seq 3 (e.g. from before a storage restore).
  const db = await archiveDb(conv.id);
  await db.prepare("INSERT INTO messages (conversation_id, seq, id, sender_id, client_msg_id, body, created_at) VALUES (?, 3, 'm_planted', ?, 'planted', 'other', 1)")
    .bind(conv.id, bob.id)
    .run();
  const logs = captureLogs();
  try {
    await seed(conv.id, alice, 30, 10, "c");
    await stubOf(conv.id).flushArchive();
    const state = await runInDurableObject(stubOf(conv.id), (_o: ConversationObject, s) => ({
      hot: s.storage.sql.exec<{ n: number; lo: number }>("SELECT count(*) AS n, min(seq) AS lo FROM messages").one(),
      archivedSeq: Number(s.storage.sql.exec<{ v: string }>("SELECT value AS v FROM meta WHERE key = 'archived_seq'").one().v),
    }));
    // Only the verified seqs 1-2 count as archived and may be pruned; the old code pruned to the hot tail (1..10).
    expect(state.hot).toEqual({ n: 28, lo: 3 });
    expect(state.archivedSeq).toBe(2);
    expect(logs.lines.some((l) => l.includes('"at":"archive_conflict"') && l.includes('"seqs":[3]'))).toBe(true);
    // D1's row was not overwritten, and history still serves the object's own message at seq 3.
    const d1 = await db.prepare("SELECT id FROM messages WHERE conversation_id = ? AND seq = 3").bind(conv.id).first<{ id: string }>();
    expect(d1?.id).toBe("m_planted");
    const page = await api("GET", `/v1/conversations/${conv.id}/messages?after=2&limit=1`, { token: bob.token });
    expect(page.body.messages[0]).toMatchObject({ seq: 3, clientMsgId: "c2", senderId: alice.id });
  } finally {
    logs.stop();
  }
});
