// Per-user quotas on conversation creation and member changes: token buckets in the user's own object,
// persisted there (a hibernation or restart does not hand out a fresh burst). Over the quota: 429
// rate_limited with retryAfterMs and Retry-After, before any other work. Leaving is never limited.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import type { UserObject } from "../src/objects/user";
import { api, createGroup, mintUser, type TestUser } from "./helpers";

/** Install small buckets (the test config lifts the defaults for the bulk tests). */
async function limit(user: TestUser, kind: "create" | "members", burst: number, perHour: number) {
  await runInDurableObject(env.USERS.get(env.USERS.idFromName(user.id)), (o: UserObject) => {
    o.limits[kind] = { perSecond: perHour / 3600, burst };
  });
}

it("creating conversations: a burst, then 429 with Retry-After; other users unaffected", async () => {
  const [spammer, bystander, target] = [await mintUser(), await mintUser(), await mintUser()];
  await limit(spammer, "create", 3, 60);
  const tries = [];
  for (let i = 0; i < 5; i++) {
    tries.push(await api("POST", "/v1/conversations", { token: spammer.token, body: { type: "group", title: `g${i}`, memberIds: [target.id] } }));
  }
  expect(tries.map((r) => r.status)).toEqual([201, 201, 201, 429, 429]);
  const over = tries[3]!;
  expect(over.body.error.code).toBe("rate_limited");
  // 60 an hour: the next token is about a minute away.
  expect(over.body.error.retryAfterMs).toBeGreaterThan(50_000);
  expect(over.body.error.retryAfterMs).toBeLessThanOrEqual(60_000);
  expect(Number(over.headers.get("Retry-After"))).toBe(Math.ceil(over.body.error.retryAfterMs / 1000));
  // Direct conversations count too.
  expect((await api("POST", "/v1/conversations", { token: spammer.token, body: { type: "direct", userId: target.id } })).status).toBe(429);
  expect((await api("POST", "/v1/conversations", { token: bystander.token, body: { type: "group", title: "fine", memberIds: [target.id] } })).status).toBe(201);
});

it("member changes: adds, removals of others and role changes share a bucket; leaving is never limited", async () => {
  const [owner, ...others] = await Promise.all(Array.from({ length: 6 }, () => mintUser()));
  const g = await createGroup(owner!, [others[0]!]);
  await limit(owner!, "members", 2, 3600);
  const path = `/v1/conversations/${g.id}/members`;
  expect((await api("POST", path, { token: owner!.token, body: { userIds: [others[1]!.id] } })).status).toBe(200);
  expect((await api("PATCH", `${path}/${others[1]!.id}`, { token: owner!.token, body: { role: "admin" } })).status).toBe(200);
  const over = await api("DELETE", `${path}/${others[1]!.id}`, { token: owner!.token });
  expect(over.status).toBe(429);
  expect(over.body.error.code).toBe("rate_limited");
  expect(over.headers.get("Retry-After")).toBe("1");
  // The refused removal changed nothing.
  const now = await api("GET", `/v1/conversations/${g.id}`, { token: owner!.token });
  expect(now.body.conversation.members.map((m: { userId: string }) => m.userId)).toContain(others[1]!.id);
  // A member over its own quota can still leave.
  await limit(others[0]!, "members", 1, 1);
  expect((await api("DELETE", `${path}/${others[0]!.id}`, { token: others[0]!.token })).status).toBe(204);
  // The bucket refills (1 a second here).
  await new Promise((r) => setTimeout(r, 1100));
  expect((await api("DELETE", `${path}/${others[1]!.id}`, { token: owner!.token })).status).toBe(204);
});

it("the buckets survive the user object restarting", async () => {
  const [spammer, target] = [await mintUser(), await mintUser()];
  await limit(spammer, "create", 1, 60);
  expect((await api("POST", "/v1/conversations", { token: spammer.token, body: { type: "group", title: "one", memberIds: [target.id] } })).status).toBe(201);
  // A fresh instance on the same storage (a wake after hibernation or eviction) with the same small rule.
  const stub = env.USERS.get(env.USERS.idFromName(spammer.id));
  await runInDurableObject(stub, (_o, state) => state.abort("test: restart")).catch(() => undefined);
  await limit(spammer, "create", 1, 60);
  expect((await api("POST", "/v1/conversations", { token: spammer.token, body: { type: "group", title: "two", memberIds: [target.id] } })).status).toBe(429);
});
