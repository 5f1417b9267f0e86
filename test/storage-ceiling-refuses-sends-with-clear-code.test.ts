// Item 8 of issue 11: during a long D1 outage the hot tail only grows. Each conversation object has a storage
// ceiling: a warning is logged from 80 %, and at the ceiling new messages are refused with
// `conversation_storage_full` (retryable, with retryAfterMs), never internal_error. When D1 is back the archive
// prunes, and sends are accepted again.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import type { ServerFrame } from "../src/protocol/frames";
import { TestSocket, createGroup, mintUser, sendRest } from "./helpers";
import { captureLogs, stubOf, tune } from "./backlog-helpers";

it("at the storage ceiling sends are refused with conversation_storage_full, after a warning, and accepted again once archived", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const size = () => runInDurableObject(stubOf(conv.id), (_o: ConversationObject, state) => state.storage.sql.databaseSize);
  // Room for about 50 messages of 4 KB above what the object holds now; D1 is down, so nothing is pruned.
  await tune(conv.id, { storageCeilingBytes: (await size()) + 200_000 }, true);
  const logs = captureLogs();
  try {
    const s = await TestSocket.conversation(conv.id, alice);
    await s.next("caught_up");
    const outcomes: Extract<ServerFrame, { type: "ack" | "error" }>[] = [];
    for (let batch = 0; batch < 40 && !outcomes.some((o) => o.type === "error"); batch++) {
      s.send({ type: "send_batch", messages: Array.from({ length: 5 }, (_, i) => ({ clientMsgId: `f${batch}-${i}`, body: "y".repeat(4_000) })) });
      for (let i = 0; i < 5; i++) outcomes.push(await s.waitFor((f): f is Extract<ServerFrame, { type: "ack" | "error" }> => f.type === "ack" || f.type === "error"));
    }
    const acked = outcomes.filter((o) => o.type === "ack").length;
    const errors = outcomes.filter((o) => o.type === "error");
    expect(acked).toBeGreaterThan(20);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toMatchObject({ code: "conversation_storage_full", retryAfterMs: 60_000 });
    expect(outcomes.some((o) => o.type === "error" && o.code === "internal_error")).toBe(false);
    // Loud before and at the ceiling.
    expect(logs.lines.some((l) => l.includes('"at":"storage_ceiling_warning"'))).toBe(true);
    expect(logs.lines.some((l) => l.includes('"at":"storage_ceiling_reached"'))).toBe(true);
    // REST: 507 with the same code and a Retry-After header.
    const rest = await sendRest(bob, conv.id, "rest-full", "z".repeat(100));
    expect(rest.status).toBe(507);
    expect(rest.body.error.code).toBe("conversation_storage_full");
    expect(rest.headers.get("Retry-After")).toBe("60");

    // D1 is back: the archive catches up and prunes to the hot tail (20 in tests); sends are accepted again.
    await runInDurableObject(stubOf(conv.id), (o: ConversationObject) => void (o.archive = undefined));
    await stubOf(conv.id).flushArchive();
    const again = await sendRest(bob, conv.id, "after-archive", "back");
    expect(again.status).toBe(201);
    s.close();
  } finally {
    logs.stop();
  }
});
