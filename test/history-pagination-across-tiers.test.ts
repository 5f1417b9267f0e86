import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser, archiveDb } from "./helpers";
import type { ConversationObject } from "../src/objects/conversation";

it("pages backwards and forwards across the hot tail and the D1 archive without a seam", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  const s = await TestSocket.conversation(conv.id, a);
  await s.next("caught_up");
  // One batch at a time (frames queued at once from this in-process harness are not delivered FIFO).
  for (let i = 0; i < 150; i += 50) {
    s.send({ type: "send_batch", messages: Array.from({ length: 50 }, (_, j) => ({ clientMsgId: `h${i + j}`, body: `history ${i + j + 1}` })) });
    await s.waitForMessages(i + 50);
  }
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id));
  await stub.flushArchive();
  // Only the hot tail (20) is left in the object; D1 holds all 150.
  const hot = await runInDurableObject(stub, (_o: ConversationObject, state) =>
    state.storage.sql.exec<{ n: number; lo: number }>("SELECT count(*) AS n, min(seq) AS lo FROM messages").one(),
  );
  expect(hot).toEqual({ n: 20, lo: 131 });
  const d1 = await (await archiveDb(conv.id)).prepare("SELECT count(*) AS n FROM messages WHERE conversation_id = ?").bind(conv.id).first<{ n: number }>();
  expect(d1?.n).toBe(150);

  // Backwards from the newest, 32 at a time.
  const seen: number[] = [];
  let before: number | null = null;
  let pages = 0;
  do {
    const q: string = before === null ? "limit=32" : `before=${before}&limit=32`;
    const page = await api("GET", `/v1/conversations/${conv.id}/messages?${q}`, { token: b.token });
    expect(page.status).toBe(200);
    const seqs = page.body.messages.map((m: { seq: number }) => m.seq);
    expect(seqs).toEqual([...seqs].sort((x: number, y: number) => x - y));
    seen.unshift(...seqs);
    before = page.body.nextBefore;
    pages++;
  } while (before !== null);
  expect(pages).toBe(5);
  expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));

  // Forwards from the start, 64 at a time, bodies intact.
  const forward: string[] = [];
  let after: number | null = 0;
  while (after !== null) {
    const page: { body: { messages: { body: string }[]; nextAfter: number | null } } = await api("GET", `/v1/conversations/${conv.id}/messages?after=${after}&limit=64`, { token: b.token });
    forward.push(...page.body.messages.map((m: { body: string }) => m.body));
    after = page.body.nextAfter;
  }
  expect(forward).toEqual(Array.from({ length: 150 }, (_, i) => `history ${i + 1}`));

  // A page straddling the seam.
  const seam = await api("GET", `/v1/conversations/${conv.id}/messages?after=120&limit=20`, { token: b.token });
  expect(seam.body.messages.map((m: { seq: number }) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 121 + i));
  expect(seam.body.nextAfter).toBe(140);

  // Bad queries get a clear error.
  for (const q of ["limit=0", "limit=201", "before=-1", "after=abc", "before=5&after=2"]) {
    const r = await api("GET", `/v1/conversations/${conv.id}/messages?${q}`, { token: b.token });
    expect(r.status, q).toBe(400);
    expect(r.body.error.code).toBe("validation_failed");
  }
  s.close();
});
