// The pacing queue of `members_changed` frames (conversation/member-news.ts) on real socket pairs: a frame larger
// than the slice goes out over several events, frames made meanwhile wait behind it, and every socket gets every
// frame once, in the order they were made; a small frame with nothing queued goes to every socket at once; a
// socket closed mid-way is skipped without holding up the others.
import { expect, it } from "vitest";
import type { ServerFrame } from "../src/protocol/frames";
import type { Sockets } from "../src/objects/conversation/connections";
import { MemberNews } from "../src/objects/conversation/member-news";

type Change = Extract<ServerFrame, { type: "members_changed" }>;

/** `n` connected socket pairs: the server ends to send on, and what each client end received (first added id, or first removed). */
function pairs(n: number) {
  return Array.from({ length: n }, () => {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    client.accept();
    server.accept();
    const got: string[] = [];
    client.addEventListener("message", (e) => {
      const f = JSON.parse(String(e.data)) as Change;
      got.push(f.added[0]?.userId ?? `-${f.removed[0]}`);
    });
    return { server, got };
  });
}

const registry = (servers: WebSocket[]) => ({ open: () => [...servers] }) as unknown as Sockets;
const added = (tag: string, entries: number): Change => ({
  type: "members_changed",
  added: Array.from({ length: entries }, (_, i) => ({ userId: i === 0 ? tag : `${tag}-${i}`, username: `user${i}`, role: "member" })),
  removed: [],
});
const removed = (userId: string): Change => ({ type: "members_changed", added: [], removed: [userId] });

async function until(check: () => boolean, what: string): Promise<void> {
  for (let t = 0; t < 200; t++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out: ${what}`);
}

it("a frame over the slice goes out over several events; later frames wait behind it; every socket gets all, in order", async () => {
  const sockets = pairs(20);
  // ~4 KB a frame against a 1 KiB slice: one socket per event.
  const news = new MemberNews(registry(sockets.map((s) => s.server)), 1024);
  news.announce(added("bulk", 60));
  news.announce(removed("gone"));
  news.announce(added("late", 1));
  // Only the first socket was sent the bulk frame in this event: the rest, and both later frames, are queued.
  expect(news.pending).toBe(3);
  sockets[7]!.server.close(1000, "left");
  await until(() => news.pending === 0, "the queue drains");
  await until(() => sockets.every((s, i) => i === 7 || s.got.length === 3), "every open socket got three frames");
  for (const [i, s] of sockets.entries()) if (i !== 7) expect(s.got).toEqual(["bulk", "-gone", "late"]);
});

it("a small frame with nothing queued reaches every socket in the event that made it", async () => {
  const sockets = pairs(20);
  const news = new MemberNews(registry(sockets.map((s) => s.server)), 2 * 1024 * 1024);
  news.announce(added("one", 1));
  expect(news.pending).toBe(0);
  await until(() => sockets.every((s) => s.got.length === 1), "every socket got it");
});
