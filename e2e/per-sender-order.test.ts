// Over real sockets (workerd via wrangler, Node `ws` clients): each sender's messages are sequenced in
// the order it sent them, while concurrent senders interleave into one total order that all members share.
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "./server.ts";
import { useLocalServer } from "./use-server.ts";
import { NodeSocket, http } from "./client.ts";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

it("keeps each socket's send order inside one total order seen identically by every member", async () => {
  const mint = async (name: string) =>
    (await http(server.url, "POST", "/v1/admin/tokens", { token: server.adminSecret, body: { userId: `ext-${name}`, username: name } })).body;
  const users = await Promise.all(["ann", "ben", "cat"].map(mint));
  const conv = (
    await http(server.url, "POST", "/v1/conversations", {
      token: users[0].accessToken,
      body: { type: "group", title: "order", memberIds: users.slice(1).map((u: { user: { id: string } }) => u.user.id) },
    })
  ).body.conversation;
  const sockets = await Promise.all(
    [...users, users[0]].map((u) => NodeSocket.open(`${server.wsUrl}/v1/conversations/${conv.id}/ws?v=1&since=0&token=${u.accessToken}`)),
  );
  await Promise.all(sockets.map((s) => s.frame("caught_up")));
  const perSocket = 60;
  sockets.forEach((s, i) => {
    for (let n = 0; n < perSocket; n++) s.send({ type: "send", clientMsgId: `s${i}-${n}`, body: `from ${i}: ${n}` });
  });
  const total = perSocket * sockets.length;
  await Promise.all(sockets.map((s) => s.until(() => (s.messages().length >= total ? true : undefined))));
  const reference = sockets[0]!.messages();
  expect(reference.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  for (const s of sockets) expect(s.messages().map((m) => m.id)).toEqual(reference.map((m) => m.id));
  for (let i = 0; i < sockets.length; i++) {
    const mine = reference.filter((m) => m.clientMsgId.startsWith(`s${i}-`)).map((m) => Number(m.clientMsgId.split("-")[1]));
    expect(mine).toEqual(Array.from({ length: perSocket }, (_, n) => n));
  }
  await Promise.all(sockets.map((s) => s.close()));
});
