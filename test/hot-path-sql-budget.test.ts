// The cost of the hot path, pinned: the exact SQL statements one socket send runs inside the
// conversation object, in order, from the frame's arrival to the broadcast. No D1, no RPC, no await.
// A change here changes the per-message cost of every conversation: make it deliberately, with a
// benchmark (npm run bench -- --only s1,s2), and update this list in the same commit.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { TestSocket, createGroup, mintUser, recordSql } from "./helpers";

it("one socket send runs exactly these statements: idempotency, insert, sender cursor", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id));
  const sa = await TestSocket.conversation(conv.id, a);
  const sb = await TestSocket.conversation(conv.id, b);
  await sa.next("caught_up");
  await sb.next("caught_up");
  // A first message, so the archive and fan-out jobs are already scheduled (steady state).
  sa.send({ type: "send", clientMsgId: "warm", body: "warm" });
  await sa.next("ack");
  await sb.next("message");
  // Steady state: both users' presence leases are held and the warm message's fan-out has run, so the
  // background jobs' statements (leases, notify) do not land inside the measured window.
  for (let t = 0; t < 200; t++) {
    const settled = await runInDurableObject(stub, (_o: ConversationObject, state) => {
      const held = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM presence_held").one().n;
      const notified = state.storage.sql.exec<{ v: string }>("SELECT value AS v FROM meta WHERE key = 'notified_seq'").toArray()[0]?.v;
      return held === 2 && notified === "1";
    });
    if (settled) break;
    await new Promise((r) => setTimeout(r, 20));
  }

  const stop = await recordSql(stub);
  sa.send({ type: "send", clientMsgId: "m1", body: "hello" });
  expect(await sa.next("ack")).toMatchObject({ clientMsgId: "m1", seq: 2 });
  expect((await sb.next("message")).message).toMatchObject({ clientMsgId: "m1", seq: 2 });
  // Job scheduling (`_schedule`) is written at most once per job per interval, not per message: not counted.
  const log = (await stop()).filter((q) => !q.includes("_schedule"));

  const member = "SELECT user_id AS userId, username, role, joined_at AS joinedAt, delivered_seq AS deliveredSeq, read_seq AS readSeq FROM members WHERE user_id = ?";
  expect(log).toEqual([
    // Membership, when the frame arrives and again at the group-commit flush, is checked against the cached ids
    // (no SQL). The flush: idempotency, then the insert.
    "SELECT seq, id, created_at AS createdAt FROM messages WHERE sender_id = ? AND client_msg_id = ?",
    "SELECT seq, id, created_at AS createdAt FROM pruned_client_ids WHERE sender_id = ? AND client_msg_id = ?",
    "INSERT INTO messages (seq, id, sender_id, client_msg_id, body, created_at, attachments, n, reply_to, target, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    // the sender has read up to its own message: one cursor write per sender per flush
    member,
    "UPDATE members SET delivered_seq = max(delivered_seq, ?), read_seq = max(read_seq, ?) WHERE user_id = ?",
    "INSERT INTO dirty_members (user_id) VALUES (?)",
  ]);
  sa.close();
  sb.close();
});
