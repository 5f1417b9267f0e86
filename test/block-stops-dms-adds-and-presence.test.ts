// Blocking (PUT/DELETE /v1/me/blocks/:userId, GET /v1/me/blocks): no direct messages either way (a new DM
// and new messages in the existing one are refused with `blocked`; its history stays readable), no group
// adds by the blocked user whatever the setting, no presence either way, stopped at once.
import { expect, it } from "vitest";
import { TestSocket, api, createDirect, createGroup, mintUser, sendRest } from "./helpers";

it("a block refuses DMs both ways, keeps history readable, and unblocking restores them", async () => {
  const [me, pest] = [await mintUser(), await mintUser()];
  const dm = (await createDirect(pest, me)).body.conversation;
  expect((await sendRest(pest, dm.id, "before")).status).toBe(201);
  const pestSocket = await TestSocket.conversation(dm.id, pest);
  await pestSocket.next("caught_up");

  expect((await api("PUT", `/v1/me/blocks/${pest.id}`, { token: me.token })).status).toBe(204);
  expect((await api("PUT", `/v1/me/blocks/${pest.id}`, { token: me.token })).status).toBe(204); // idempotent
  const list = await api("GET", "/v1/me/blocks", { token: me.token });
  expect(list.body.blocks).toEqual([{ userId: pest.id, username: pest.username, blockedAt: expect.any(Number) }]);

  // Sending in the existing DM: refused both ways, over REST and on the socket (which stays open).
  for (const [who, id] of [[pest, "p1"], [me, "m1"]] as const) {
    const r = await sendRest(who, dm.id, id);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("blocked");
  }
  pestSocket.send({ type: "send", clientMsgId: "s1", body: "let me in" });
  expect(await pestSocket.next("error")).toMatchObject({ code: "blocked", clientMsgId: "s1" });
  pestSocket.send({ type: "send_batch", messages: [{ clientMsgId: "s2", body: "x" }, { clientMsgId: "s3", body: "y" }] });
  expect(await pestSocket.next("error", (e) => e.clientMsgId === "s3")).toMatchObject({ code: "blocked" });
  pestSocket.send('{"type": "ping"}');
  await pestSocket.next("pong");
  // A "new" DM is refused too; the history is still there for both.
  const again = await api("POST", "/v1/conversations", { token: pest.token, body: { type: "direct", userId: me.id } });
  expect(again.status).toBe(403);
  expect(again.body.error.code).toBe("blocked");
  const history = await api("GET", `/v1/conversations/${dm.id}/messages`, { token: pest.token });
  expect(history.status).toBe(200);
  expect(history.body.messages.map((m: { clientMsgId: string }) => m.clientMsgId)).toEqual(["before"]);

  // No adds by the blocked user, even for a user who lets anyone add them (the test default).
  const group = await api("POST", "/v1/conversations", { token: pest.token, body: { type: "group", title: "x", memberIds: [me.id] } });
  expect(group.status).toBe(403);
  expect(group.body.error).toMatchObject({ code: "consent_required", userIds: [me.id] });

  expect((await api("DELETE", `/v1/me/blocks/${pest.id}`, { token: me.token })).status).toBe(204);
  expect((await api("GET", "/v1/me/blocks", { token: me.token })).body.blocks).toEqual([]);
  expect((await sendRest(pest, dm.id, "after")).status).toBe(201);
  pestSocket.send({ type: "send", clientMsgId: "s4", body: "hello again" });
  expect(await pestSocket.next("ack", (a) => a.clientMsgId === "s4")).toMatchObject({ duplicate: false });
  pestSocket.close();

  // Bad targets.
  expect((await api("PUT", `/v1/me/blocks/${me.id}`, { token: me.token })).status).toBe(400);
  const ghost = await api("PUT", "/v1/me/blocks/no-such-user", { token: me.token });
  expect(ghost.status).toBe(404);
  expect(ghost.body.error.code).toBe("user_not_found");
});

it("a block ends presence both ways at once, even in a shared group", async () => {
  const [me, pest] = [await mintUser(), await mintUser()];
  await createGroup(me, [pest]);
  const [mine, theirs] = [await TestSocket.user(me), await TestSocket.user(pest)];
  for (const [s, other] of [[mine, pest], [theirs, me]] as const) {
    await s.nextAny((f) => f.type === "hello");
    s.send({ type: "presence_subscribe", userIds: [other.id] });
    await s.nextAny((f) => f.type === "presence" && (f.presence as { online: boolean }[])[0]?.online === true);
  }
  expect((await api("PUT", `/v1/me/blocks/${pest.id}`, { token: me.token })).status).toBe(204);
  // Both are told once: "never seen".
  await theirs.nextAny((f) => f.type === "presence" && (f.presence as { userId: string; lastSeenAt: unknown }[])[0]?.lastSeenAt === null);
  await mine.nextAny((f) => f.type === "presence" && (f.presence as { userId: string; lastSeenAt: unknown }[])[0]?.lastSeenAt === null);
  // Then nothing: not when either goes offline, not on a fresh subscription, not over REST.
  const before = theirs.frames.length;
  mine.close();
  await new Promise((r) => setTimeout(r, 300));
  expect(theirs.frames.slice(before)).toEqual([]);
  theirs.send({ type: "presence_subscribe", userIds: [me.id] });
  expect((await theirs.nextAny((f) => f.type === "presence")).presence).toEqual([{ userId: me.id, online: false, lastSeenAt: null }]);
  expect((await api("GET", `/v1/users/${me.id}/presence`, { token: pest.token })).status).toBe(403);
  expect((await api("GET", `/v1/users/${pest.id}/presence`, { token: me.token })).status).toBe(403);
  theirs.close();
});
