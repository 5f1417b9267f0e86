// The inbox applies conversation updates in any order, possibly partial: an update that does not carry the
// group title or the direct peer (an older builder, a summary built without them) must not erase them.
import { expect, it } from "vitest";
import { env } from "cloudflare:test";
import type { ConversationSummary, FanoutTarget } from "../src/objects/shared/updates";
import { api, mintUser } from "./helpers";

it("an update without title or peer keeps the ones the inbox has", async () => {
  const [me, peer] = [await mintUser(), await mintUser()];
  const stub = env.USERS.get(env.USERS.idFromName(me.id));
  const target: FanoutTarget = { userId: me.id, deliveredSeq: 0, readSeq: 0, joinedAt: Date.now() };
  const base = { receipts: [], lastMessage: null, lastSeq: 0 };
  const dm: ConversationSummary = {
    ...base,
    conversationId: "dm_keeps_peer",
    type: "direct",
    title: null,
    directMembers: [{ userId: me.id, username: me.username }, { userId: peer.id, username: peer.username }],
  };
  const group: ConversationSummary = { ...base, conversationId: "g_keeps_title", type: "group", title: "team", directMembers: null };
  await stub.conversationUpdate(dm, target);
  await stub.conversationUpdate(group, target);
  await stub.conversationUpdate({ ...dm, directMembers: null, lastSeq: 1 }, target);
  await stub.conversationUpdate({ ...group, title: null, lastSeq: 1 }, target);
  const inbox = (await api("GET", "/v1/me/conversations", { token: me.token })).body.conversations as { conversationId: string; title: string | null; peer: unknown; lastSeq: number }[];
  const byId = new Map(inbox.map((e) => [e.conversationId, e]));
  expect(byId.get("dm_keeps_peer")).toMatchObject({ peer: { userId: peer.id, username: peer.username }, lastSeq: 1 });
  expect(byId.get("g_keeps_title")).toMatchObject({ title: "team", lastSeq: 1 });
});
