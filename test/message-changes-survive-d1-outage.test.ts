// Protocol 15 with D1 down: changes to recent messages keep working and are queued for the archive; a change to
// a message only D1 holds is refused with a retryable `unavailable`; when D1 returns, the queue drains and
// D1 holds exactly the current state (a deleted body never reaches it, and nothing is lost).
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { ConversationObject } from "../src/objects/conversation";
import { HistoryArchive, type ArchiveRow, type D1Statement } from "../src/db/archive";
import type { StoredMessage } from "../src/objects/conversation/stream";
import { TestSocket, createGroup, mintUser, archiveDb } from "./helpers";
import { act, messagesOf, storedText, stubOf } from "./message-changes";

class SwitchableArchive extends HistoryArchive {
  down = false;
  #check(): void {
    if (this.down) throw new Error("D1_ERROR: simulated outage");
  }
  override async writeMessages(conversationId: string, rows: ArchiveRow[]): Promise<void> {
    this.#check();
    return super.writeMessages(conversationId, rows);
  }
  override async readMessages(conversationId: string, from: number, to: number): Promise<StoredMessage[]> {
    this.#check();
    return super.readMessages(conversationId, from, to);
  }
  override async run(statements: D1Statement[]): Promise<void> {
    this.#check();
    return super.run(statements);
  }
}

it("with D1 down, recent messages still change, archived ones answer unavailable; D1 catches up to the current state", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const stub = stubOf(conv.id);
  const db = await archiveDb(conv.id);
  await runInDurableObject(stub, (o: ConversationObject) => {
    o.archive = new SwitchableArchive(db);
  });
  const setDown = (down: boolean) =>
    runInDurableObject(stub, (o: ConversationObject) => {
      (o.archive as SwitchableArchive).down = down;
    });
  const a = await TestSocket.conversation(conv.id, alice, { v: 2 });
  await a.next("caught_up");
  a.send({ type: "send_batch", messages: Array.from({ length: 30 }, (_, i) => ({ clientMsgId: `m${i + 1}`, body: `secret ${i + 1}` })) });
  await a.waitForMessages(30);
  await stub.flushArchive(); // 1-10 leave the object
  await setDown(true);

  expect((await act(a, { type: "edit", clientMsgId: "e", seq: 25, body: "edited 25" })).type).toBe("ack");
  expect((await act(a, { type: "delete", clientMsgId: "d", seq: 26 })).type).toBe("ack");
  expect((await act(a, { type: "react", clientMsgId: "r", seq: 27, emoji: "👍", on: true })).type).toBe("ack");
  const cold = await act(a, { type: "delete", clientMsgId: "dc", seq: 3 });
  expect(cold).toMatchObject({ type: "error", code: "unavailable" });
  expect(cold.retryAfterMs).toBeGreaterThan(0);
  // Sending goes on.
  expect((await act(a, { type: "send", clientMsgId: "more", body: "still sending" })).type).toBe("ack");
  await stub.flushArchive(); // fails quietly: D1 is down, nothing is lost

  await setDown(false);
  expect((await act(a, { type: "delete", clientMsgId: "dc", seq: 3 })).type).toBe("ack"); // the retry
  await stub.flushArchive();
  const { d1, object } = await storedText(conv.id);
  for (const gone of ["secret 3 ", "secret 26 ", "secret 25 "]) {
    expect(d1).not.toContain(gone);
    expect(object).not.toContain(gone);
  }
  const rows = await db.prepare("SELECT seq, body, extra FROM messages WHERE conversation_id = ? AND seq IN (3, 25, 26, 27) ORDER BY seq").bind(conv.id).all<{ seq: number; body: string; extra: string | null }>();
  expect(rows.results.map((r) => [r.seq, r.body, JSON.parse(r.extra ?? "{}").deleted !== undefined])).toEqual([
    [3, "", true],
    [25, "edited 25", false],
    [26, "", true],
    [27, "secret 27", false],
  ]);
  expect(JSON.parse(rows.results[3]!.extra!).reactions).toEqual([{ emoji: "👍", count: 1 }]);
  // History agrees, every entry there once.
  const history = await messagesOf(bob, conv.id);
  expect(history.length).toBe(31);
  a.close();
});
