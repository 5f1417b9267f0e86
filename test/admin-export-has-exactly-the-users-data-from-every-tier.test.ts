// An admin export (docs/protocol.md 17) holds exactly one user's data: the account (never the password hash), their
// memberships, and every message they sent, in its current state, read from the hot tail, D1 and R2 alike, in seq
// order per conversation, and their reactions; nobody else's messages. A job interrupted by R2 and D1 failures and
// by restarts of the user's object resumes to the same file.
import { env, runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive } from "../src/db/archive";
import type { AdminJob, ExportLine } from "../src/protocol/admin";
import { download, messagesBy, restartUser, seedCarol, startJob, waitForJob, withoutMe } from "./admin-jobs";
import { archiveDb, restartConversation } from "./helpers";
import { coldBucket, flakyBucket, stubOf } from "./tiers";

/** D1 cannot be read (the warm tier of one conversation). */
class UnreadableArchive extends HistoryArchive {
  override async readMessages(): Promise<never> {
    throw new Error("D1_ERROR: simulated outage");
  }
}

const body = (lines: ExportLine[]) => lines.filter((l) => l.type !== "export");

it("the export has the account, the memberships and exactly the user's messages in their current state from every tier, and resumes after failures to the same file", async () => {
  const s = await seedCarol();
  const { carol, alice, bob, g1, g2, dm } = s;

  const job = await startJob("export", carol.id);
  expect(job).toMatchObject({ kind: "export", userId: carol.id, state: "running" });
  const again = await startJob("export", carol.id); // repeated while it runs: the same job
  expect(again.id).toBe(job.id);
  const done = await waitForJob(job.id);
  expect(done.state, JSON.stringify(done)).toBe("done");
  const { text, lines } = await download(done);

  // Header, account (no password hash), memberships, messages, reactions, end.
  expect(lines[0]).toMatchObject({ type: "export", format: 1, jobId: job.id, userId: carol.id });
  expect(lines[lines.length - 1]).toEqual({ type: "end", lines: lines.length });
  expect(lines.filter((l) => l.type === "account")).toEqual([
    { type: "account", id: carol.id, username: carol.username, createdAt: expect.any(Number), passwordSet: true, settings: { groupAdds: null }, blocks: [] },
  ]);
  const { hash } = (await env.DB.prepare("SELECT password_hash AS hash FROM users WHERE id = ?").bind(carol.id).first<{ hash: string }>())!;
  expect(text).not.toContain(hash);
  expect(text).not.toContain("password_hash");
  const memberships = lines.filter((l) => l.type === "membership");
  expect(memberships.map((m) => [m.conversationId, m.role]).sort()).toEqual(
    [
      [g1, "member"],
      [g2, "owner"],
      [dm, "member"],
    ].sort(),
  );

  // Messages: exactly carol's, as history shows them now (edited bodies, tombstones, reactions, the file), per
  // conversation in seq order.
  for (const [id, reader] of [
    [g1, alice],
    [g2, alice],
    [dm, bob],
  ] as const) {
    const expected = await messagesBy(reader, id, carol.id);
    const exported = lines.filter((l): l is Extract<ExportLine, { type: "message" }> => l.type === "message" && l.conversationId === id).map(({ type: _t, conversationId: _c, ...m }) => withoutMe(m));
    expect(exported).toEqual(expected);
  }
  const messages = lines.filter((l) => l.type === "message");
  expect(messages.length).toBe(80 + 61 + 10);
  expect(messages.every((m) => m.type === "message" && m.senderId === carol.id)).toBe(true);
  expect(text).not.toMatch(/alice-g|bob-g|bob-dm|alice-reply/);
  const edited = messages.find((m) => m.type === "message" && m.seq === 21 && m.conversationId === g1);
  expect(edited).toMatchObject({ body: "SECRET-edited-again-21", edited: { version: 3 } });
  expect(messages.find((m) => m.type === "message" && m.seq === 172 && m.conversationId === g1)).toMatchObject({ body: "", deleted: { by: carol.id } });
  expect(messages.find((m) => m.type === "message" && m.seq === 23 && m.conversationId === g1)).toMatchObject({ reactions: [{ emoji: "🎉", count: 1 }] });
  expect(lines.filter((l) => l.type === "reaction").map((r) => r.type === "reaction" && [r.conversationId, r.seq, r.emoji])).toEqual([
    [g1, 1, "👍"],
    [g1, 151, "👍"],
    [g1, 221, "👍"],
  ]);
  expect(done.result).toMatchObject({ lines: lines.length, bytes: new TextEncoder().encode(text).byteLength });
  expect(done.progress).toMatchObject({ phase: "finish", conversations: { done: 3, total: 3 }, messages: messages.length, reactions: 3 });

  // Interrupted: g1's R2 segments (its object restarted, so none is in memory) and g2's D1 rows cannot be read,
  // and the user's object restarts twice. Conversations go in id order: dm, g1, g2.
  await restartConversation(g1);
  await coldBucket(g1, flakyBucket("down"));
  await runInDurableObject(stubOf(g2), async (o: ConversationObject) => void (o.archive = new UnreadableArchive(await archiveDb(g2))));
  const second = await startJob("export", carol.id);
  expect(second.id).not.toBe(job.id);
  const stuck = await waitForJob(second.id, (j) => j.progress.lastError !== undefined);
  expect(stuck).toMatchObject({ state: "running", progress: { phase: "conversations", conversations: { done: 1, total: 3 } } });
  await restartUser(carol.id);
  await coldBucket(g1, undefined);
  await restartUser(carol.id);
  await startJob("export", carol.id);
  const stuckAgain = await waitForJob(second.id, (j) => j.state !== "running" || j.progress.conversations.done === 2 && j.progress.lastError !== undefined);
  expect(stuckAgain.state).toBe("running"); // g2's D1 still fails
  await runInDurableObject(stubOf(g2), (o: ConversationObject) => void (o.archive = undefined));
  await startJob("export", carol.id); // a repeated request wakes a job waiting out its backoff
  const resumed = await waitForJob(second.id);
  expect(resumed.state, JSON.stringify(resumed)).toBe("done");
  expect(resumed.progress.lastError).toBeUndefined();
  // The same file, but for its first line (the job's id and time).
  const after: AdminJob = resumed;
  expect(body((await download(after)).lines)).toEqual(body(lines));
});
