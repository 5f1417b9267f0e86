import { describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { TestSocket, api, createDirect, createGroup, mintUser, sendRest } from "./helpers";

describe("direct conversations", () => {
  it("are one per pair: 201 the first time, 200 with the same id from either side after", async () => {
    const [a, b] = [await mintUser(), await mintUser()];
    const first = await createDirect(a, b);
    expect(first.status).toBe(201);
    const again = await createDirect(a, b);
    const reverse = await createDirect(b, a);
    expect(again.status).toBe(200);
    expect(reverse.status).toBe(200);
    expect(again.body.conversation.id).toBe(first.body.conversation.id);
    expect(reverse.body.conversation.id).toBe(first.body.conversation.id);
    expect(first.body.conversation.members.map((m: { userId: string }) => m.userId).sort()).toEqual([a.id, b.id].sort());
    // Concurrent creation from both sides still yields one conversation.
    const [c, d] = [await mintUser(), await mintUser()];
    const racing = await Promise.all([createDirect(c, d), createDirect(d, c), createDirect(c, d)]);
    expect(new Set(racing.map((r) => r.body.conversation.id)).size).toBe(1);
    expect(racing.filter((r) => r.status === 201)).toHaveLength(1);
  });

  it("have fixed membership and refuse a DM with yourself or an unknown user", async () => {
    const [a, b, c] = [await mintUser(), await mintUser(), await mintUser()];
    const dm = (await createDirect(a, b)).body.conversation;
    const add = await api("POST", `/v1/conversations/${dm.id}/members`, { token: a.token, body: { userIds: [c.id] } });
    expect(add.status).toBe(403);
    const leave = await api("DELETE", `/v1/conversations/${dm.id}/members/${a.id}`, { token: a.token });
    expect(leave.status).toBe(403);
    expect((await api("POST", "/v1/conversations", { token: a.token, body: { type: "direct", userId: a.id } })).status).toBe(400);
    const ghost = await api("POST", "/v1/conversations", { token: a.token, body: { type: "direct", userId: "nobody" } });
    expect(ghost.status).toBe(404);
    expect(ghost.body.error.code).toBe("user_not_found");
  });
});

describe("groups", () => {
  it("make the creator owner; owner/admin add and remove; members can only leave", async () => {
    const [owner, admin, m1, m2, m3] = await Promise.all(Array.from({ length: 5 }, () => mintUser()));
    const g = await createGroup(owner!, [admin!, m1!], "team");
    expect(g.title).toBe("team");
    expect(g.members.find((m) => m.userId === owner!.id)?.role).toBe("owner");

    const watcher = await TestSocket.conversation(g.id, m1!);
    await watcher.next("caught_up");
    const promote = await api("PATCH", `/v1/conversations/${g.id}/members/${admin!.id}`, { token: owner!.token, body: { role: "admin" } });
    expect(promote.status).toBe(200);
    // Everyone connected hears about role changes too.
    expect(await watcher.next("members_changed", (f) => (f.updated ?? []).length > 0)).toMatchObject({
      updated: [{ userId: admin!.id, role: "admin" }],
    });
    watcher.close();
    const byMember = await api("POST", `/v1/conversations/${g.id}/members`, { token: m1!.token, body: { userIds: [m2!.id] } });
    expect(byMember.status).toBe(403);
    const byAdmin = await api("POST", `/v1/conversations/${g.id}/members`, { token: admin!.token, body: { userIds: [m2!.id, m3!.id, m2!.id] } });
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.conversation.members).toHaveLength(5);

    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${m2!.id}`, { token: m1!.token })).status).toBe(403);
    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${owner!.id}`, { token: admin!.token })).status).toBe(403);
    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${m2!.id}`, { token: admin!.token })).status).toBe(204);
    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${m1!.id}`, { token: m1!.token })).status).toBe(204);
    const now = await api("GET", `/v1/conversations/${g.id}`, { token: owner!.token });
    expect(now.body.conversation.members.map((m: { userId: string }) => m.userId).sort()).toEqual([owner!.id, admin!.id, m3!.id].sort());

    // The owner leaves: the admin inherits the group, and connected members are told.
    const adminSocket = await TestSocket.conversation(g.id, admin!);
    await adminSocket.next("caught_up");
    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${owner!.id}`, { token: owner!.token })).status).toBe(204);
    expect(await adminSocket.next("members_changed", (f) => f.removed.includes(owner!.id))).toMatchObject({
      updated: [{ userId: admin!.id, role: "owner" }],
    });
    adminSocket.close();
    const after = await api("GET", `/v1/conversations/${g.id}`, { token: admin!.token });
    expect(after.body.conversation.members.find((m: { userId: string }) => m.userId === admin!.id).role).toBe("owner");

    // D1's directory follows the object.
    const rows = await env.DB.prepare("SELECT user_id AS u, role FROM conversation_members WHERE conversation_id = ? ORDER BY user_id")
      .bind(g.id)
      .all<{ u: string; role: string }>();
    expect(rows.results).toEqual(
      [
        { u: admin!.id, role: "owner" },
        { u: m3!.id, role: "member" },
      ].sort((x, y) => (x.u < y.u ? -1 : 1)),
    );
  });

  it("enforce the member limit and refuse unknown users", async () => {
    const owner = await mintUser();
    const g = await createGroup(owner, [], "solo");
    const unknown = await api("POST", `/v1/conversations/${g.id}/members`, { token: owner.token, body: { userIds: ["no-such-user"] } });
    expect(unknown.status).toBe(404);
    const tooMany = await api("POST", "/v1/conversations", {
      token: owner.token,
      body: { type: "group", title: "huge", memberIds: Array.from({ length: 5001 }, (_, i) => `u${i}`) },
    });
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error.code).toBe("group_too_large");
  });

  it("a removed member's open socket is closed at once and it can no longer read or send", async () => {
    const [owner, m] = [await mintUser(), await mintUser()];
    const g = await createGroup(owner, [m]);
    const s = await TestSocket.conversation(g.id, m, { since: 0 });
    await s.next("caught_up");
    const ownerSocket = await TestSocket.conversation(g.id, owner);
    await ownerSocket.next("caught_up");
    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${m.id}`, { token: owner.token })).status).toBe(204);
    expect(await s.closed).toMatchObject({ code: 4403 });
    expect(await ownerSocket.next("members_changed")).toMatchObject({ removed: [m.id] });
    expect((await sendRest(m, g.id, "after-removal")).status).toBe(403);
    expect((await api("GET", `/v1/conversations/${g.id}/messages`, { token: m.token })).status).toBe(403);
    const again = await TestSocket.conversation(g.id, m, { since: 0 });
    expect(await again.closed).toMatchObject({ code: 4403 });

    // Added back, in the same live object (its frames check membership against cached ids): sends go through again.
    expect((await api("POST", `/v1/conversations/${g.id}/members`, { token: owner.token, body: { userIds: [m.id] } })).status).toBe(200);
    const back = await TestSocket.conversation(g.id, m);
    await back.next("caught_up");
    back.send({ type: "send", clientMsgId: "back-again", body: "I am back" });
    expect(await back.next("ack")).toMatchObject({ clientMsgId: "back-again" });
    expect((await ownerSocket.next("message", (f) => f.message.clientMsgId === "back-again")).message).toMatchObject({ senderId: m.id, body: "I am back" });
    // Removed again while its socket is open: that socket is closed and the object refuses its frames.
    expect((await api("DELETE", `/v1/conversations/${g.id}/members/${m.id}`, { token: owner.token })).status).toBe(204);
    expect(await back.closed).toMatchObject({ code: 4403 });
    ownerSocket.close();
  });
});

describe("unknown conversation ids", () => {
  it("answer like a conversation you are not in, and leave no storage behind", async () => {
    const { env, runInDurableObject } = await import("cloudflare:test");
    const a = await mintUser();
    const id = "g_probe_does_not_exist";
    expect((await api("GET", `/v1/conversations/${id}`, { token: a.token })).status).toBe(403);
    expect((await api("GET", `/v1/conversations/${id}/messages`, { token: a.token })).status).toBe(403);
    expect((await sendRest(a, id, "x")).status).toBe(403);
    const s = await TestSocket.conversation(id, a);
    expect((await s.closed).code).toBe(4403);
    const tables = await runInDurableObject(env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id)), (_o, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\'").toArray(),
    );
    expect(tables).toEqual([]);
  });
});
