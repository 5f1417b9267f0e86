// Gapless resume against the real server: a receiver that loses the link in the middle of a backlog,
// while the sender keeps sending, still delivers every seq exactly once and in order.
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ChatClient, CloseCode, MemoryOutboxStorage, ReconnectingSocket, type ConnectionError } from "../src/index";
import { Network, until } from "./net";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

const PASSWORD = "correct horse battery";

async function user(name: string, net: Network) {
  const client = new ChatClient({ baseUrl: server.url, WebSocket: net.WebSocket, storage: new MemoryOutboxStorage(), backoff: { baseMs: 20, capMs: 200 } });
  await client.auth.signup(name, PASSWORD);
  return client;
}

it("delivers every message exactly once, in order, across forced disconnects mid-backlog and mid-stream", async () => {
  const sfx = Date.now().toString(36);
  const aliceNet = new Network();
  const bobNet = new Network();
  const alice = await user(`alice_${sfx}`, aliceNet);
  const bob = await user(`bob_${sfx}`, bobNet);
  const dm = await alice.createDirectByUsername(`bob_${sfx}`);
  const a = await alice.open(dm.id);
  const b = await bob.open(dm.id);
  await until(() => a.state === "open" && b.state === "open", 10_000, "both open");

  const delivered: number[] = [];
  b.on("message", (m) => delivered.push(m.seq));

  // Bob is away while Alice sends 450 messages: he will come back to a backlog of 5 pages.
  bobNet.cut();
  for (let i = 1; i <= 450; i++) void a.send(`m${i}`);
  await until(() => a.pending.length === 0 && a.lastSeq === 450, 20_000, "alice's 450 acked");

  // Cut the link again as soon as part of the backlog arrived, then once more mid live stream.
  let cuts = 0;
  b.on("message", (m) => {
    if ((m.seq === 120 && cuts === 0) || (m.seq === 470 && cuts === 1)) {
      cuts++;
      bobNet.cut();
      setTimeout(() => bobNet.restore(), 50);
    }
  });
  bobNet.restore();
  await until(() => delivered.length >= 120, 10_000, "first part of the backlog");
  for (let i = 451; i <= 520; i++) {
    void a.send(`m${i}`);
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await until(() => b.lastSeq === 520, 20_000, "bob caught up to 520");
  await new Promise((r) => setTimeout(r, 300));

  expect(cuts).toBe(2);
  expect(delivered).toEqual(Array.from({ length: 520 }, (_, i) => i + 1));
  expect(b.messages.map((m) => m.seq)).toEqual(Array.from({ length: 520 }, (_, i) => i + 1));
  // Every reconnect resumed from a cursor, never from scratch.
  const resumed = bobNet.urls.slice(1).map((u) => new URL(u).searchParams);
  expect(resumed.every((p) => p.get("since") !== null && p.get("epoch") === b.epoch)).toBe(true);
  expect(Number(resumed.at(-1)!.get("since"))).toBeGreaterThan(0);

  alice.close();
  bob.close();
});

it("a stale epoch is reset by the server and the client reloads instead of trusting its seq", async () => {
  const sfx = Date.now().toString(36);
  const net = new Network();
  const alice = await user(`al_${sfx}`, net);
  await user(`bo_${sfx}`, net);
  const dm = await alice.createDirectByUsername(`bo_${sfx}`);
  const a = await alice.open(dm.id);
  await until(() => a.state === "open", 10_000, "open");
  await a.send("one");
  await until(() => a.lastSeq === 1, 10_000, "one");
  let resets = 0;
  a.on("reset", () => resets++);
  a.epoch = "stale_epoch";
  a.reconnect();
  await until(() => resets === 1 && a.state === "open", 10_000, "reset");
  expect(a.epoch).not.toBe("stale_epoch");
  expect(a.messages.map((m) => m.body)).toEqual(["one"]);
  alice.close();
});

it("stops on a terminal close code (not a member) and surfaces the error", async () => {
  const sfx = Date.now().toString(36);
  const net = new Network();
  const alice = await user(`a3_${sfx}`, net);
  await user(`b3_${sfx}`, net);
  const carol = await user(`c3_${sfx}`, net);
  const dm = await alice.createDirectByUsername(`b3_${sfx}`);
  const errors: ConnectionError[] = [];
  const socket = new ReconnectingSocket({
    url: (token) => `${server.wsUrl}/v1/conversations/${dm.id}/ws?v=1&token=${token}`,
    getToken: carol.auth.getAccessToken,
    WebSocket: net.WebSocket,
    backoff: { baseMs: 5, capMs: 10 },
  });
  socket.on("error", (e) => errors.push(e));
  socket.start();
  await until(() => socket.state === "closed", 10_000, "closed");
  await new Promise((r) => setTimeout(r, 100));
  expect(errors.map((e) => [e.code, e.terminal])).toEqual([[CloseCode.NotAMember, true]]);
  expect(net.urls.length).toBe(1);
  alice.close();
});
