// Item 9 of issue 11: archived_seq must never move backwards, even when an ops flush (flushArchive) overlaps
// the alarm's archive run: a lower archived_seq would make the archive rewrite and the pruning bound regress.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive, type ArchiveRow } from "../src/db/archive";
import type { ChatMessage } from "../src/protocol/frames";
import { createGroup, mintUser, archiveDb } from "./helpers";
import { seed, stubOf } from "./backlog-helpers";

/** Slow D1 writes, so runs started by the alarm and by flushArchive overlap. */
class SlowArchive extends HistoryArchive {
  override async writeMessages(conversationId: string, messages: ArchiveRow[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 30 + Math.random() * 40));
    await super.writeMessages(conversationId, messages);
  }
}

it("archived_seq only moves forward while ops flushes overlap the alarm's archive runs", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const stub = stubOf(conv.id);
  const db = await archiveDb(conv.id);
  await runInDurableObject(stub, (o: ConversationObject) => void (o.archive = new SlowArchive(db)));
  const read = () =>
    runInDurableObject(stub, (_o: ConversationObject, s) => Number(s.storage.sql.exec<{ v: string }>("SELECT value AS v FROM meta WHERE key = 'archived_seq'").one().v));
  const samples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push(await read());
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  for (let round = 0; round < 4; round++) {
    await seed(conv.id, alice, 40, 10, `r${round}-`);
    // The alarm's run is due in 250 ms; flushes start now and while it runs.
    await Promise.all([stub.flushArchive(), new Promise((r) => setTimeout(r, 260)).then(() => stub.flushArchive()), stub.flushArchive()]);
  }
  sampling = false;
  await sampler;
  samples.push(await read());
  for (let i = 1; i < samples.length; i++) expect(samples[i]!, `sample ${i}`).toBeGreaterThanOrEqual(samples[i - 1]!);
  expect(samples[samples.length - 1]).toBe(160);
});
