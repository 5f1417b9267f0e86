// Fault injection: a client dies after sending and before it read the ack (its socket closes, the
// object restarts, or the ack is lost in flight). Its retry, with the same clientMsgId on a new
// socket, must yield exactly one stored message and an ack naming it.
import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser, restartConversation } from "./helpers";
import { ResumingClient } from "./fuzz-helpers";

type Death = "socket_closed" | "object_restarted" | "ack_lost";
const DEATHS: Death[] = ["socket_closed", "object_restarted", "ack_lost"];

it("every retry after a death between send and ack yields exactly one message", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const retries: { clientMsgId: string; death: Death; ack: { seq: number; id: string; duplicate: boolean } }[] = [];

  for (let i = 0; i < 24; i++) {
    const death = DEATHS[i % DEATHS.length]!;
    const clientMsgId = `dies-${i}`;
    const body = `attempt of message ${i}`;
    const s = await TestSocket.conversation(conv.id, alice);
    await s.next("caught_up");
    s.send({ type: "send", clientMsgId, body });
    if (death === "socket_closed") s.close(); // gone before any reply could be read
    else if (death === "object_restarted") await restartConversation(conv.id);
    else {
      // The object stored it and sent the ack; the client never read it (the process died).
      await s.next("ack");
      s.close();
    }
    await s.closed;

    // The retry: a new socket, the same clientMsgId and body.
    const retry = await TestSocket.conversation(conv.id, alice);
    await retry.next("caught_up");
    retry.send({ type: "send", clientMsgId, body });
    const ack = await retry.next("ack", (a) => a.clientMsgId === clientMsgId);
    retries.push({ clientMsgId, death, ack });
    retry.close();
    await retry.closed;
  }

  const history = await api("GET", `/v1/conversations/${conv.id}/messages?after=0&limit=200`, { token: bob.token });
  const messages = history.body.messages as { seq: number; id: string; clientMsgId: string; body: string }[];
  // One message per clientMsgId, in the order they were first sent, with contiguous seqs.
  expect(messages.map((m) => m.clientMsgId)).toEqual(retries.map((r) => r.clientMsgId));
  expect(messages.map((m) => m.seq)).toEqual(retries.map((_, i) => i + 1));
  for (const r of retries) {
    const stored = messages.find((m) => m.clientMsgId === r.clientMsgId)!;
    expect(r.ack, r.death).toMatchObject({ seq: stored.seq, id: stored.id });
    // When the original certainly arrived (its ack was sent), the retry is recognised as a duplicate.
    if (r.death === "ack_lost") expect(r.ack.duplicate).toBe(true);
  }
});

it("a retry after the original left the hot tail (archived to D1, pruned) is still recognised", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const c = new ResumingClient(conv.id, alice);
  await c.connect();
  c.send([["early", "the original"]]);
  await c.settle(async () => 1);
  const original = c.acks.get("early")![0]!;
  // 60 more messages with a hot tail of 20, then archive and prune.
  c.send(Array.from({ length: 60 }, (_, i) => [`fill-${i}`, `filler ${i}`] as [string, string]));
  await c.settle(async () => 61);
  await env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id)).flushArchive();
  // The client died long ago without reading that ack; it comes back and retries.
  await c.close();
  c.send([["early", "the original"]]);
  await c.settle(async () => 61);
  expect(c.acks.get("early")!.at(-1)).toMatchObject({ seq: original.seq, id: original.id, duplicate: true });
  const last = await api("GET", `/v1/conversations/${conv.id}/messages?limit=1`, { token: bob.token });
  expect(last.body.lastSeq).toBe(61);
  await c.close();
});
