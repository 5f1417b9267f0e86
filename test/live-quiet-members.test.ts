// A member of a small conversation with no user socket open answers a live event "not listening". The
// conversation then stops asking that member's user object (one request, not one per message) until the user
// object asks again, which it does when a user socket opens; the answer to that ask is where the conversation
// is, so a message that came in between reaches the new socket too. Every live event is a billed request.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { LiveFeed } from "../src/objects/conversation/live";
import type { ConversationSummary } from "../src/objects/shared/updates";
import { TestSocket, createDirect, liveSummary, mintUser, restartObject, uniq, type TestUser } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const userStub = (u: TestUser) => env.USERS.get(env.USERS.idFromName(u.id));

/**
 * Count the `conversationLive` requests that reach a user's (real, running) object: the class's method is
 * wrapped (RPC calls the prototype's), counting per instance; `restore()` puts it back.
 */
async function countLive(u: TestUser): Promise<{ count: () => Promise<number>; restore: () => Promise<void> }> {
  type Counted = { conversationLive(e: ConversationSummary[]): Promise<boolean>; __live?: number };
  const proto = await runInDurableObject(userStub(u), (o) => Object.getPrototypeOf(o) as Counted);
  const real = proto.conversationLive;
  proto.conversationLive = function (this: Counted, e) {
    this.__live = (this.__live ?? 0) + 1;
    return real.call(this, e);
  };
  return {
    count: () => runInDurableObject(userStub(u), (o) => (o as unknown as Counted).__live ?? 0),
    restore: async () => {
      proto.conversationLive = real;
    },
  };
}

const lastSeqs = (s: TestSocket, conversationId: string) => [
  ...new Set(s.frames.filter((f: any) => f.type === "inbox_update" && f.entry.conversationId === conversationId).map((f: any) => f.entry.lastSeq as number)),
];

/** Alice sends `from`..`to` on her conversation socket, `gapMs` apart, and waits for the last ack. */
async function sendRun(socket: TestSocket, from: number, to: number, gapMs = 20): Promise<void> {
  for (let i = from; i <= to; i++) {
    socket.send({ type: "send", clientMsgId: `q${i}`, body: `message ${i}` });
    await sleep(gapMs);
  }
  await socket.nextAny((f) => f.type === "ack" && (f as any).clientMsgId === `q${to}`);
}

it("an offline member is asked once, not per message; a user socket opening hears every message live again", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const dm = (await createDirect(alice, bob)).body.conversation;
  const aliceConv = await TestSocket.conversation(dm.id, alice);
  await aliceConv.next("caught_up");
  const counter = await countLive(bob);
  const bobLive = counter.count;
  try {
    await sendRun(aliceConv, 1, 10);
    await sleep(200);
    // The first event was answered "not listening"; the nine after it asked nothing.
    expect(await bobLive()).toBe(1);

    const bobUser = await TestSocket.user(bob);
    await bobUser.nextAny((f) => f.type === "hello");
    await sleep(500); // the ask on connect reaches the conversation
    await sendRun(aliceConv, 11, 20);
    await bobUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 20, 3_000);
    // Told one by one, 20 ms apart: the stored fan-out (at most one update a second) cannot have brought these.
    expect(lastSeqs(bobUser, dm.id).filter((s) => s > 10)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(await bobLive()).toBeGreaterThanOrEqual(11);

    // The socket goes: quiet again after one answer.
    bobUser.close();
    await sleep(200);
    const before = await bobLive();
    await sendRun(aliceConv, 21, 25);
    await sleep(200);
    expect(await bobLive()).toBe(before + 1);
  } finally {
    await counter.restore();
  }
  aliceConv.close();
}, 30_000);

it("a user object that lost track of its answers (restarted) still asks the conversations with recent activity", async () => {
  const [alice, bob] = [await mintUser(), await mintUser()];
  const dm = (await createDirect(alice, bob)).body.conversation;
  const aliceConv = await TestSocket.conversation(dm.id, alice);
  await aliceConv.next("caught_up");
  await sendRun(aliceConv, 1, 3);
  await sleep(1_200); // answered "not listening", and the stored fan-out brought the row
  await restartObject(userStub(bob)); // its memory of having answered is gone; the conversation still holds it quiet

  const bobUser = await TestSocket.user(bob);
  await bobUser.nextAny((f) => f.type === "hello");
  await sleep(500);
  await sendRun(aliceConv, 4, 10);
  await bobUser.nextAny((f) => f.type === "inbox_update" && (f.entry as any).lastSeq === 10, 3_000);
  expect(lastSeqs(bobUser, dm.id).filter((s) => s > 3)).toEqual([4, 5, 6, 7, 8, 9, 10]);
  [bobUser, aliceConv].forEach((s) => s.close());
}, 30_000);

it("an answer that crossed a new user socket's ask does not make the member quiet, and quiet ends after its time", async () => {
  const conversationId = uniq("c");
  const members = [uniq("u"), uniq("u")];
  let requests = 0;
  let hold: Promise<void> | null = null;
  // The members' user objects are real (no socket: they answer "not listening"); requests are counted and can be held.
  const users = {
    idFromName: (name: string) => env.USERS.idFromName(name),
    get: (id: DurableObjectId) => {
      const stub = env.USERS.get(id) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      return new Proxy(stub, {
        get: (target, prop) =>
          prop === "conversationLive"
            ? async (...a: unknown[]) => {
                requests++;
                const answer = await target[prop]!(...a);
                if (hold) await hold;
                return answer;
              }
            : target[prop as string],
      });
    },
  };
  const summary = (seq: number) => liveSummary(conversationId, members[0]!, seq);
  const host = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
  await runInDurableObject(host, async (_o, state) => {
    const feed = new LiveFeed({ ...env, USERS: users } as unknown as Env, state.storage.sql, () => members, () => false, 400);
    feed.publish([summary(1)]);
    await sleep(100);
    expect(requests).toBe(2);
    feed.publish([summary(2)]);
    await sleep(100);
    expect(requests).toBe(2); // both quiet

    // Member 0 opens a user socket and asks while the answer to an earlier event is still on its way back.
    feed.listen(members[0]!);
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    feed.publish([summary(3)]);
    await sleep(50);
    expect(requests).toBe(3); // member 0 asked again; member 1 still quiet
    feed.listen(members[0]!);
    release();
    hold = null;
    await sleep(50);
    feed.publish([summary(4)]);
    await sleep(100);
    expect(requests).toBe(4); // "not listening" that crossed the ask: not quiet

    // Quiet lasts 400 ms here (two minutes in production).
    await sleep(450);
    feed.publish([summary(5)]);
    await sleep(100);
    expect(requests).toBe(6);
  });
});
