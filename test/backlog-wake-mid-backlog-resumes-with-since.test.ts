// Item 4 of issue 11: the pager that sends a backlog lives in memory. If the object wakes as a fresh instance
// (hibernation, as in fault-hibernation-wake.test.ts) while a socket is still catching up, that socket would
// never go live: the woken object closes it with 1011, and the client resumes with `since` and loses nothing.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { ConversationObject } from "../src/objects/conversation";
import { TestSocket, createGroup, mintUser, restartConversation } from "./helpers";
import { seed, stubOf, tune } from "./backlog-helpers";

it("a socket still catching up when the object wakes is closed with 1011 and resumes from what it holds", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  await tune(conv.id, { backlogPageBytes: 2_000, backlogSocketBytesPerSecond: 20_000, backlogObjectBytesPerSecond: 1_000_000 }, true);
  await seed(conv.id, alice, 40, 1_000);

  const reader = await TestSocket.conversation(conv.id, bob, { since: 0 });
  await reader.next("backlog");
  // Mid-backlog: some pages arrived, the socket is not live yet.
  expect(reader.frames.some((f) => f.type === "caught_up")).toBe(false);

  await runInDurableObject(stubOf(conv.id), (_old: ConversationObject, state) => void new ConversationObject(state, env));
  const closed = await reader.closed;
  expect(closed.code).toBe(1011);
  const held = reader.messages();
  expect(held.length).toBeGreaterThan(0);
  expect(held.length).toBeLessThan(40);
  expect(held.map((m) => m.seq)).toEqual(Array.from({ length: held.length }, (_, i) => i + 1));

  // Drop the stale pre-wake instance; the client resumes with since = the last seq it holds.
  await restartConversation(conv.id);
  const resumed = await TestSocket.conversation(conv.id, bob, { since: held[held.length - 1]!.seq });
  await resumed.next("caught_up", () => true, 15_000);
  expect([...held, ...resumed.messages()].map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  resumed.close();
});
