import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { api, createGroup, mintUser, restartConversation, sendRest, uniq } from "./helpers";
import { pickShard } from "../src/db/shards";
import type { ConversationObject } from "../src/objects/conversation";

const stubOf = (id: string) => env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));
const recorded = (id: string) =>
  runInDurableObject(stubOf(id), (_o, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'd1_shard'").toArray()[0]?.value ?? null);
/** How many of the conversation's messages each database holds. */
async function whereArchived(id: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of ["DB", "ARCHIVE_1", "ARCHIVE_2"]) {
    const db = (env as unknown as Record<string, D1Database>)[name]!;
    out[name] = (await db.prepare("SELECT count(*) AS n FROM messages WHERE conversation_id = ?").bind(id).first<{ n: number }>())!.n;
  }
  return out;
}

it("a conversation archives into the shard its id hashes to, recorded at creation; adding shards never moves it", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const shards = ["ARCHIVE_1", "ARCHIVE_2"];
  // Conversations (random ids) until both shards have one: the hash spreads them.
  const convs = [];
  const used = new Set<string>();
  while (used.size < 2 && convs.length < 40) {
    const c = await createGroup(a, [b], uniq("g"));
    convs.push(c);
    used.add(pickShard(c.id, shards));
  }
  expect(used.size).toBe(2);
  for (const c of convs) expect(await recorded(c.id)).toBe(pickShard(c.id, shards));

  // Messages land in the recorded shard only, not in the primary database or the other shard.
  const conv = convs[0]!;
  for (let i = 0; i < 25; i++) await sendRest(a, conv.id, `m${i}`);
  await stubOf(conv.id).flushArchive();
  const mine = pickShard(conv.id, shards);
  expect(await whereArchived(conv.id)).toEqual({ DB: 0, ARCHIVE_1: mine === "ARCHIVE_1" ? 25 : 0, ARCHIVE_2: mine === "ARCHIVE_2" ? 25 : 0 });

  // An operator adds a shard (here the primary database stands in for it): new conversations spread over three,
  // this one keeps its record and its archive, through a restart too.
  await runInDurableObject(stubOf(conv.id), (o: ConversationObject) => void (o.limits.archiveShards = ["ARCHIVE_1", "ARCHIVE_2", "DB"]));
  for (let i = 25; i < 30; i++) await sendRest(a, conv.id, `m${i}`);
  await restartConversation(conv.id);
  await stubOf(conv.id).flushArchive();
  expect(await recorded(conv.id)).toBe(mine);
  expect((await whereArchived(conv.id))[mine]).toBe(30);
  const page = await api("GET", `/v1/conversations/${conv.id}/messages?after=0&limit=30`, { token: b.token });
  expect(page.body.messages.map((m: { seq: number }) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
});

it("a conversation created before sharding (no record) keeps archiving into the primary database", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  await runInDurableObject(stubOf(conv.id), (_o, state) => void state.storage.sql.exec("DELETE FROM meta WHERE key = 'd1_shard'"));
  await restartConversation(conv.id);
  for (let i = 0; i < 25; i++) await sendRest(a, conv.id, `m${i}`);
  await stubOf(conv.id).flushArchive();
  expect(await recorded(conv.id)).toBe(null);
  expect(await whereArchived(conv.id)).toEqual({ DB: 25, ARCHIVE_1: 0, ARCHIVE_2: 0 });
  const page = await api("GET", `/v1/conversations/${conv.id}/messages?after=0&limit=25`, { token: b.token });
  expect(page.body.messages).toHaveLength(25);
});
