// A deploy runs old and new code side by side: for a while a conversation object on the new version calls
// `conversationLive` on user objects still on the version before live events. Such a user object must cost
// one request, not one per message, and its inbox keeps working through the stored fan-out.
//
// The "old user object" here is a real object that lacks the method (a conversation object bound in its
// place), so the error is the runtime's own, not a copy of its wording.
import { expect, it } from "vitest";
import { env, runInDurableObject } from "cloudflare:test";
import { LiveFeed } from "../src/objects/conversation/live";
import { isUnknownMethod } from "../src/objects/shared/stubs";
import { liveSummary, uniq } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("the runtime's answer to a method an object does not have is recognised, and other errors are not", async () => {
  const old = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(uniq("c"))) as unknown as { conversationLive(e: unknown[]): Promise<boolean> };
  const err = await old.conversationLive([]).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).not.toBeNull();
  expect(isUnknownMethod(err)).toBe(true);
  expect(isUnknownMethod(new Error("internal error"))).toBe(false);
  expect(isUnknownMethod(new TypeError("x is not a function"))).toBe(false);
});

it("a user object on code without live events is asked once, then left to the stored fan-out for a minute", async () => {
  const conversationId = uniq("c");
  const members = [uniq("u"), uniq("u"), uniq("u")];
  let requests = 0;
  // The members' user objects, as on the old version: objects without `conversationLive`. Every request counted.
  const oldUsers = {
    idFromName: (name: string) => env.CONVERSATIONS.idFromName(name),
    get: (id: DurableObjectId) => {
      const stub = env.CONVERSATIONS.get(id) as unknown as Record<string, (...a: unknown[]) => unknown>;
      return new Proxy(stub, {
        get: (target, prop) => (prop === "conversationLive" ? (...a: unknown[]) => (requests++, target[prop]!(...a)) : target[prop as string]),
      });
    },
  };
  const summary = (seq: number) => liveSummary(conversationId, members[0]!, seq);
  const host = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conversationId));
  await runInDurableObject(host, async (_o, state) => {
    const feed = new LiveFeed({ ...env, USERS: oldUsers } as unknown as Env, state.storage.sql, () => members, () => false);
    feed.publish([summary(1)]);
    await sleep(200);
    expect(requests).toBe(3);
    for (let seq = 2; seq <= 20; seq++) feed.publish([summary(seq)]);
    await sleep(200);
    expect(requests).toBe(3);
  });
});
