import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { TestSocket, api, createGroup, mintUser, sendRest, uniq } from "./helpers";
import type { ConversationObject } from "../src/objects/conversation";
import { TokenBuckets } from "../src/lib/rate-limit";

it("a sender over its rate gets rate_limited with retry-after; others in the conversation are unaffected", async () => {
  const [flooder, bystander] = [await mintUser(), await mintUser()];
  const g = await createGroup(flooder, [bystander]);
  // The production default (10/s, burst 20); the test config raises it for the bulk-sending tests.
  await runInDurableObject(env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(g.id)), (o: ConversationObject) => {
    o.sendLimiter = new TokenBuckets(10, 20);
  });
  const s = await TestSocket.conversation(g.id, flooder);
  await s.next("caught_up");
  // Burst 20: a batch of 35 gets 20 acks and 15 rate_limited errors, each naming its clientMsgId.
  s.send({ type: "send_batch", messages: Array.from({ length: 35 }, (_, i) => ({ clientMsgId: `f${i}`, body: `flood ${i}` })) });
  await s.waitForMessages(20);
  await new Promise((r) => setTimeout(r, 100));
  const acks = s.frames.filter((f) => f.type === "ack");
  const limited = s.frames.filter((f) => f.type === "error" && f.code === "rate_limited");
  expect(acks).toHaveLength(20);
  expect(limited).toHaveLength(15);
  expect(limited[0]).toMatchObject({ clientMsgId: "f20" });
  expect((limited[0] as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
  // The socket stays open; a retry of an acked message is still answered (duplicates are free).
  s.send({ type: "send", clientMsgId: "f0", body: "flood 0" });
  expect(await s.next("ack", (a) => a.clientMsgId === "f0" && a.duplicate)).toMatchObject({ seq: 1 });
  // REST says 429 with Retry-After.
  const tries = await Promise.all(Array.from({ length: 8 }, (_, i) => sendRest(flooder, g.id, `rest-over-${i}`)));
  const rest = tries.find((r) => r.status === 429)!;
  expect(rest).toBeDefined();
  expect(tries.filter((r) => r.status === 201).length).toBeLessThanOrEqual(4);
  expect(rest.body.error.code).toBe("rate_limited");
  expect(Number(rest.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
  // Everyone else is fine.
  expect((await sendRest(bystander, g.id, "calm")).status).toBe(201);
  // Tokens come back at 10/s.
  await new Promise((r) => setTimeout(r, 350));
  expect((await sendRest(flooder, g.id, "later")).status).toBe(201);
  s.close();
});

it("per-IP limits on login stop brute force from one address but not from others", async () => {
  // The AUTH_LIMITER binding counts in fixed one-minute windows. This test owns its addresses (no other test
  // uses 192.0.2.40-49), and if a window boundary falls inside the run it starts again in the fresh window.
  for (let attempt = 0; ; attempt++) {
    const ip = `192.0.2.${40 + attempt}`;
    const window = Math.floor(Date.now() / 60_000);
    const username = uniq("bf").slice(0, 20);
    await api("POST", "/v1/auth/signup", { body: { username, password: "the right password" }, headers: { "CF-Connecting-IP": ip } });
    const statuses: number[] = [];
    for (let i = 0; i < 24; i++) {
      const r = await api("POST", "/v1/auth/login", { body: { username, password: `guess ${i}` }, headers: { "CF-Connecting-IP": ip } });
      statuses.push(r.status);
    }
    const blocked = await api("POST", "/v1/auth/login", { body: { username, password: "the right password" }, headers: { "CF-Connecting-IP": ip } });
    if (Math.floor(Date.now() / 60_000) !== window && attempt < 2) continue;
    expect(statuses.filter((x) => x === 401).length).toBe(19);
    expect(statuses.slice(19).every((x) => x === 429)).toBe(true);
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe("rate_limited");
    const elsewhere = await api("POST", "/v1/auth/login", { body: { username, password: "the right password" }, headers: { "CF-Connecting-IP": "198.51.100.7" } });
    expect(elsewhere.status).toBe(200);
    return;
  }
});

it("caps concurrent sockets per user; the cap frees up when one closes", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const sockets = [];
  for (let i = 0; i < 10; i++) {
    const s = await TestSocket.conversation(g.id, a);
    await s.next("caught_up");
    sockets.push(s);
  }
  const eleventh = await TestSocket.conversation(g.id, a);
  expect((await eleventh.closed).code).toBe(4429);
  // Another user is not affected.
  const other = await TestSocket.conversation(g.id, b);
  await other.next("caught_up");
  sockets[0]!.close();
  await sockets[0]!.closed;
  await new Promise((r) => setTimeout(r, 50));
  const again = await TestSocket.conversation(g.id, a);
  await again.next("caught_up");
  [...sockets, other, again].forEach((s) => s.close());
});
