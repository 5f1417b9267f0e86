import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser, archiveDb } from "./helpers";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive, type ArchiveRow } from "../src/db/archive";
import type { ChatMessage } from "../src/protocol/frames";

/** An archive whose writes fail while `down` is true; `ghostWrite` = the write lands but the reply is lost. */
class FlakyArchive extends HistoryArchive {
  down = true;
  ghostWrite = false;
  failures = 0;
  writes = 0;
  override async writeMessages(conversationId: string, messages: ArchiveRow[]): Promise<void> {
    if (this.down) {
      this.failures++;
      throw new Error("D1_ERROR: simulated outage");
    }
    this.writes++;
    await super.writeMessages(conversationId, messages);
    if (this.ghostWrite) {
      this.ghostWrite = false;
      throw new Error("D1_ERROR: connection reset after commit");
    }
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 50));
  }
}

it("keeps acking while D1 fails, backs up, then drains in order exactly once when D1 returns", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id));
  const db = await archiveDb(conv.id);
  const flaky = await runInDurableObject(stub, (o: ConversationObject) => {
    const f = new FlakyArchive(db);
    o.archive = f;
    return { ok: true };
  });
  expect(flaky.ok).toBe(true);

  const s = await TestSocket.conversation(conv.id, a);
  await s.next("caught_up");
  s.send({ type: "send_batch", messages: Array.from({ length: 40 }, (_, i) => ({ clientMsgId: `o${i}`, body: `outage ${i}` })) });
  const acks = [];
  for (let i = 0; i < 40; i++) acks.push(await s.next("ack"));
  expect(acks.map((x) => x.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));

  // The archive keeps failing and retrying; nothing reaches D1, nothing is pruned from the object.
  await waitUntil(() => runInDurableObject(stub, (o: ConversationObject) => (o.archive as FlakyArchive).failures >= 2));
  const count = async () =>
    (await db.prepare("SELECT count(*) AS n, count(DISTINCT seq) AS d FROM messages WHERE conversation_id = ?").bind(conv.id).first<{ n: number; d: number }>())!;
  expect((await count()).n).toBe(0);
  const history = await api("GET", `/v1/conversations/${conv.id}/messages?after=0&limit=200`, { token: b.token });
  expect(history.body.messages).toHaveLength(40);

  // D1 comes back, but the first write's reply is lost after it committed: the retry must not duplicate.
  await runInDurableObject(stub, (o: ConversationObject) => {
    const f = o.archive as FlakyArchive;
    f.down = false;
    f.ghostWrite = true;
  });
  await waitUntil(async () => (await count()).n === 40);
  await waitUntil(() => runInDurableObject(stub, (o: ConversationObject) => (o.archive as FlakyArchive).writes >= 2));
  expect(await count()).toEqual({ n: 40, d: 40 });
  const rows = await db.prepare("SELECT seq, body FROM messages WHERE conversation_id = ? ORDER BY seq").bind(conv.id).all<{ seq: number; body: string }>();
  expect(rows.results.map((r) => r.body)).toEqual(Array.from({ length: 40 }, (_, i) => `outage ${i}`));
  // After the archive caught up, the object pruned down to its hot tail (20 in tests).
  const hot = await runInDurableObject(stub, (_o: ConversationObject, state) =>
    state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM messages").one().n,
  );
  expect(hot).toBe(20);
  s.close();
});
