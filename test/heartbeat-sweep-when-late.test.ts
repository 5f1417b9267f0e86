// Heartbeat sweeps. Graceful overload: a sweep that runs late (the runtime was busy, so pings that arrived meanwhile
// may not be recorded yet) closes nobody; the next punctual sweep still closes sockets that really are silent.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { ConversationObject } from "../src/objects/conversation";
import { TestSocket, createGroup, mintUser } from "./helpers";
import { IDENTITY_HEADER } from "../src/objects/shared/upgrade";

const stubOf = (id: string) => env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));

/** Make every socket look silent for a minute, schedule the sweep `lateByMs` in the past, and run the alarm in a fresh instance (as after a wake). */
async function sweepLate(conversationId: string, lateByMs: number) {
  await runInDurableObject(stubOf(conversationId), async (_old: ConversationObject, state) => {
    for (const ws of state.getWebSockets()) {
      const att = ws.deserializeAttachment() as { connectedAt: number };
      ws.serializeAttachment({ ...att, connectedAt: Date.now() - 60_000 });
    }
    state.storage.sql.exec("INSERT OR REPLACE INTO _schedule (kind, at) VALUES ('presence', ?)", Date.now() - lateByMs);
    await new ConversationObject(state, env).alarm();
  });
}

it("a sweep held up by a busy runtime closes no socket; a punctual one closes the silent ones", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const sa = await TestSocket.conversation(g.id, a);
  const sb = await TestSocket.conversation(g.id, b);
  await sa.next("caught_up");
  await sb.next("caught_up");

  await sweepLate(g.id, 10_000);
  const stillOpen = await Promise.race([sa.closed.then(() => false), new Promise((r) => setTimeout(() => r(true), 300))]);
  expect(stillOpen).toBe(true);
  sa.send({ type: "send", clientMsgId: "alive", body: "still here" });
  expect(await sb.next("message")).toMatchObject({ message: { clientMsgId: "alive" } });

  await sweepLate(g.id, 100);
  expect((await sa.closed).code).toBe(4408);
  expect((await sb.closed).code).toBe(4408);
});

const presenceDue = (conversationId: string) =>
  runInDurableObject(stubOf(conversationId), async (_o: ConversationObject, state) => {
    return state.storage.sql.exec<{ at: number }>("SELECT at FROM _schedule WHERE kind = 'presence'").toArray()[0]?.at ?? null;
  });

it("presence=0 sockets are swept every 5 minutes, counting ones every half TTL; a user at the cap gets in by closing their silent sockets", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const g = await createGroup(a, [b]);
  const quiet = await TestSocket.conversation(g.id, a, { presence: 0 });
  await quiet.next("caught_up");
  // Only presence=0 sockets: no device goes offline through them, so the sweep (an alarm and a stored row) is rare.
  expect(await presenceDue(g.id)).toBeGreaterThan(Date.now() + 4 * 60_000);
  const counting = await TestSocket.conversation(g.id, b);
  await counting.next("caught_up");
  expect(await presenceDue(g.id)).toBeLessThanOrEqual(Date.now() + 15_000);
  counting.close();

  // a fills the per-user cap (10 here) with sockets that then go silent, as tabs closed without a close event.
  const more = await Promise.all(Array.from({ length: 9 }, () => TestSocket.conversation(g.id, a, { presence: 0 })));
  await Promise.all(more.map((s) => s.next("caught_up")));
  // The next device is let in at once (not refused with 4429 until a sweep minutes away), and the silent ones go.
  // As in fault-hibernation-wake: a fresh instance on the same state reads the (rewritten) attachments.
  const first = await runInDurableObject(stubOf(g.id), async (_o: ConversationObject, state) => {
    for (const ws of state.getWebSockets(a.id)) {
      const att = ws.deserializeAttachment() as { connectedAt: number };
      ws.serializeAttachment({ ...att, connectedAt: Date.now() - 60_000 });
    }
    const woken = new ConversationObject(state, env);
    const identity = { userId: a.id, username: a.username, exp: Math.floor(Date.now() / 1000) + 600 };
    const res = await woken.fetch(new Request("https://conversation/ws?v=1&presence=0", { headers: { Upgrade: "websocket", [IDENTITY_HEADER]: JSON.stringify(identity) } }));
    const ws = res.webSocket!;
    const heard = new Promise<string>((resolve) => {
      ws.addEventListener("message", (e) => resolve(JSON.parse(String(e.data)).type));
      ws.addEventListener("close", (e) => resolve(`closed ${e.code}`));
    });
    ws.accept();
    const type = await heard;
    ws.close(1000);
    return type;
  });
  expect(first).toBe("welcome");
  expect((await quiet.closed).code).toBe(4408);
  for (const s of more) expect((await s.closed).code).toBe(4408);
});
