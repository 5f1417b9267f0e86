// Receipt counts in a conversation of more than 100 members, through the SDK against the real server. There,
// receipts frames carry only your own cursors (they would grow with members squared), so the SDK asks
// GET …/receipts?seq= for your newest message: after caught_up, a few seconds after each message you send, and when
// the app calls refreshReceipts(). Counts known for a message stay a floor for every earlier one.
import { beforeAll, expect, it } from "vitest";
import { http } from "../../e2e/client.ts";
import type { LocalServer } from "../../e2e/server.ts";
import { useLocalServer } from "../../e2e/use-server.ts";
import { ChatClient, MemoryOutboxStorage } from "../src/index";
import { Network, until } from "./net";

const local = useLocalServer();
let server: LocalServer;
beforeAll(() => {
  server = local.current;
});

interface Minted {
  user: { id: string };
  accessToken: string;
}

it("above 100 members: counts come from the server, after each send and on refreshReceipts(), and never go back", async () => {
  const sfx = Date.now().toString(36);
  const members: Minted[] = [];
  for (let i = 0; i < 101; i += 17) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(17, 101 - i) }, (_, k) =>
        http(server.url, "POST", "/v1/admin/tokens", { token: server.adminSecret, body: { userId: `lr-${sfx}-${i + k}`, username: `lr${sfx}${i + k}` } }),
      ),
    );
    for (const r of batch) {
      expect(r.status).toBe(200);
      members.push(r.body as Minted);
    }
  }
  // The SDK's requests, to see it ask for counts by itself.
  const asked: number[] = [];
  const fetchSpy = (input: string | URL | Request, init?: RequestInit) => {
    const m = /\/receipts\?seq=(\d+)/.exec(String(input instanceof Request ? input.url : input));
    if (m && (init?.method ?? "GET") === "GET") asked.push(Number(m[1]));
    return globalThis.fetch(input, init);
  };
  const alice = new ChatClient({ baseUrl: server.url, fetch: fetchSpy, WebSocket: new Network().WebSocket, storage: new MemoryOutboxStorage(), backoff: { baseMs: 20, capMs: 200 } });
  await alice.auth.signup(`lra_${sfx}`, "correct horse battery");
  const group = await alice.createGroup("large receipts", members.map((m) => m.user.id));
  const a = await alice.open(group.id);
  await until(() => a.state === "open", 10_000, "alice open");
  const readAll = (seq: number) =>
    Promise.all(members.map((m) => http(server.url, "POST", `/v1/conversations/${group.id}/receipts`, { token: m.accessToken, body: { read: seq } })));

  await a.send("one");
  await until(() => a.lastSeq === 1, 10_000, "acked");
  expect(a.receiptCounts(1)).toEqual({ of: 101, delivered: 0, read: 0 });
  // Everyone reads it; no frame tells alice here. A few seconds after the ack the SDK asks by itself...
  const reads = readAll(1);
  await until(() => asked.includes(1), 10_000, "counts asked after the send");
  for (const r of await reads) expect(r.status).toBe(204);
  // ...and asking again brings the counts up to date.
  await a.refreshReceipts();
  expect(a.receiptCounts(1)).toEqual({ of: 101, delivered: 101, read: 101 });
  expect(a.statusOf(a.messages[0]!)).toBe("read");

  // A newer message nobody has read yet does not take the older one's counts back.
  await a.send("two");
  await until(() => a.lastSeq === 2, 10_000, "second acked");
  await until(() => asked.includes(2), 10_000, "counts asked after the second send");
  await until(() => a.receiptCounts(2).of === 101 && a.statusOf(a.messages[1]!) === "sent", 10_000, "second counts");
  expect(a.receiptCounts(2)).toEqual({ of: 101, delivered: 0, read: 0 });
  expect(a.receiptCounts(1)).toEqual({ of: 101, delivered: 101, read: 101 });
  expect(a.statusOf(a.messages[0]!)).toBe("read");
  a.close();
  alice.close();
}, 60_000);
