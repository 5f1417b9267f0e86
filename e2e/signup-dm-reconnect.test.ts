// The whole path a real client takes, over real sockets against a real local server:
// sign up -> look the other user up -> start a DM -> exchange messages -> drop -> reconnect with since.
import { beforeAll, expect, it } from "vitest";
import type { LocalServer } from "./server.ts";
import { useLocalServer } from "./use-server.ts";
import { NodeSocket, http } from "./client.ts";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

it("signup, DM, exchange messages, reconnect and catch up with no gap and no duplicate", async () => {
  const suffix = Date.now().toString(36);
  const alice = await http(server.url, "POST", "/v1/auth/signup", { body: { username: `alice_${suffix}`, password: "correct horse battery" } });
  const bob = await http(server.url, "POST", "/v1/auth/signup", { body: { username: `Bob_${suffix}`, password: "correct horse battery" } });
  expect(alice.status).toBe(201);
  expect(bob.status).toBe(201);
  expect(bob.body.user.username).toBe(`bob_${suffix}`);

  const found = await http(server.url, "GET", `/v1/users?username=BOB_${suffix}`, { token: alice.body.accessToken });
  expect(found.status).toBe(200);
  const dm = await http(server.url, "POST", "/v1/conversations", { token: alice.body.accessToken, body: { type: "direct", userId: found.body.user.id } });
  expect(dm.status).toBe(201);
  const again = await http(server.url, "POST", "/v1/conversations", { token: bob.body.accessToken, body: { type: "direct", userId: alice.body.user.id } });
  expect(again.status).toBe(200);
  expect(again.body.conversation.id).toBe(dm.body.conversation.id);
  const id = dm.body.conversation.id;

  const wsUrl = (token: string, since?: number) =>
    `${server.wsUrl}/v1/conversations/${id}/ws?v=1&token=${token}${since === undefined ? "" : `&since=${since}`}`;
  const a = await NodeSocket.open(wsUrl(alice.body.accessToken, 0));
  let b = await NodeSocket.open(wsUrl(bob.body.accessToken, 0));
  await a.frame("caught_up");
  await b.frame("caught_up");

  for (let i = 1; i <= 5; i++) a.send({ type: "send", clientMsgId: `a-${i}`, body: `hi bob ${i}` });
  b.send({ type: "send", clientMsgId: "b-1", body: "hi alice" });
  await a.until(() => (a.messages().length >= 6 ? true : undefined));
  await b.until(() => (b.messages().length >= 6 ? true : undefined));
  expect(a.messages().map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(b.messages().map((m) => m.id)).toEqual(a.messages().map((m) => m.id));

  // Bob drops; Alice keeps talking; Bob comes back with the last seq he saw.
  const lastSeen = b.messages().at(-1)!.seq;
  await b.close();
  for (let i = 6; i <= 10; i++) a.send({ type: "send", clientMsgId: `a-${i}`, body: `while you were away ${i}` });
  await a.until(() => (a.messages().length >= 11 ? true : undefined));
  b = await NodeSocket.open(wsUrl(bob.body.accessToken, lastSeen));
  await b.frame("caught_up");
  a.send({ type: "send", clientMsgId: "a-11", body: "welcome back" });
  await b.until(() => (b.messages().length >= 6 ? true : undefined));
  expect(b.messages().map((m) => m.seq)).toEqual([7, 8, 9, 10, 11, 12]);
  expect(b.messages().at(-1)!.body).toBe("welcome back");

  const history = await http(server.url, "GET", `/v1/conversations/${id}/messages?limit=200`, { token: bob.body.accessToken });
  expect(history.body.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  await a.close();
  await b.close();
}, 60_000);
