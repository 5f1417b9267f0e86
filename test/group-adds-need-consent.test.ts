// Consent: who may put you in a group is your setting (GET/PATCH /v1/me/settings): "anyone" (not blocked),
// "contacts" (people you already share a conversation with; the default) or "nobody". A refused add
// changes nothing: no group, no inbox row, nothing the adder could watch.
import { expect, it } from "vitest";
import { readConfig } from "../src/lib/config";
import { TestSocket, api, createDirect, createGroup, mintUser, type TestUser } from "./helpers";

async function setGroupAdds(user: TestUser, groupAdds: string) {
  const r = await api("PATCH", "/v1/me/settings", { token: user.token, body: { groupAdds } });
  expect(r.status).toBe(200);
  expect(r.body).toEqual({ settings: { groupAdds } });
}

async function inboxIds(user: TestUser): Promise<string[]> {
  const r = await api("GET", "/v1/me/conversations", { token: user.token });
  return r.body.conversations.map((c: { conversationId: string }) => c.conversationId);
}

it("a stranger cannot put you in groups unless you allow anyone; contacts can; nobody means nobody", async () => {
  const [victim, stranger, friend, other] = [await mintUser(), await mintUser(), await mintUser(), await mintUser()];
  await setGroupAdds(victim, "contacts");
  expect((await api("GET", "/v1/me/settings", { token: victim.token })).body).toEqual({ settings: { groupAdds: "contacts" } });

  // 30 spam groups from someone the victim shares nothing with: every one refused, naming the victim only.
  for (let i = 0; i < 30; i++) {
    const r = await api("POST", "/v1/conversations", { token: stranger.token, body: { type: "group", title: `spam ${i}`, memberIds: [victim.id, other.id] } });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: "consent_required", userIds: [victim.id] });
  }
  // Nor can the stranger add the victim to a group it already has.
  const own = await createGroup(stranger, [other]);
  const add = await api("POST", `/v1/conversations/${own.id}/members`, { token: stranger.token, body: { userIds: [victim.id] } });
  expect(add.status).toBe(403);
  expect(add.body.error).toMatchObject({ code: "consent_required", userIds: [victim.id] });
  await new Promise((r) => setTimeout(r, 300));
  expect(await inboxIds(victim)).toEqual([]);

  // Someone the victim shares a conversation with may.
  await createDirect(victim, friend);
  const withFriend = await api("POST", "/v1/conversations", { token: friend.token, body: { type: "group", title: "friends", memberIds: [victim.id] } });
  expect(withFriend.status).toBe(201);

  // "nobody": not even a contact.
  await setGroupAdds(victim, "nobody");
  const refused = await api("POST", "/v1/conversations", { token: friend.token, body: { type: "group", title: "again", memberIds: [victim.id] } });
  expect(refused.status).toBe(403);
  expect(refused.body.error.code).toBe("consent_required");

  // "anyone": the stranger too.
  await setGroupAdds(victim, "anyone");
  const allowed = await api("POST", `/v1/conversations/${own.id}/members`, { token: stranger.token, body: { userIds: [victim.id] } });
  expect(allowed.status).toBe(200);
  expect(allowed.body.conversation.members.map((m: { userId: string }) => m.userId)).toContain(victim.id);

  // Settings are validated.
  const bad = await api("PATCH", "/v1/me/settings", { token: victim.token, body: { groupAdds: "everyone-ish" } });
  expect(bad.status).toBe(400);
  expect(bad.body.error.code).toBe("validation_failed");
});

it("a refused add leaves no trace: the victim's user socket hears nothing", async () => {
  const [victim, stranger] = [await mintUser(), await mintUser()];
  await setGroupAdds(victim, "contacts");
  const socket = await TestSocket.user(victim);
  await socket.nextAny((f) => f.type === "hello");
  const r = await api("POST", "/v1/conversations", { token: stranger.token, body: { type: "group", title: "spam", memberIds: [victim.id] } });
  expect(r.status).toBe(403);
  await new Promise((r) => setTimeout(r, 300));
  expect(socket.raw.filter((f) => f.includes("inbox_update"))).toEqual([]);
  socket.close();
});

it("the deployment default is contacts", () => {
  expect(readConfig({}).groupAddsDefault).toBe("contacts");
  expect(readConfig({ GROUP_ADDS_DEFAULT: "anyone" }).groupAddsDefault).toBe("anyone");
  expect(readConfig({ GROUP_ADDS_DEFAULT: "bogus" }).groupAddsDefault).toBe("contacts");
});
