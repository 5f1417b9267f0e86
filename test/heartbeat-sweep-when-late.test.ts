// Graceful overload: a heartbeat sweep that runs late (the runtime was busy, so pings that arrived meanwhile
// may not be recorded yet) closes nobody; the next punctual sweep still closes sockets that really are silent.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { ConversationObject } from "../src/objects/conversation";
import { TestSocket, createGroup, mintUser } from "./helpers";

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
