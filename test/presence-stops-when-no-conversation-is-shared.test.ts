// Presence follows the consent rule: you may watch someone while you share a conversation and neither has
// blocked the other. It is re-checked when the sharing ends (removal, leaving) and whenever a subscription
// is renewed, so a watcher removed from the only shared group stops hearing online/offline changes.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { UserObject } from "../src/objects/user";
import { TestSocket, api, createGroup, mintUser } from "./helpers";

type PresenceFrame = { type: "presence"; presence: { userId: string; online: boolean; lastSeenAt: number | null }[] };
const entriesFor = (s: TestSocket, userId: string) =>
  (s.frames as unknown as PresenceFrame[]).filter((f) => f.type === "presence").flatMap((f) => f.presence.filter((p) => p.userId === userId));

it("look up, add, watch, remove: the watcher stops hearing the removed user's presence at once", async () => {
  const [attacker, victim, friend] = [await mintUser(), await mintUser(), await mintUser()];
  // The victim lets anyone add them (the setting is theirs); the attacker uses that to start watching.
  const g = await createGroup(attacker, [victim]);
  await createGroup(friend, [victim]);
  const spy = await TestSocket.user(attacker);
  const pal = await TestSocket.user(friend);
  for (const s of [spy, pal]) {
    await s.nextAny((f) => f.type === "hello");
    s.send({ type: "presence_subscribe", userIds: [victim.id] });
    await s.nextAny((f) => f.type === "presence");
  }
  expect((await api("DELETE", `/v1/conversations/${g.id}/members/${victim.id}`, { token: attacker.token })).status).toBe(204);
  // The watcher is told once that it may no longer see the victim: "never seen", like any stranger.
  await spy.nextAny((f) => f.type === "presence" && (f.presence as { lastSeenAt: unknown }[])[0]?.lastSeenAt === null);

  // The victim comes online: the friend hears it, the attacker does not.
  const phone = await TestSocket.user(victim);
  await pal.nextAny((f) => f.type === "presence" && (f.presence as { online: boolean }[])[0]?.online === true);
  await new Promise((r) => setTimeout(r, 300));
  expect(entriesFor(spy, victim.id).filter((p) => p.online)).toEqual([]);
  // Nor over REST.
  expect((await api("GET", `/v1/users/${victim.id}/presence`, { token: attacker.token })).status).toBe(403);
  phone.close();
  spy.close();
  pal.close();
});

it("a renewal re-checks: a subscription whose sharing ended is not renewed", async () => {
  const [watcher, watched] = [await mintUser(), await mintUser()];
  const g = await createGroup(watcher, [watched]);
  const socket = await TestSocket.user(watcher);
  await socket.nextAny((f) => f.type === "hello");
  socket.send({ type: "presence_subscribe", userIds: [watched.id] });
  await socket.nextAny((f) => f.type === "presence");
  // The directory no longer has them sharing anything (as after a removal whose prompt re-check was missed).
  await env.DB.prepare("DELETE FROM conversation_members WHERE conversation_id = ?").bind(g.id).run();
  // The renewal is due (30 minutes after the last): run it on a fresh instance, as after a wake.
  const stub = env.USERS.get(env.USERS.idFromName(watcher.id));
  await runInDurableObject(stub, async (_o, state) => {
    state.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('watches_renewed_at', '0')");
    state.storage.sql.exec("INSERT OR REPLACE INTO _schedule (kind, at) VALUES ('presence_sweep', 1)");
    await new UserObject(state, env).alarm();
  });
  // The subscription in the watched user's object lapses unrenewed; here it is dropped at once.
  const watching = await runInDurableObject(stub, (_o, state) =>
    state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM watching WHERE user_id = ?", watched.id).one().n,
  );
  expect(watching).toBe(0);
  const phone = await TestSocket.user(watched);
  await new Promise((r) => setTimeout(r, 300));
  expect(entriesFor(socket, watched.id).filter((p) => p.online)).toEqual([]);
  phone.close();
  socket.close();
});
