// The stored inbox fan-out is background work (objects/shared/updates.ts STORED_FANOUT_PACE): it updates user
// objects a chunk at a time and returns to the event loop between chunks, so sends and live events that arrive
// meanwhile are not held behind a burst of inbox commits (bench/README.md, scenario 8). lib/concurrency.ts.
import { expect, it } from "vitest";
import { pacedSettled } from "../src/lib/concurrency";

it("runs every item, a chunk at a time, and lets waiting work run between chunks", async () => {
  let inFlight = 0;
  let most = 0;
  const order: string[] = [];
  // Work that arrives while the first chunk runs (a send, a live event): it must not wait for the last chunk.
  setTimeout(() => order.push("other work"), 0);
  const results = await pacedSettled(Array.from({ length: 25 }, (_, i) => i), { chunk: 10, pauseMs: 1 }, async (i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    order.push(`item ${i}`);
    await Promise.resolve();
    inFlight--;
    if (i === 13) throw new Error("user object unavailable");
    return i * 2;
  });
  // A call that throws before returning a promise is one failed result too.
  const sync = await pacedSettled([1, 2], { chunk: 10, pauseMs: 1 }, (i: number): Promise<number> => {
    if (i === 1) throw new Error("bad target");
    return Promise.resolve(i);
  });
  expect(sync.map((r) => r.status)).toEqual(["rejected", "fulfilled"]);
  expect(most).toBe(10);
  expect(order.indexOf("other work")).toBe(10); // after the first chunk, before the second
  expect(order.filter((o) => o.startsWith("item"))).toHaveLength(25);
  // Like Promise.allSettled: one result per item, in order; a failure is reported, never thrown.
  expect(results.map((r) => (r.status === "fulfilled" ? r.value : "failed"))).toEqual(Array.from({ length: 25 }, (_, i) => (i === 13 ? "failed" : i * 2)));
});

