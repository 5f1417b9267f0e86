// Fault injection: the object hibernates with sockets open and wakes up as a fresh instance.
//
// Local workerd does not evict an object with open hibernatable sockets on demand, so the wake is
// reproduced the way the runtime does it: a NEW ConversationObject is constructed on the same state
// (the constructor re-runs; every in-memory field starts empty) and handed the events for the
// sockets that stayed open. Whatever the object knows about a socket must then come from the
// socket's attachment: who it is, when its token expires, whether it is live.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { sign } from "hono/jwt";
import { TestSocket, api, createGroup, mintUser, restartConversation } from "./helpers";
import { ConversationObject } from "../src/objects/conversation";

function stubOf(conversationId: string) {
  return env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
}

it("after a wake, each socket's identity, token expiry and liveness come back from its attachment", async () => {
  const [alice, bob, carol] = [await mintUser(), await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob, carol]);
  // Carol's token expires in about a second: the expiry must survive the wake too.
  const carolExp = Math.ceil((Date.now() + 600) / 1000);
  const carolToken = await sign({ sub: carol.id, name: carol.username, typ: "access", iat: carolExp - 60, exp: carolExp }, env.AUTH_SECRET, "HS256");
  const a = await TestSocket.conversation(conv.id, alice, { since: 0 });
  const b = await TestSocket.conversation(conv.id, bob, { since: 0 });
  const c = await TestSocket.conversation(conv.id, { ...carol, token: carolToken }, { since: 0 });
  for (const s of [a, b, c]) await s.next("caught_up");
  await new Promise((r) => setTimeout(r, Math.max(0, carolExp * 1000 - Date.now() + 20)));

  const seen = await runInDurableObject(stubOf(conv.id), async (_old: ConversationObject, state) => {
    // The wake: a fresh instance on the same state, as after hibernation.
    const woken = new ConversationObject(state, env);
    const byUser = new Map(state.getWebSockets().map((ws) => [(ws.deserializeAttachment() as { userId: string }).userId, ws]));
    const attachments = [...byUser].map(([userId, ws]) => {
      const att = ws.deserializeAttachment() as { userId: string; username: string; exp: number; live: boolean };
      return { userId, username: att.username, exp: att.exp, live: att.live };
    });
    // Bob speaks first after the wake; then carol, whose token has expired meanwhile.
    await woken.webSocketMessage(byUser.get(bob.id)!, JSON.stringify({ type: "send", clientMsgId: "after-wake", body: "still me?" }));
    await woken.webSocketMessage(byUser.get(carol.id)!, JSON.stringify({ type: "send", clientMsgId: "too-late", body: "expired" }));
    return attachments;
  });
  const byId = (x: { userId: string }, y: { userId: string }) => x.userId.localeCompare(y.userId);
  const expected = [
    { userId: alice.id, username: alice.username, live: true },
    { userId: bob.id, username: bob.username, live: true },
    { userId: carol.id, username: carol.username, live: true, exp: carolExp },
  ].sort(byId);
  expect(seen.sort(byId)).toEqual(expected.map((x) => expect.objectContaining(x)));

  // Bob's message is attributed to bob (from the attachment, not from any request) and fanned out to
  // the live sockets the woken instance rebuilt from attachments.
  expect(await b.next("ack")).toMatchObject({ clientMsgId: "after-wake", seq: 1, duplicate: false });
  expect((await a.next("message")).message).toMatchObject({ senderId: bob.id, clientMsgId: "after-wake", seq: 1 });
  // Carol's expiry survived the wake: her frame closes the socket with TokenExpired and stores nothing.
  expect((await c.closed).code).toBe(4440);

  // Drop the stale pre-wake instance (its in-memory lastSeq no longer matches storage); the next one
  // starts from storage. Exactly one message exists, from bob.
  await restartConversation(conv.id);
  const history = await api("GET", `/v1/conversations/${conv.id}/messages?after=0`, { token: alice.token });
  expect(history.body.messages.map((m: { senderId: string; clientMsgId: string }) => [m.senderId, m.clientMsgId])).toEqual([[bob.id, "after-wake"]]);
});

it("after a wake, removing a member still finds and closes that member's sockets (by tag)", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const conv = await createGroup(alice, [bob]);
  const a = await TestSocket.conversation(conv.id, alice, { since: 0 });
  const b = await TestSocket.conversation(conv.id, bob, { since: 0 });
  await a.next("caught_up");
  await b.next("caught_up");
  const result = await runInDurableObject(stubOf(conv.id), async (_old: ConversationObject, state) => {
    const woken = new ConversationObject(state, env);
    return woken.removeMember({ userId: alice.id, username: alice.username, exp: Math.floor(Date.now() / 1000) + 60 }, bob.id);
  });
  expect(result.ok).toBe(true);
  expect((await b.closed).code).toBe(4403);
  expect(await a.next("members_changed")).toMatchObject({ removed: [bob.id] });
  a.close();
  await restartConversation(conv.id);
});
