// A Durable Object's public methods are callable by anything holding a stub. TypeScript `private` is
// compile-time only, so internals must be real JS privacy (#name): this pins each object's RPC surface
// to exactly the methods meant for callers, and shows an internal method cannot be called over RPC.
import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import { ConversationObject } from "../src/objects/conversation";
import { UserObject } from "../src/objects/user";
import { createGroup, mintUser } from "./helpers";

/** Settle an RPC promise (a thenable proxy, which vitest's `rejects` does not handle) into a plain answer. */
async function outcome(call: PromiseLike<unknown>): Promise<"resolved" | "rejected"> {
  try {
    await call;
    return "resolved";
  } catch {
    return "rejected";
  }
}

const surface = (cls: { prototype: object }) => Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== "constructor").sort();

it("the conversation object exposes only its RPC methods and runtime hooks", () => {
  expect(surface(ConversationObject)).toEqual(
    [
      "initialize",
      "describe",
      "addMembers",
      "memberAccess",
      "setBlocked",
      "removeMember",
      "setRole",
      "setRetention",
      "send",
      "change",
      "history",
      "thread",
      "reactions",
      "flushArchive",
      "applyReceipt",
      "inboxPosition",
      "receipts",
      "attachmentBegin",
      "attachmentMultipart",
      "attachmentUploaded",
      "attachmentDiscard",
      "attachmentReadable",
      "exportMember",
      "eraseMember",
      "fetch",
      "webSocketMessage",
      "webSocketClose",
      "webSocketError",
      "alarm",
    ].sort(),
  );
});

it("the user object exposes only its RPC methods and runtime hooks", () => {
  expect(surface(UserObject)).toEqual(
    [
      "conversationUpdate",
      "conversationLive",
      "conversationRemoved",
      "inbox",
      "reportReceipt",
      "deviceLeases",
      "getPresence",
      "addSubscriber",
      "presenceChanged",
      "presenceRevoked",
      "takeQuota",
      "adminJob",
      "fetch",
      "webSocketMessage",
      "webSocketClose",
      "webSocketError",
      "alarm",
    ].sort(),
  );
});

it("internal methods cannot be called through a stub", async () => {
  const [a, b] = [await mintUser(), await mintUser()];
  const conv = await createGroup(a, [b]);
  // Names that were callable over RPC before the objects used #private members.
  const conversation = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id)) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  expect(await outcome(conversation.advanceCursor!(a.id, 1, 1))).toBe("rejected");
  expect(await outcome(conversation.persist!(a.id, [{ clientMsgId: "x", body: "forged" }]))).toBe("rejected");
  const user = env.USERS.get(env.USERS.idFromName(a.id)) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  expect(await outcome(user.applyCursor!(conv.id, 99, 99))).toBe("rejected");
  // The public surface still answers.
  expect((await env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv.id)).describe({ userId: a.id, username: a.username, exp: Math.floor(Date.now() / 1000) + 60 })).ok).toBe(true);
});
