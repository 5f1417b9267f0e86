// `members_changed` frames are paced (conversation/member-news.ts): at most MEMBER_FRAMES_SLICE_BYTES of them per
// event (16 KiB in this suite, vitest.config.ts), the rest in later events, so a bulk add to a large online group
// does not hold the object for seconds. Pacing must not lose or reorder anything: every socket open at the change
// gets every frame exactly once, in the order the changes were made, and the object keeps serving meanwhile.
import { expect, it } from "vitest";
import { api, createSettledGroup, liveSocket, mintUser, sendRest, type TestSocket } from "./helpers";

it("a bulk add, a removal and a promotion reach every open socket once each, in order, while messages go on", async () => {
  const { owner, members, g } = await createSettledGroup(40, "paced member frames");
  const sockets = await Promise.all([owner, ...members.slice(0, 30)].map((u) => liveSocket(g.id, u)));
  const joiners = await Promise.all(Array.from({ length: 300 }, () => mintUser()));
  const [leaving, promoted] = [members[39]!, members[38]!];

  // ~24 KB of frame per socket: over the slice, so one socket per event, 31 events for this frame alone.
  const added = await api("POST", `/v1/conversations/${g.id}/members`, { token: owner.token, body: { userIds: joiners.map((u) => u.id) } });
  expect(added.status).toBe(200);
  const [removed, role, message] = await Promise.all([
    api("DELETE", `/v1/conversations/${g.id}/members/${leaving.id}`, { token: owner.token }),
    api("PATCH", `/v1/conversations/${g.id}/members/${promoted.id}`, { token: owner.token, body: { role: "admin" } }),
    sendRest(owner, g.id, "during-the-add"),
  ]);
  expect([removed.status, role.status, message.status]).toEqual([204, 200, 201]);

  const changes = (s: TestSocket) => s.frames.filter((f) => f.type === "members_changed") as Extract<(typeof s.frames)[number], { type: "members_changed" }>[];
  const orders = new Set<string>();
  for (const s of sockets) {
    await s.next("message", (f) => f.message.clientMsgId === "during-the-add");
    for (let t = 0; changes(s).length < 3 && t < 100; t++) await new Promise((r) => setTimeout(r, 50));
    const seen = changes(s);
    expect(seen).toHaveLength(3);
    expect(seen[0]!.added.map((a) => a.userId).sort()).toEqual(joiners.map((u) => u.id).sort());
    const rest = seen.slice(1);
    expect(rest).toContainEqual({ type: "members_changed", added: [], removed: [leaving.id] });
    expect(rest).toContainEqual({ type: "members_changed", added: [], removed: [], updated: [expect.objectContaining({ userId: promoted.id, role: "admin" })] });
    orders.add(rest.map((f) => (f.removed.length > 0 ? "removed" : "promoted")).join(","));
  }
  // The removal and the promotion were made at the same time, in an order the object chose: every socket saw that one.
  expect(orders.size).toBe(1);
  for (const s of sockets) s.close();
}, 60_000);
