// Groups of a few thousand members, end to end on a real local server (workerd, real Queues, real
// sockets): 3,000 and 5,000 members. Every connected member receives every message; members online on a
// user socket hear them live; every member's inbox shows the message and the unread count when read; members
// with no device connected get one push (collapsed until they read); and an unrelated conversation keeps
// answering meanwhile. The local server runs behind wrangler's dev proxy, which cannot hold thousands of
// sockets (bench/README.md), so a few hundred members connect here; scenario 3 of the benchmark connects all
// 5,000 to one runtime. Test files: e2e/large-group-3000.test.ts (npm test), e2e/large/ (npm run test:large).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startLocalServer, type LocalServer } from "./server.ts";
import { NodeSocket, http } from "./client.ts";

const CONVERSATION_SOCKETS = 300;
const USER_SOCKETS = 100;
const INBOX_SAMPLE = 300;

let server: LocalServer;
let receiver: Server;
const pushes: { userId: string; conversationId: string; seq: number; unread: number }[] = [];

interface Minted {
  user: { id: string };
  accessToken: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pMap<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 100) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(intervalMs);
  }
  return Date.now() - start;
}

let minted: Minted[] = [];

/** `count` users (minted once for the file; the 3,000-member group is made of the first 3,000). */
async function users(count: number): Promise<Minted[]> {
  const tag = Date.now().toString(36);
  const fresh = await pMap(Array.from({ length: Math.max(0, count - minted.length) }, (_, i) => minted.length + i), 16, async (i) => {
    const r = await http(server.url, "POST", "/v1/admin/tokens", { token: server.adminSecret, body: { userId: `lg-${tag}-${i}`, username: `lg${tag}${i}` } });
    expect(r.status).toBe(200);
    return r.body as Minted;
  });
  minted = [...minted, ...fresh];
  return minted.slice(0, count);
}

async function largeGroup(size: number) {
  const [owner, ...members] = (await users(size)) as [Minted, ...Minted[]];
  const created = await http(server.url, "POST", "/v1/conversations", {
    token: owner.accessToken,
    body: { type: "group", title: `large ${size}`, memberIds: members.map((m) => m.user.id) },
  });
  expect(created.status).toBe(201);
  const g = created.body.conversation as { id: string; members: unknown[] };
  expect(g.members).toHaveLength(size);

  // Who is where: conversation sockets, user sockets only, and everyone else offline.
  const inConversation = members.slice(0, CONVERSATION_SOCKETS);
  const onUserSocket = members.slice(CONVERSATION_SOCKETS, CONVERSATION_SOCKETS + USER_SOCKETS);
  const offline = members.slice(CONVERSATION_SOCKETS + USER_SOCKETS);
  const convSockets = await pMap(inConversation, 32, (m) => NodeSocket.open(`${server.wsUrl}/v1/conversations/${g.id}/ws?v=1&token=${m.accessToken}`));
  await Promise.all(convSockets.map((s) => s.frame("caught_up")));
  const userSockets = await pMap(onUserSocket, 32, (m) => NodeSocket.open(`${server.wsUrl}/v1/me/ws?v=1&token=${m.accessToken}`));
  await Promise.all(userSockets.map((s) => s.until(() => s.frames.find((f: any) => f.type === "hello"))));
  const pinger = setInterval(() => [...convSockets, ...userSockets].forEach((s) => s.ws.send('{"type":"ping"}')), 10_000);

  // Until the group's creation has reached the inboxes (through the fan-out queue: new members' inboxes are
  // written once, at creation) of every member on a user socket (their user objects then register for its live
  // events) and of the offline members whose inboxes are read below.
  const sample = offline.filter((_, i) => i % Math.ceil(offline.length / INBOX_SAMPLE) === 0);
  const lists = async (m: Minted) =>
    (await http(server.url, "GET", "/v1/me/conversations", { token: m.accessToken })).body.conversations.some((c: any) => c.conversationId === g.id);
  const waiting = new Set([...onUserSocket, ...sample]);
  const inInboxes = await until(
    "every online inbox lists the group",
    async () => {
      await pMap([...waiting], 16, async (m) => void ((await lists(m)) && waiting.delete(m)));
      return waiting.size === 0;
    },
    120_000,
    2_000, // polling hundreds of inboxes competes with the fan-out for the one local runtime thread
  );
  await sleep(1_000);

  // An unrelated direct conversation, timed while the large group's fan-out runs.
  const [a, b] = [offline[0]!, offline[1]!];
  const dm = (await http(server.url, "POST", "/v1/conversations", { token: a.accessToken, body: { type: "direct", userId: b.user.id } })).body.conversation;
  const unrelated: number[] = [];

  const sentAt = Date.now();
  for (let i = 1; i <= 3; i++) {
    const r = await http(server.url, "POST", `/v1/conversations/${g.id}/messages`, { token: owner.accessToken, body: { clientMsgId: `big-${i}`, body: `to all ${size}: ${i}` } });
    expect(r.status).toBe(201);
  }
  const probe = (async () => {
    for (let i = 0; i < 20; i++) {
      const t = Date.now();
      expect((await http(server.url, "POST", `/v1/conversations/${dm.id}/messages`, { token: a.accessToken, body: { clientMsgId: `dm-${size}-${i}`, body: "still there?" } })).status).toBe(201);
      unrelated.push(Date.now() - t);
      await sleep(100);
    }
  })();

  // Every connected member receives every message, in order.
  const delivered = await until("every conversation socket has 3 messages", () => convSockets.every((s) => s.messages().length >= 3), 30_000);
  for (const s of convSockets) expect(s.messages().map((m) => m.seq)).toEqual([1, 2, 3]);
  // Every member on a user socket hears the newest message live.
  const live = await until(
    "every user socket heard seq 3",
    () => userSockets.every((s) => s.frames.some((f: any) => f.type === "inbox_update" && f.entry.conversationId === g.id && f.entry.lastSeq === 3)),
    30_000,
  );
  // Inboxes, read by members who never connected: the message and the unread count, within 5 s of the send.
  const inboxes = await pMap(sample, 16, async (m) => {
    const r = await http(server.url, "GET", "/v1/me/conversations", { token: m.accessToken });
    return r.body.conversations.find((c: any) => c.conversationId === g.id);
  });
  const inboxReadMs = Date.now() - sentAt;
  for (const entry of inboxes) expect(entry).toMatchObject({ lastSeq: 3, unread: 3, lastMessage: { seq: 3, preview: `to all ${size}: 3` } });
  expect(inboxReadMs).toBeLessThan(5_000 + sample.length * 50); // the reads themselves take time on 2 cores
  // One push per offline member for this group (collapsed: three messages, they have not read), none for anyone
  // connected. Members whose inbox was just read (the sample) may have seen the message before their push was
  // decided: the message is then not new to their inbox, and they may get no push.
  const readers = new Set(sample.map((m) => m.user.id));
  const mustPush = offline.filter((m) => !readers.has(m.user.id)).map((m) => m.user.id);
  const pushedIds = () => new Set(pushes.filter((p) => p.conversationId === g.id).map((p) => p.userId));
  const pushMs = await until(`pushes for ${mustPush.length} offline members`, () => mustPush.every((id) => pushedIds().has(id)), 150_000, 500);
  await sleep(1_000);
  const forGroup = pushes.filter((p) => p.conversationId === g.id);
  const allowed = new Set(offline.map((m) => m.user.id));
  for (const p of forGroup) expect(allowed.has(p.userId), "pushed someone connected").toBe(true);
  expect(forGroup.length, "more than one push for someone").toBe(pushedIds().size);
  for (const p of forGroup) expect(p).toMatchObject({ seq: expect.any(Number), unread: p.seq });

  await probe;
  unrelated.sort((x, y) => x - y);
  console.log(
    JSON.stringify({
      size,
      createdInInboxesMs: inInboxes,
      deliveredToSocketsMs: delivered,
      liveOnUserSocketsMs: live,
      inboxSampleReadMs: inboxReadMs,
      pushesMs: pushMs,
      pushes: forGroup.length,
      offline: offline.length,
      unrelatedSendMs: { p50: unrelated[Math.floor(unrelated.length / 2)], max: unrelated.at(-1) },
    }),
  );
  // It keeps answering (every send above was a 201). Its latency does rise locally, where the fan-out and
  // pushes to thousands of user objects share one runtime thread with it: ~0.9 s median, under 2 s at worst
  // on a 2-core machine (measured numbers in the log line above; bench scenario 3 measures the same with no
  // pushes). Anything near 5 s would mean requests queue behind the whole fan-out.
  expect(unrelated.at(-1)!).toBeLessThan(5_000);
  clearInterval(pinger);
  await Promise.all([...convSockets, ...userSockets].map((s) => s.close()));
}

/** The test for one group size, on its own local server (call at the top level of a test file). */
export function largeGroupTest(size: number, timeoutMs: number): void {
  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let raw = "";
      req.on("data", (c) => (raw += c));
      req.on("end", () => {
        pushes.push(JSON.parse(raw));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as AddressInfo).port;
    server = await startLocalServer({ vars: { PUSH_WEBHOOK_URL: `http://127.0.0.1:${port}/push`, PUSH_WEBHOOK_SECRET: "large-groups" } });
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => receiver?.close(r));
  });
  it(`a ${size.toLocaleString("en")}-member group: delivery, live inbox events, inboxes, pushes`, () => largeGroup(size), timeoutMs);
}
