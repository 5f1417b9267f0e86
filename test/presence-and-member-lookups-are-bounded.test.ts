// Amplification: a presence_subscribe costs D1 queries and one call per id, and POST /:id/members costs D1
// lookups. One user must not be able to make the server do that without bound: subscriptions are limited
// in frequency (a token bucket in the user's object) and in how many users one user watches at once, with a
// documented error on a socket that stays open; member lookups happen only after the caller is shown to be
// allowed to add members.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { UserObject } from "../src/objects/user";
import { TestSocket, api, createGroup, mintUser, type TestUser } from "./helpers";

function userObject(user: TestUser) {
  return env.USERS.get(env.USERS.idFromName(user.id));
}

it("presence_subscribe over the rate is refused with rate_limited; the socket stays open", async () => {
  const [me, friend] = [await mintUser(), await mintUser()];
  await createGroup(me, [friend]);
  await runInDurableObject(userObject(me), (o: UserObject) => {
    o.limits.presence = { perSecond: 1 / 10, burst: 3 };
  });
  const s = await TestSocket.user(me);
  await s.nextAny((f) => f.type === "hello");
  const ids = [friend.id, ...Array.from({ length: 499 }, (_, i) => `nobody${i}`)];
  for (let i = 0; i < 6; i++) {
    s.send({ type: "presence_subscribe", userIds: ids });
    await s.nextAny((f) => f.type === "presence" || f.type === "error");
  }
  // The answers to the subscriptions only: the group's creation may reach this socket meanwhile (inbox_update, receipts).
  const answers = (s.frames as { type: string; code?: string }[])
    .filter((f) => f.type === "presence" || f.type === "error")
    .map((f) => (f.type === "error" ? f.code : f.type));
  expect(answers).toEqual(["presence", "presence", "presence", "rate_limited", "rate_limited", "rate_limited"]);
  const refusal = s.frames.find((f) => (f as { code?: string }).code === "rate_limited") as { retryAfterMs?: number };
  expect(refusal.retryAfterMs).toBeGreaterThan(5_000);
  expect(refusal.retryAfterMs).toBeLessThanOrEqual(10_000);
  s.send('{"type": "ping"}');
  await s.nextAny((f) => f.type === "pong");
  s.close();
});

it("one user watches at most MAX_WATCHED_USERS users over all their sockets", async () => {
  const me = await mintUser();
  const friends = await Promise.all(Array.from({ length: 4 }, () => mintUser()));
  await createGroup(me, friends);
  await runInDurableObject(userObject(me), (o: UserObject) => {
    o.limits.maxWatchedUsers = 5;
  });
  const [phone, laptop] = [await TestSocket.user(me), await TestSocket.user(me)];
  await Promise.all([phone, laptop].map((s) => s.nextAny((f) => f.type === "hello")));
  const friendIds = friends.map((f) => f.id);
  const strangers = ["s1", "s2", "s3"];
  phone.send({ type: "presence_subscribe", userIds: friendIds });
  expect((await phone.nextAny((f) => f.type === "presence")).presence).toHaveLength(4);
  // 4 watched by the phone + 3 more asked for by the laptop: over 5, refused before any lookup.
  laptop.send({ type: "presence_subscribe", userIds: strangers });
  expect(await laptop.nextAny((f) => f.type === "error")).toMatchObject({ code: "too_many_watched" });
  // The same users on the second device cost nothing more, and replacing a list frees room.
  laptop.send({ type: "presence_subscribe", userIds: friendIds });
  expect((await laptop.nextAny((f) => f.type === "presence")).presence).toHaveLength(4);
  phone.send({ type: "presence_subscribe", userIds: [] });
  await phone.nextAny((f) => f.type === "presence");
  laptop.send({ type: "presence_subscribe", userIds: [...friendIds.slice(0, 2), ...strangers] });
  expect((await laptop.nextAny((f) => f.type === "presence")).presence).toHaveLength(5);
  laptop.send('{"type": "ping"}');
  await laptop.nextAny((f) => f.type === "pong");
  phone.close();
  laptop.close();
});

it("POST /:id/members checks the caller's membership and role before looking anyone up", async () => {
  const [owner, member, outsider] = [await mintUser(), await mintUser(), await mintUser()];
  const g = await createGroup(owner, [member]);
  const unknown = Array.from({ length: 1000 }, (_, i) => `ghost${i}`);
  const byOutsider = await api("POST", `/v1/conversations/${g.id}/members`, { token: outsider.token, body: { userIds: unknown } });
  expect(byOutsider.status).toBe(403);
  expect(byOutsider.body.error.code).toBe("not_a_member");
  const byMember = await api("POST", `/v1/conversations/${g.id}/members`, { token: member.token, body: { userIds: unknown } });
  expect(byMember.status).toBe(403);
  expect(byMember.body.error.code).toBe("forbidden");
  const byOwner = await api("POST", `/v1/conversations/${g.id}/members`, { token: owner.token, body: { userIds: unknown } });
  expect(byOwner.status).toBe(404);
  expect(byOwner.body.error.code).toBe("user_not_found");
});
