// Real sockets against a real local server: presence expires when heartbeats stop (a tab that vanished
// without a close), and push jobs reach a local webhook receiver signed with HMAC-SHA256, retried, then dead-lettered.
import { createHmac } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLocalServer, type LocalServer } from "./server.ts";
import { NodeSocket, http } from "./client.ts";

const PUSH_SECRET = "e2e-push-secret";
let server: LocalServer;
let receiver: Server;
const received: { body: any; raw: string; signature: string | undefined }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const body = JSON.parse(raw);
      received.push({ body, raw, signature: req.headers["x-edgechat-signature"] as string | undefined });
      // The receiver is "down" for one user, to exercise retries and the dead-letter queue.
      res.writeHead(body.userId === "ext-carol" ? 503 : 204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const port = (receiver.address() as AddressInfo).port;
  server = await startLocalServer({
    vars: {
      PRESENCE_TTL_MS: "1500",
      PUSH_WEBHOOK_URL: `http://127.0.0.1:${port}/push`,
      PUSH_WEBHOOK_SECRET: PUSH_SECRET,
      PUSH_RETRY_BASE_SECONDS: "0",
    },
  });
});
afterAll(async () => {
  await server?.stop();
  await new Promise((r) => receiver?.close(r));
});

const mint = async (name: string) =>
  (await http(server.url, "POST", "/v1/admin/tokens", { token: server.adminSecret, body: { userId: `ext-${name}`, username: name } })).body;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out");
    await sleep(50);
  }
}

it("a device that stops heartbeating goes offline after the TTL; one that pings stays online", async () => {
  const ann = await mint("ann");
  const ben = await mint("ben");
  await http(server.url, "POST", "/v1/conversations", { token: ann.accessToken, body: { type: "direct", userId: ben.user.id } });
  const presence = async () => (await http(server.url, "GET", `/v1/users/${ann.user.id}/presence`, { token: ben.accessToken })).body.presence;

  // Two devices; the silent one is like a closed tab whose socket never reported a close.
  const silent = await NodeSocket.open(`${server.wsUrl}/v1/me/ws?v=1&token=${ann.accessToken}`);
  await until(async () => (await presence()).online === true);
  const pinging = await NodeSocket.open(`${server.wsUrl}/v1/me/ws?v=1&token=${ann.accessToken}`);
  const timer = setInterval(() => pinging.ws.send('{"type":"ping"}'), 300);
  // The silent one is closed by the server with 4408 after the TTL; ann stays online thanks to the other device.
  expect((await silent.closed).code).toBe(4408);
  expect((await presence()).online).toBe(true);
  clearInterval(timer);
  // Now the second device goes silent too: offline within TTL + one sweep, with lastSeenAt.
  expect((await pinging.closed).code).toBe(4408);
  await until(async () => (await presence()).online === false);
  expect((await presence()).lastSeenAt).toBeGreaterThan(Date.now() - 10_000);
}, 40_000);

it("pushes to members with no connected device, signed; never to a connected one; retries then gives up", async () => {
  const dan = await mint("dan");
  const eve = await mint("eve");
  const carol = await mint("carol");
  const dm = (await http(server.url, "POST", "/v1/conversations", { token: dan.accessToken, body: { type: "direct", userId: eve.user.id } })).body.conversation;
  const g = (await http(server.url, "POST", "/v1/conversations", { token: dan.accessToken, body: { type: "group", title: "t", memberIds: [carol.user.id] } })).body.conversation;

  await http(server.url, "POST", `/v1/conversations/${dm.id}/messages`, { token: dan.accessToken, body: { clientMsgId: "p1", body: "are you there?" } });
  await until(() => received.some((r) => r.body.userId === eve.user.id));
  const push = received.find((r) => r.body.userId === eve.user.id)!;
  expect(push.body).toMatchObject({ type: "message", conversationId: dm.id, seq: 1, senderId: dan.user.id, preview: "are you there?", unread: 1 });
  expect(push.signature).toBe(`sha256=${createHmac("sha256", PUSH_SECRET).update(push.raw).digest("hex")}`);
  // The sender is never pushed its own message.
  expect(received.some((r) => r.body.userId === dan.user.id)).toBe(false);

  // Eve connects a device: no push for the next message.
  const device = await NodeSocket.open(`${server.wsUrl}/v1/me/ws?v=1&token=${eve.accessToken}`);
  await device.until(() => (device.frames.some((f: any) => f.type === "hello") ? true : undefined));
  const pingTimer = setInterval(() => device.ws.send('{"type":"ping"}'), 300);
  await sleep(1100); // past the one-second fan-out coalescing window
  await http(server.url, "POST", `/v1/conversations/${dm.id}/messages`, { token: dan.accessToken, body: { clientMsgId: "p2", body: "online now" } });
  await device.until(() => (device.frames.some((f: any) => f.type === "inbox_update" && f.entry.lastSeq === 2) ? true : undefined));
  await sleep(1500);
  expect(received.filter((r) => r.body.userId === eve.user.id)).toHaveLength(1);
  clearInterval(pingTimer);
  await device.close();

  // Carol's endpoint keeps failing: the job is retried, then dead-lettered, and stops.
  await http(server.url, "POST", `/v1/conversations/${g.id}/messages`, { token: dan.accessToken, body: { clientMsgId: "p3", body: "carol?" } });
  const attempts = () => received.filter((r) => r.body.userId === carol.user.id).length;
  // max_retries = 5: the first delivery and five retries, then the dead-letter queue; nothing after.
  await until(() => attempts() >= 6, 30_000);
  await sleep(2500);
  expect(attempts()).toBe(6);
  expect(new Set(received.filter((r) => r.body.userId === carol.user.id).map((r) => r.body.id)).size).toBe(1);
}, 60_000);
