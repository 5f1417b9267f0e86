import { expect, it } from "vitest";
import { TestSocket, api, createDirect, createGroup, mintUser } from "./helpers";

it("typing goes to the other members only, throttled to one per 3 s per user, with an expiry", async () => {
  const [a, b, c] = [await mintUser(), await mintUser(), await mintUser()];
  const g = await createGroup(a, [b, c]);
  const [sa, sb, sc] = await Promise.all([a, b, c].map((u) => TestSocket.conversation(g.id, u)));
  await Promise.all([sa, sb, sc].map((s) => s!.next("caught_up")));
  const before = Date.now();
  sa!.send({ type: "typing" });
  sa!.send({ type: "typing" });
  sa!.send({ type: "typing" });
  const seen = await sb!.next("typing");
  expect(seen).toMatchObject({ userId: a.id, username: a.username, active: true });
  expect(seen.expiresAt).toBeGreaterThanOrEqual(before + 6000);
  expect(seen.expiresAt).toBeLessThanOrEqual(Date.now() + 6000);
  await sc!.next("typing");
  // Stop is never throttled.
  sa!.send({ type: "typing", active: false });
  expect(await sb!.next("typing")).toMatchObject({ active: false });
  await new Promise((r) => setTimeout(r, 100));
  expect(sb!.frames.filter((f) => f.type === "typing")).toHaveLength(2);
  expect(sa!.frames.filter((f) => f.type === "typing")).toHaveLength(0);
  [sa, sb, sc].forEach((s) => s!.close());
});

it("presence: online while any device is connected, pushed to subscribers who share a conversation", async () => {
  const [a, b, stranger] = [await mintUser(), await mintUser(), await mintUser()];
  await createDirect(a, b);
  const watcher = await TestSocket.user(b);
  await watcher.nextAny((f) => f.type === "hello");
  watcher.send({ type: "presence_subscribe", userIds: [a.id, stranger.id] });
  const initial = await watcher.nextAny((f) => f.type === "presence");
  expect(initial.presence).toEqual(
    expect.arrayContaining([
      { userId: a.id, online: false, lastSeenAt: null },
      { userId: stranger.id, online: false, lastSeenAt: null },
    ]),
  );
  // a connects a phone (user socket) and a laptop (conversation socket).
  const phone = await TestSocket.user(a);
  const online = await watcher.nextAny((f) => f.type === "presence" && (f.presence as any[])[0]?.online === true);
  expect(online.presence[0].userId).toBe(a.id);
  const dm = (await createDirect(a, b)).body.conversation;
  const laptop = await TestSocket.conversation(dm.id, a);
  await laptop.next("caught_up");
  phone.close();
  await new Promise((r) => setTimeout(r, 200));
  const viaRest = await api("GET", `/v1/users/${a.id}/presence`, { token: b.token });
  expect(viaRest.body.presence).toMatchObject({ userId: a.id, online: true });
  laptop.close();
  const offline = await watcher.nextAny((f) => f.type === "presence" && (f.presence as any[])[0]?.online === false);
  expect(offline.presence[0].lastSeenAt).toBeGreaterThan(0);
  // Strangers cannot look.
  expect((await api("GET", `/v1/users/${a.id}/presence`, { token: stranger.token })).status).toBe(403);
  watcher.send({ type: "presence_subscribe", userIds: Array.from({ length: 501 }, (_, i) => `u${i}`) });
  expect(await watcher.nextAny((f) => f.type === "error")).toMatchObject({ code: "validation_failed" });
  watcher.close();
});

it("presence=0: a conversation socket that leaves presence to the user socket takes no lease", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const dm = (await createDirect(a, b)).body.conversation;
  const presenceOfA = async () => (await api("GET", `/v1/users/${a.id}/presence`, { token: b.token })).body.presence;
  // Only a presence=0 conversation socket: a is not online (no lease was taken in a's user object).
  const quiet = await TestSocket.conversation(dm.id, a, { presence: 0 });
  await quiet.next("caught_up");
  await new Promise((r) => setTimeout(r, 300));
  expect(await presenceOfA()).toMatchObject({ online: false, lastSeenAt: null });
  // presence=1 (the default) counts as before.
  const counting = await TestSocket.conversation(dm.id, a, { presence: 1 });
  await counting.next("caught_up");
  await expect.poll(async () => (await presenceOfA()).online, { timeout: 5000 }).toBe(true);
  // Closing the counting socket releases the lease although the presence=0 socket stays open.
  counting.close();
  await expect.poll(async () => (await presenceOfA()).online, { timeout: 5000 }).toBe(false);
  // With a user socket, a is online; the presence=0 socket does not keep a online after it goes.
  const phone = await TestSocket.user(a);
  await phone.nextAny((f) => f.type === "hello");
  await expect.poll(async () => (await presenceOfA()).online, { timeout: 5000 }).toBe(true);
  phone.close();
  await expect.poll(async () => (await presenceOfA()).online, { timeout: 5000 }).toBe(false);
  quiet.close();
});

it("a large group's message reaches every member's inbox through the fan-out queue", async () => {
  const owner = await mintUser();
  const members = await Promise.all(Array.from({ length: 120 }, () => mintUser()));
  const g = await createGroup(owner, members, "big");
  await api("POST", `/v1/conversations/${g.id}/messages`, { token: owner.token, body: { clientMsgId: "hello-all", body: "hello everyone" } });
  const start = Date.now();
  const pending = new Set(members.map((m) => m.id));
  while (pending.size > 0 && Date.now() - start < 20_000) {
    await Promise.all(
      members
        .filter((m) => pending.has(m.id))
        .slice(0, 40)
        .map(async (m) => {
          const r = await api("GET", "/v1/me/conversations", { token: m.token });
          const entry = r.body.conversations.find((c: { conversationId: string }) => c.conversationId === g.id);
          if (entry?.lastSeq === 1 && entry.unread === 1 && r.body.totalUnread === 1) pending.delete(m.id);
        }),
    );
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 100));
  }
  expect(pending.size).toBe(0);
}, 40_000);
