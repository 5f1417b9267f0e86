// An admin erasure (docs/protocol.md 17): afterwards nothing the user wrote is stored anywhere (the conversation
// objects' SQLite, the D1 shards, the R2 segments, the attachments bucket, other members' inboxes), history shows
// their messages as tombstones, their reactions are taken back, they are in no conversation, their account cannot
// log in, and their own object is empty. Members see it happen as deletes in the stream. Interrupted by D1 and R2
// failures and by restarts of the user's object, it finishes the same way.
import { env, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive, type D1Statement } from "../src/db/archive";
import type { ChatMessage } from "../src/protocol/frames";
import { admin, restartUser, rowCounts, seedCarol, startJob, storageText, waitForJob, type Seeded } from "./admin-jobs";
import { TestSocket, api, archiveDb, type TestUser } from "./helpers";
import { fullHistory } from "./message-changes";
import { coldBucket, flakyBucket, segmentText, stubOf, where } from "./tiers";

const userStub = (id: string) => env.USERS.get(env.USERS.idFromName(id));

/** D1 refuses the rewrites of one conversation's archived rows (reads still work). */
class RewritesDown extends HistoryArchive {
  override async run(_statements: D1Statement[]): Promise<void> {
    throw new Error("D1_ERROR: simulated outage");
  }
}

/** Everything that must hold once carol is erased. */
async function expectErased(s: Seeded, alsoOnline: TestUser[]): Promise<void> {
  const { carol, alice, bob, g1, g2, dm } = s;
  // No tier of any conversation holds a body of hers, nor do the other members' inboxes.
  for (const id of [g1, g2, dm]) {
    expect(await storageText(stubOf(id))).not.toContain("SECRET");
    const { results } = await (await archiveDb(id)).prepare("SELECT * FROM messages WHERE conversation_id = ?").bind(id).all();
    expect(JSON.stringify(results)).not.toContain("SECRET");
    expect(await segmentText(id)).not.toContain("SECRET");
    // Only the segments the index names are left in R2 (old versions are deleted too).
    const tiers = await where(id);
    expect(tiers.r2Keys).toHaveLength(tiers.segments.length);
  }
  expect(await env.ATTACHMENTS.head(s.attachmentKey)).toBeNull();
  for (const u of [alice, bob, ...alsoOnline]) expect(await storageText(userStub(u.id))).not.toContain("SECRET");

  // History: each of her messages is a tombstone she deleted, her edit entries are redacted, quotes of her are empty.
  const g1History = await fullHistory(alice, g1);
  const hers = (h: ChatMessage[]) => h.filter((m) => m.senderId === carol.id && !m.change);
  for (const [id, reader, count] of [
    [g1, alice, 80],
    [g2, alice, 61],
    [dm, bob, 10],
  ] as const) {
    const messages = hers(id === g1 ? g1History : await fullHistory(reader, id));
    expect(messages).toHaveLength(count);
    for (const m of messages) {
      expect(m.body).toBe("");
      expect(m.deleted?.by).toBe(carol.id);
      expect(m.attachments).toBeUndefined();
      expect(m.reactions).toBeUndefined();
      expect(m.mentions).toBeUndefined();
    }
  }
  expect(g1History.filter((m) => m.change?.type === "edit" && m.senderId === carol.id).every((m) => m.change!.type === "edit" && m.change!.body === undefined)).toBe(true);
  expect(g1History.find((m) => m.clientMsgId === "reply-24")!.replyTo).toEqual({ seq: 24, senderId: carol.id, quote: "", deleted: true });
  // Her reactions are taken back (counts updated), with reaction entries from her.
  for (const seq of [1, 151, 221]) expect(g1History.find((m) => m.seq === seq)!.reactions).toBeUndefined();
  const takenBack = g1History.filter((m) => m.change?.type === "reaction" && m.senderId === carol.id && !m.change.on);
  expect(takenBack.map((m) => m.change!.target).sort((a, b) => a - b)).toEqual([1, 151, 221]);

  // She is in no conversation: g2 has a new owner, the direct conversation keeps bob alone.
  const members = async (id: string, u: TestUser) => (await api("GET", `/v1/conversations/${id}`, { token: u.token })).body.conversation.members.map((m: { userId: string; role: string }) => [m.userId, m.role]);
  expect(await members(g1, alice)).not.toContainEqual(expect.arrayContaining([carol.id]));
  expect(await members(g2, alice)).toEqual([[alice.id, "owner"]]);
  expect(await members(dm, bob)).toEqual([[bob.id, "member"]]);

  // Her account is gone: no login, no refresh, no directory rows; her own object holds nothing.
  const login = await api("POST", "/v1/auth/login", { body: { username: carol.username, password: carol.password } });
  expect(login.status).toBe(401);
  expect(login.body.error.code).toBe("invalid_credentials");
  expect((await api("POST", "/v1/auth/refresh", { body: { refreshToken: carol.refreshToken } })).body.error.code).toBe("invalid_refresh_token");
  for (const [table, column] of [
    ["users", "id"],
    ["refresh_tokens", "user_id"],
    ["conversation_members", "user_id"],
    ["blocks", "blocker_id"],
    ["blocks", "blocked_id"],
    ["privacy_settings", "user_id"],
  ]) {
    expect((await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${column} = ?`).bind(carol.id).first<{ n: number }>())!.n, table).toBe(0);
  }
  const left = await rowCounts(userStub(carol.id));
  expect(Object.keys(left)).toEqual(["_migrations"]); // the schema, as a new object has it; no row of hers
}

it("an erased user's messages are tombstones in every tier, their reactions and files are gone, and so are their account and their object's storage", async () => {
  const s = await seedCarol();
  const { carol, alice, bob, g1, g2 } = s;
  // carol blocks bob and sets her consent; bob watches g1 live; carol is online on g1 and on her user socket.
  expect((await api("PUT", `/v1/me/blocks/${alice.id}`, { token: carol.token })).status).toBe(204);
  expect((await api("PATCH", "/v1/me/settings", { token: carol.token, body: { groupAdds: "nobody" } })).status).toBe(200);
  const watching = await TestSocket.conversation(g1, bob, { v: 2 });
  await watching.next("caught_up");
  const carolOnG1 = await TestSocket.conversation(g1, carol, { v: 2 });
  await carolOnG1.next("caught_up");
  const carolUser = await TestSocket.user(carol);
  await carolUser.nextAny((f) => f.type === "hello");

  const job = await startJob("erase", carol.id);
  expect(job).toMatchObject({ kind: "erase", userId: carol.id, state: "running" });
  expect((await startJob("erase", carol.id)).id).toBe(job.id); // repeated while it runs (her account may already be gone)
  const done = await waitForJob(job.id);
  expect(done.state, JSON.stringify(done)).toBe("done");
  expect(done.result).toEqual({ conversations: 3, messages: 77 + 61 + 10, reactions: 3 });
  expect(done.progress).toMatchObject({ phase: "finish", conversations: { done: 3, total: 3 } });

  // Members saw it: carol left, then a delete entry from her per message, then her reactions taken back.
  expect((await watching.next("members_changed")).removed).toEqual([carol.id]);
  const deletes = new Set<number>();
  while (deletes.size < 77) {
    const f = await watching.next("message");
    if (f.message.change?.type === "delete" && f.message.senderId === carol.id) deletes.add(f.message.change.target);
  }
  watching.close();
  expect((await carolOnG1.closed).code).toBe(4403);
  expect((await carolUser.closed).code).toBe(4401);

  await expectErased(s, []);
  // Her access token has not expired yet, but stores nothing for her any more.
  for (const [method, path, body] of [
    ["POST", "/v1/conversations", { type: "group", title: "back", memberIds: [alice.id] }],
    ["POST", "/v1/conversations", { type: "direct", userId: bob.id }],
    ["PATCH", "/v1/me/settings", { groupAdds: "anyone" }],
    ["PUT", `/v1/me/blocks/${bob.id}`, undefined],
  ] as const) {
    const r = await api(method, path, { token: carol.token, body });
    expect(r.status, `${method} ${path}`).toBe(401);
  }
  expect((await env.DB.prepare("SELECT count(*) AS n FROM privacy_settings WHERE user_id = ?").bind(carol.id).first<{ n: number }>())!.n).toBe(0);
  // Asked again: the finished erasure (her id is unknown now); an export of her is refused.
  const again = await admin("POST", `/v1/admin/users/${carol.id}/erase`);
  expect(again.status).toBe(200);
  expect(again.body.job).toMatchObject({ id: job.id, state: "done" });
  expect((await admin("POST", `/v1/admin/users/${carol.id}/export`)).body.error.code).toBe("user_not_found");
  // g2's preview in alice's inbox is none of carol's (here none at all: the hot tail holds only change entries now).
  const inbox = (await api("GET", "/v1/me/conversations", { token: alice.token })).body.conversations;
  expect(inbox.find((c: { conversationId: string }) => c.conversationId === g2).lastMessage?.senderId ?? alice.id).toBe(alice.id);
});

it("an erasure interrupted by R2 and D1 failures and by restarts of the user's object finishes with nothing left", async () => {
  const s = await seedCarol();
  const { carol, g1, g2 } = s;
  // g1's segments cannot be rewritten (R2 refuses writes); g2's D1 rows cannot be rewritten.
  await coldBucket(g1, flakyBucket("writesDown"));
  await runInDurableObject(stubOf(g2), async (o: ConversationObject) => void (o.archive = new RewritesDown(await archiveDb(g2))));
  const job = await startJob("erase", carol.id);
  // Conversations go in id order (dm, g1, g2): g1 waits for R2.
  const waiting = await waitForJob(job.id, (j) => j.progress.waiting?.includes(g1) === true);
  expect(waiting).toMatchObject({ state: "running", progress: { phase: "conversations", conversations: { done: 1, total: 3 } } });
  expect(waiting.progress.waiting).toMatch(/rewrites for D1 and R2/);
  await restartUser(carol.id);
  // Meanwhile history already shows her messages deleted (reads lay the queued rewrites over R2).
  expect((await fullHistory(s.alice, g1)).filter((m) => m.senderId === carol.id && !m.change).every((m) => m.deleted !== undefined)).toBe(true);
  await coldBucket(g1, undefined);
  await restartUser(carol.id);
  await startJob("erase", carol.id); // wakes the job out of its backoff
  await waitForJob(job.id, (j) => j.progress.waiting?.includes(g2) === true);
  await restartUser(carol.id);
  await runInDurableObject(stubOf(g2), (o: ConversationObject) => void (o.archive = undefined));
  await startJob("erase", carol.id);
  const done = await waitForJob(job.id);
  expect(done.state, JSON.stringify(done)).toBe("done");
  expect(done.result).toEqual({ conversations: 3, messages: 77 + 61 + 10, reactions: 3 });
  await expectErased(s, []);
});
