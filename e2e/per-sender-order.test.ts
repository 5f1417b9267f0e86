// Over real sockets (workerd via wrangler, Node `ws` clients): each sender's messages are sequenced in
// the order it sent them, while concurrent senders interleave into one total order that all members share;
// also when they are sent before `caught_up`, while the socket's backlog is read from the D1 archive.
// (Send order is asserted here, on the runtime as deployed: inside vitest-pool-workers the test harness wraps
// each Durable Object handler in an import that awaits an RPC, so two frames can reach the object reversed.)
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "./server.ts";
import { useLocalServer } from "./use-server.ts";
import { NodeSocket, http } from "./client.ts";
import type { ServerFrame } from "../src/protocol/frames.ts";

// A small hot tail, so that a backlog from seq 1 is read from the D1 archive (docs/architecture.md 3.2).
const local = useLocalServer({ vars: { HOT_TAIL_MESSAGES: "20" } });
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

it("sequences frames sent before caught_up in send order while the backlog streams from the archive", async () => {
  const [dora, eli] = await Promise.all(
    ["dora", "eli"].map(async (name) => (await http(server.url, "POST", "/v1/admin/tokens", { token: server.adminSecret, body: { userId: `ext-${name}`, username: name } })).body),
  );
  const conv = (
    await http(server.url, "POST", "/v1/conversations", { token: dora.accessToken, body: { type: "group", title: "backlog order", memberIds: [eli.user.id] } })
  ).body.conversation;
  const url = (token: string) => `${server.wsUrl}/v1/conversations/${conv.id}/ws?v=1&since=0&token=${token}`;
  const writer = await NodeSocket.open(url(dora.accessToken));
  await writer.frame("caught_up");
  for (let i = 0; i < 150; i += 50) {
    writer.send({ type: "send_batch", messages: Array.from({ length: 50 }, (_, j) => ({ clientMsgId: `old-${i + j}`, body: `old ${i + j}` })) });
    await writer.until(() => (writer.messages().length >= i + 50 ? true : undefined));
  }
  await writer.close();
  const perRound = 20;
  for (let round = 0; round < 4; round++) {
    // The archive runs 250 ms after a commit (src/objects/conversation/archive.ts): all but the newest 20 are then in D1 only.
    await new Promise((r) => setTimeout(r, 1_000));
    const s = await NodeSocket.open(url(eli.accessToken));
    const ids = Array.from({ length: perRound }, (_, n) => `r${round}-${n}`);
    for (const id of ids) s.send({ type: "send", clientMsgId: id, body: id });
    const acks = await s.until(() => {
      const got = s.frames.filter((f): f is Extract<ServerFrame, { type: "ack" }> => f.type === "ack");
      return got.length >= perRound ? got : undefined;
    });
    const lastSeq = 150 + (round + 1) * perRound;
    // In send order: the first frame sent got the lowest seq, and so on.
    expect(acks.map((a) => `${a.clientMsgId}=${a.seq}`)).toEqual(ids.map((id, n) => `${id}=${lastSeq - perRound + 1 + n}`));
    await s.until(() => (s.messages().length >= lastSeq ? true : undefined));
    expect(s.messages().map((m) => m.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    const caughtUpAt = s.frames.findIndex((f) => f.type === "caught_up");
    expect(s.frames.slice(0, caughtUpAt).some((f) => f.type === "message")).toBe(false);
    await s.close();
  }
});
