// Role changes reach open conversations (issue 9): the server announces them in `members_changed.updated`
// (a promotion or demotion, and the heir inheriting ownership when the owner leaves); the SDK applies them
// to `info.members` and emits `members` and `change`, so an app re-renders what depends on roles. Also what a
// role allows besides membership: setting the retention period (docs/protocol.md 16).
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ChatClient, MemoryOutboxStorage, type Conversation, type Member } from "../src/index";
import { Network, until } from "./net";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

async function user(name: string) {
  const client = new ChatClient({ baseUrl: server.url, WebSocket: new Network().WebSocket, storage: new MemoryOutboxStorage(), backoff: { baseMs: 20, capMs: 200 } });
  await client.auth.signup(name, "correct horse battery");
  return client;
}

const roleOf = (c: Conversation, userId: string) => c.info?.members.find((m) => m.userId === userId)?.role;

it("a promotion, a demotion and an inherited ownership show up in info.members with a members event", async () => {
  const sfx = Date.now().toString(36);
  const alice = await user(`oa_${sfx}`);
  const bob = await user(`ob_${sfx}`);
  const carol = await user(`oc_${sfx}`);
  const [aliceId, bobId, carolId] = await Promise.all([alice, bob, carol].map(async (c) => (await c.me()).id));
  const group = await alice.createGroup("roles", [bobId!, carolId!]);

  const b = await bob.open(group.id);
  const c = await carol.open(group.id);
  await until(() => b.state === "open" && c.state === "open", 10_000, "bob and carol connected");
  const seen: { who: string; members: Member[] }[] = [];
  let changes = 0;
  b.on("members", (members) => seen.push({ who: "bob", members }));
  c.on("members", (members) => seen.push({ who: "carol", members }));
  b.on("change", () => changes++);
  expect(roleOf(b, bobId!)).toBe("member");

  // The owner promotes bob: both open conversations see it, without reading the conversation again.
  await alice.http.request("PATCH", `/v1/conversations/${group.id}/members/${bobId}`, { body: { role: "admin" } });
  await until(() => roleOf(b, bobId!) === "admin" && roleOf(c, bobId!) === "admin", 5_000, "bob shown as admin");
  for (const who of ["bob", "carol"]) {
    expect(seen.some((e) => e.who === who && e.members.find((m) => m.userId === bobId)?.role === "admin")).toBe(true);
  }
  expect(changes).toBeGreaterThan(0);
  // Nothing else moved: same members, same order, the others' roles unchanged.
  expect(b.info!.members.map((m) => [m.userId, m.role])).toEqual(
    group.members.map((m) => [m.userId, m.userId === bobId ? "admin" : m.role]),
  );

  // Demoted again.
  await alice.http.request("PATCH", `/v1/conversations/${group.id}/members/${carolId}`, { body: { role: "admin" } });
  await alice.http.request("PATCH", `/v1/conversations/${group.id}/members/${bobId}`, { body: { role: "member" } });
  await until(() => roleOf(b, bobId!) === "member" && roleOf(b, carolId!) === "admin", 5_000, "bob demoted, carol promoted");

  // The owner leaves: one frame removes her and hands the group to the longest-standing admin (carol).
  await alice.removeMember(group.id, aliceId!);
  await until(() => roleOf(b, carolId!) === "owner" && roleOf(b, aliceId!) === undefined, 5_000, "carol inherits ownership");
  await until(() => roleOf(c, carolId!) === "owner", 5_000, "carol sees herself as owner");
  expect(b.info!.members.map((m) => m.userId)).toEqual(group.members.map((m) => m.userId).filter((id) => id !== aliceId));

  alice.close();
  bob.close();
  carol.close();
});

it("the retention period is the owner's and admins' to set: a member is refused with forbidden", async () => {
  const sfx = Date.now().toString(36);
  const alice = await user(`ra_${sfx}`);
  const bob = await user(`rb_${sfx}`);
  const group = await alice.createGroup("kept a week", [(await bob.me()).id]);
  expect(group).toMatchObject({ retentionDays: 0, retentionOwn: false });
  await expect(bob.setRetention(group.id, 1)).rejects.toMatchObject({ code: "forbidden" });
  expect(await alice.setRetention(group.id, 7)).toMatchObject({ retentionDays: 7, retentionOwn: true });
  expect(await bob.getConversation(group.id)).toMatchObject({ retentionDays: 7, retentionOwn: true });
  expect(await alice.setRetention(group.id, null)).toMatchObject({ retentionDays: 0, retentionOwn: false });
});
