// Item 4 of issue 11: a backlog sent in paced pages meets live sends. Messages committed while a socket is
// still catching up reach it after the pages before them, in seq order, exactly once; it goes live only when
// the pager has reached the newest seq, in the same step.
import { expect, it } from "vitest";
import { TestSocket, createGroup, mintUser } from "./helpers";
import { seed, tune } from "./backlog-helpers";

it("a paged backlog has no gap and no duplicate across the switch to live while members keep sending", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  // Small pages, slowly: the backlog takes several hundred ms, so sends land while it is paged.
  await tune(conv.id, { backlogPageBytes: 4_000, backlogSocketBytesPerSecond: 100_000, backlogObjectBytesPerSecond: 1_000_000 }, true);
  await seed(conv.id, alice, 60, 1_000);

  const sender = await TestSocket.conversation(conv.id, alice);
  await sender.next("caught_up");
  const reader = await TestSocket.conversation(conv.id, bob, { since: 0 });
  const welcome = await reader.next("welcome");
  expect(welcome.lastSeq).toBe(60);
  // Keep sending, one frame every few ms, while the reader catches up.
  for (let i = 0; i < 40; i++) {
    sender.send({ type: "send", clientMsgId: `live${i}`, body: `live ${i}` });
    await new Promise((r) => setTimeout(r, 5));
  }
  await reader.waitForMessages(100, 20_000);
  expect(reader.messages().map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));

  const kinds = reader.frames.map((f) => f.type);
  const caughtUp = kinds.indexOf("caught_up");
  expect(caughtUp).toBeGreaterThan(kinds.lastIndexOf("backlog"));
  expect(kinds.slice(0, caughtUp)).not.toContain("message");
  // The pages really interleaved with the sends: messages committed after welcome came in backlog pages.
  const inBacklog = reader.frames.flatMap((f) => (f.type === "backlog" ? f.messages : []));
  expect(inBacklog.filter((m) => m.seq > 60).length).toBeGreaterThan(0);
  expect(reader.frames.filter((f) => f.type === "backlog").length).toBeGreaterThan(10);
  // caught_up names the last seq delivered in the backlog; everything above it came live.
  const caught = reader.frames[caughtUp] as { seq: number };
  expect(caught.seq).toBe(inBacklog[inBacklog.length - 1]!.seq);
  sender.close();
  reader.close();
});
