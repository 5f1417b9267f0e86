// Typing in large groups: the per-member throttle bounds each typer, but every typing frame is one send per live
// socket, so in a conversation of more than 100 members at most three indicators show at once. Another member's
// `active` is dropped until one of the three stops, sends a message or lets its indicator expire (6 s).
// Up to 100 members everyone's indicator goes out.
import { expect, it } from "vitest";
import { TestSocket, createSettledGroup, liveSocket, sendRest } from "./helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until every frame `s` sent before this call has been handled by the object. */
async function drained(s: TestSocket): Promise<void> {
  s.send('{"type": "ping"}');
  await s.next("pong");
}

/** Who `watcher` was told is typing, in order: "name" for active, "-name" for a stop. */
function told(watcher: TestSocket, names: Map<string, string>): string[] {
  return watcher.frames.flatMap((f) => (f.type === "typing" ? [`${f.active ? "" : "-"}${names.get(f.userId)}`] : []));
}

/** `typer` says it is typing (or stopped), and the object has handled it before this returns. */
async function type(typer: TestSocket, active = true): Promise<void> {
  typer.send({ type: "typing", active });
  await drained(typer);
}

/** `typer` (user `userId`) says it is typing (or stopped), and `watcher` is told. */
async function shown(watcher: TestSocket, typer: TestSocket, userId: string, active = true): Promise<void> {
  typer.send({ type: "typing", active });
  await watcher.next("typing", (f) => f.userId === userId && f.active === active);
}

/** A fenced read of what `watcher` was told: a message sent after the typing frames reaches it after them. */
async function toldAfterFence(watcher: TestSocket, fence: () => Promise<unknown>, id: string, names: Map<string, string>): Promise<string[]> {
  await fence();
  await watcher.next("message", (f) => f.message.clientMsgId === id);
  return told(watcher, names);
}

it("above 100 members at most three typing indicators show at once; a stop, a message or an expiry frees a place", async () => {
  const { owner, members, g } = await createSettledGroup(110, "large typing");
  const typers = members.slice(0, 5);
  const names = new Map(typers.map((u, i) => [u.id, `t${i}`]));
  const watcher = await liveSocket(g.id, owner);
  const sockets = await Promise.all(typers.map((u) => liveSocket(g.id, u)));
  const [t0, t1, t2, t3, t4] = sockets.map((s, i) => ({ s, id: typers[i]!.id }));
  const show = (t: { s: TestSocket; id: string }, active = true) => shown(watcher, t.s, t.id, active);
  const fence = (id: string) => toldAfterFence(watcher, () => sendRest(owner, g.id, id), id, names);
  for (const t of [t0!, t1!, t2!]) await show(t);
  await type(t3!.s);
  expect(await fence("f1")).toEqual(["t0", "t1", "t2"]);

  // t0 stops: its place goes to the next member who says they type (t3 asked before and was dropped; it asks again).
  await show(t0!, false);
  await show(t3!);
  await type(t4!.s);
  expect(await fence("f2")).toEqual(["t0", "t1", "t2", "-t0", "t3"]);

  // t1 sends a message: that ends its indicator and frees its place.
  t1!.s.send({ type: "send", clientMsgId: "from-t1", body: "done typing" });
  await t1!.s.next("ack");
  await show(t4!);
  expect(await fence("f3")).toEqual(["t0", "t1", "t2", "-t0", "t3", "t4"]);

  // Nobody renews: after 6 s every indicator has expired at the receivers, so three new ones may show.
  await sleep(6_100);
  for (const t of [t0!, t1!, t2!]) await show(t);
  await type(t3!.s);
  expect((await fence("f4")).slice(6)).toEqual(["t0", "t1", "t2"]);
  for (const s of [watcher, ...sockets]) s.close();
}, 60_000);

it("up to 100 members every typer's indicator goes out", async () => {
  const { owner, members, g } = await createSettledGroup(6, "small typing");
  const names = new Map(members.map((u, i) => [u.id, `t${i}`]));
  const watcher = await liveSocket(g.id, owner);
  const typers = await Promise.all(members.map((u) => liveSocket(g.id, u)));
  for (const [i, t] of typers.entries()) await shown(watcher, t, members[i]!.id);
  expect(await toldAfterFence(watcher, () => sendRest(owner, g.id, "f"), "f", names)).toEqual(["t0", "t1", "t2", "t3", "t4", "t5"]);
  for (const s of [watcher, ...typers]) s.close();
});
