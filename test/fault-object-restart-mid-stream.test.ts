// Fault injection: the conversation object restarts (is aborted) while members are sending and
// receiving. Clients reconnect with `since` and resend what was not acked; afterwards every member
// has seen every message exactly once, in the same order, and the object's storage is intact.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { api, createGroup, mintUser, restartConversation, archiveDb } from "./helpers";
import { ResumingClient } from "./fuzz-helpers";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive } from "../src/db/archive";
import type { StoredMessage } from "../src/objects/conversation/stream";

/** An archive whose reads take a while, so a backlog paged from D1 is still streaming when we strike. */
class SlowArchive extends HistoryArchive {
  override async readMessages(conversationId: string, from: number, to: number): Promise<StoredMessage[]> {
    await new Promise((r) => setTimeout(r, 100));
    return super.readMessages(conversationId, from, to);
  }
}

function stubOf(conversationId: string) {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
}

/** The object's own view of its storage, read inside it. */
async function storageState(conversationId: string) {
  return runInDurableObject(stubOf(conversationId), (_o: ConversationObject, state) => {
    const sql = state.storage.sql;
    const meta = Object.fromEntries(sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta").toArray().map((r) => [r.key, r.value]));
    const hot = sql.exec<{ n: number; lo: number | null; hi: number | null }>("SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM messages").one();
    const members = sql.exec<{ userId: string; role: string }>("SELECT user_id AS userId, role FROM members ORDER BY user_id").toArray();
    return { epoch: meta.epoch, id: meta.id, archivedSeq: Number(meta.archived_seq), hot, members };
  });
}

it("an object restart mid-stream loses nothing: members resume with since and resends are deduplicated", async () => {
  const [alice, bob, carol] = [await mintUser(), await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob, carol]);
  const clients = [alice, bob, carol].map((u) => new ResumingClient(conv.id, u));
  for (const c of clients) expect(await c.connect()).toBe(true);
  const before = await storageState(conv.id);
  const lastSeq = async () => (await api("GET", `/v1/conversations/${conv.id}`, { token: alice.token })).body.conversation.lastSeq as number;

  const sent: string[] = [];
  let restarts = 0;
  let lostFrames = 0;
  for (let round = 0; round < 6; round++) {
    for (const [i, c] of clients.entries()) {
      const batch = Array.from({ length: i === 0 ? 20 : 6 }, (_, k) => [`${c.user.id}-r${round}-${k}`, `round ${round} #${k} from ${c.user.username}`] as [string, string]);
      sent.push(...batch.map(([id]) => id));
      c.send(batch);
    }
    if (round % 2 === 1) {
      if (round === 3) {
        // Let alice's batch be stored (carol has heard of part of it), then lose alice's unread frames
        // (her acks) as the object restarts: she must resend, and get duplicate acks, not duplicates.
        const mine = (c: ResumingClient) => c.received.filter((m) => m.clientMsgId.startsWith(`${alice.id}-r${round}-`)).length;
        for (let i = 0; i < 2000 && mine(clients[2]!) === 0; i++) {
          clients[2]!.collect();
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      // Restart the object while batches are in flight: every socket drops.
      await restartConversation(conv.id);
      restarts++;
      if (round === 3) {
        // Whatever alice had not read when her connection died is lost with it.
        await clients[0]!.socket!.closed;
        lostFrames += clients[0]!.loseUnreadFrames();
      }
    }
    for (const c of clients) await c.settle(lastSeq);
  }
  const finalSeq = await lastSeq();
  for (const c of clients) await c.settle(async () => finalSeq);

  // The lost acks were recovered by resending: duplicate acks, never duplicate messages.
  expect(lostFrames).toBeGreaterThan(0);
  expect([...clients[0]!.acks.values()].filter((a) => a.some((x) => x.duplicate)).length).toBeGreaterThan(0);
  // Each socket really was dropped by the restarts (and resumed).
  for (const c of clients) expect(c.closes.length).toBeGreaterThanOrEqual(restarts);
  // Exactly the messages sent, each stored once.
  expect(finalSeq).toBe(sent.length);
  const history: { seq: number; id: string; clientMsgId: string; senderId: string }[] = [];
  for (let after = 0; ; ) {
    const page = await api("GET", `/v1/conversations/${conv.id}/messages?after=${after}&limit=200`, { token: bob.token });
    history.push(...page.body.messages);
    if (page.body.nextAfter === null) break;
    after = page.body.nextAfter;
  }
  expect(history.map((m) => m.seq)).toEqual(Array.from({ length: sent.length }, (_, i) => i + 1));
  expect(history.map((m) => m.clientMsgId).sort()).toEqual([...sent].sort());

  for (const c of clients) {
    // No gap, no duplicate, the server's order: the seqs seen are exactly 1..N, and the ids match history.
    expect(c.received.map((m) => m.seq)).toEqual(history.map((m) => m.seq));
    expect(c.received.map((m) => m.id)).toEqual(history.map((m) => m.id));
    expect(c.resets).toBe(0);
    // Every ack of a clientMsgId names the same stored message.
    for (const [clientMsgId, acks] of c.acks) {
      const stored = history.find((m) => m.clientMsgId === clientMsgId && m.senderId === c.user.id)!;
      for (const a of acks) expect(a, clientMsgId).toMatchObject({ seq: stored.seq, id: stored.id });
    }
    expect(c.pending.size).toBe(0);
  }

  // Storage intact: same stream identity, same members, messages contiguous up to lastSeq.
  const after = await storageState(conv.id);
  expect(after.epoch).toBe(before.epoch);
  expect(after.id).toBe(conv.id);
  expect(after.members).toEqual(before.members);
  expect(after.hot.hi).toBe(finalSeq);
  expect(after.hot.n).toBe(finalSeq - (after.hot.lo ?? 1) + 1);

  // And D1 ends up with each message exactly once.
  await stubOf(conv.id).flushArchive();
  const d1 = await (await archiveDb(conv.id)).prepare("SELECT count(*) AS n, count(DISTINCT seq) AS s, count(DISTINCT client_msg_id || sender_id) AS k FROM messages WHERE conversation_id = ?")
    .bind(conv.id)
    .first<{ n: number; s: number; k: number }>();
  expect(d1).toEqual({ n: finalSeq, s: finalSeq, k: finalSeq });
  for (const c of clients) await c.close();
});

it("a restart while a backlog streams from D1 resumes from the last seq the client saw", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const writer = new ResumingClient(conv.id, alice);
  await writer.connect();
  // 300 messages with a hot tail of 20: a fresh reader's backlog comes mostly from D1, page by page.
  writer.send(Array.from({ length: 300 }, (_, i) => [`w${i}`, `backlog ${i}`] as [string, string]));
  await writer.settle(async () => 300);
  await stubOf(conv.id).flushArchive();

  // Only this instance reads slowly: the restarted object gets a normal archive again.
  const db = await archiveDb(conv.id);
  await runInDurableObject(stubOf(conv.id), (o: ConversationObject) => void (o.archive = new SlowArchive(db)));
  const reader = new ResumingClient(conv.id, bob);
  const reading = reader.connect();
  // Restart as soon as the first backlog page has arrived (the rest is still being paged from D1).
  for (let i = 0; i < 500 && reader.received.length === 0; i++) {
    reader.collect();
    await new Promise((r) => setTimeout(r, 1));
  }
  await restartConversation(conv.id);
  await reading;
  reader.collect();
  const beforeRestart = reader.received.length;
  await reader.settle(async () => 300);
  // The restart really cut the backlog short, and the client resumed where it was.
  expect(beforeRestart).toBeGreaterThan(0);
  expect(beforeRestart).toBeLessThan(300);
  expect(reader.closes.length).toBeGreaterThanOrEqual(1);
  expect(reader.received.map((m) => m.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  await writer.close();
  await reader.close();
});
