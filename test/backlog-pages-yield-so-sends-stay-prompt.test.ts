// Item 4 of issue 11: connecting with since=0 must not freeze the conversation. Several sockets page through a
// large backlog (everything in the hot tail: D1 is down) while another member sends: the send is acked at once,
// the readers are still paging when it is, and no synchronous step hands a socket more than one bounded page.
import { expect, it } from "vitest";
import { BACKLOG_PAGE_SIZE } from "../src/protocol/frames";
import { TestSocket, createGroup, mintUser } from "./helpers";
import { recordBacklogSteps, seed, tune } from "./backlog-helpers";

const PAGE_BYTES = 64 * 1024;

it("a member's send is acked promptly while several sockets page through a large backlog", async () => {
  const [alice, bob, ...readers] = [await mintUser(), await mintUser(), await mintUser(), await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob, ...readers]);
  // 130 messages of 8 KB (about 1 MB) per reader; each reader may take 1 MB/s, all of them together 2 MB/s.
  await tune(conv.id, { backlogPageBytes: PAGE_BYTES, backlogSocketBytesPerSecond: 1_000_000, backlogObjectBytesPerSecond: 2_000_000 }, true);
  await seed(conv.id, alice, 130, 8_000);

  const talker = await TestSocket.conversation(conv.id, bob);
  await talker.next("caught_up");
  const rec = recordBacklogSteps();
  try {
    const sockets = await Promise.all(readers.map((r) => TestSocket.conversation(conv.id, r, { since: 0 })));
    for (const s of sockets) await s.next("welcome");
    const sentAt = Date.now();
    talker.send({ type: "send", clientMsgId: "while-paging", body: "hello" });
    const ack = await talker.next("ack");
    const ackMs = Date.now() - sentAt;
    const caughtUpBeforeAck = sockets.filter((s) => s.frames.some((f) => f.type === "caught_up")).length;

    expect(ack).toMatchObject({ clientMsgId: "while-paging", seq: 131 });
    // The readers were still being paged when the send was acked: it did not wait behind their backlogs.
    expect(caughtUpBeforeAck).toBe(0);
    expect(ackMs).toBeLessThan(1_000);

    // Every reader still gets everything, in order, once (the new message included, in its backlog or live).
    for (const s of sockets) {
      await s.waitForMessages(131, 20_000);
      expect(s.messages().map((m) => m.seq)).toEqual(Array.from({ length: 131 }, (_, i) => i + 1));
    }
    // Bounded work per step: never more than one page (rows and bytes) handed to sockets in one synchronous step.
    expect(rec.steps.length).toBeGreaterThan(0);
    expect(Math.max(...rec.steps.map((s) => s.messages))).toBeLessThanOrEqual(BACKLOG_PAGE_SIZE);
    expect(Math.max(...rec.steps.map((s) => s.bytes))).toBeLessThanOrEqual(PAGE_BYTES + 8_200);
    for (const s of sockets) s.close();
  } finally {
    rec.stop();
    talker.close();
  }
});
