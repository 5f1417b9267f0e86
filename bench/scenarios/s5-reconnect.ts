// Scenario 5: reconnect storm. N members of one group are live, drop, miss M messages, then all
// reconnect at once with `since`. Every client's stream is checked: exactly since+1 .. since+M, in order.
import { performance } from "node:perf_hooks";
import { BenchSocket, closeAll, conversationWsUrl, createGroup, frameType, openSockets } from "../lib/client.ts";
import { log } from "../lib/env.ts";
import { Latency, round, type LatencySummary } from "../lib/stats.ts";
import type { BenchContext } from "../lib/systems.ts";
import { waitFor } from "../lib/wait.ts";

export interface ReconnectResult {
  clients: number;
  missed: number;
  since: number;
  allCaughtUpMs: number;
  perClient: LatencySummary;
  gaps: number;
  duplicates: number;
  outOfOrder: number;
  /** Messages received in total after reconnecting; must be clients x missed. */
  received: number;
  expected: number;
  complete: boolean;
}

function seqsOf(data: Buffer): number[] {
  const type = frameType(data);
  if (type === "backlog") return (JSON.parse(data.toString()) as { messages: { seq: number }[] }).messages.map((m) => m.seq);
  if (type === "message") return [(JSON.parse(data.toString()) as { message: { seq: number } }).message.seq];
  return [];
}

async function sendAll(sender: BenchSocket, prefix: string, count: number, bodyBytes: number): Promise<void> {
  let acked = 0;
  sender.onFrame = (data) => {
    if (frameType(data) === "ack") acked++;
  };
  for (let i = 0; i < count; i += 50) {
    const messages = Array.from({ length: Math.min(50, count - i) }, (_, k) => ({ clientMsgId: `${prefix}-${i + k}`, body: `${prefix} ${i + k} `.padEnd(bodyBytes, "x") }));
    sender.send(JSON.stringify({ type: "send_batch", messages }));
  }
  await waitFor(() => acked >= count, 30_000, `${count} acks`);
}

export async function runReconnect(ctx: BenchContext): Promise<ReconnectResult> {
  const p = ctx.params.s5;
  const clients = ctx.users.slice(0, p.clients);
  const senderUser = ctx.users[p.clients]!;
  const id = await createGroup(ctx.edge.url, senderUser, [senderUser, ...clients], "s5");
  const [sender] = await openSockets([conversationWsUrl(ctx.edge.wsUrl, id, senderUser.token, 0)], 1);

  // Everyone live and caught up to `before`.
  const seenBefore = new Int32Array(clients.length);
  const live = await openSockets(
    clients.map((u) => conversationWsUrl(ctx.edge.wsUrl, id, u.token, 0)),
    64,
    (i) => (data) => {
      for (const s of seqsOf(data)) seenBefore[i] = Math.max(seenBefore[i]!, s);
    },
  );
  await sendAll(sender!, "before", p.before, ctx.params.bodyBytes);
  await waitFor(() => seenBefore.every((s) => s >= p.before), 30_000, "all clients at `before`");
  await closeAll(live);

  // They miss `missed` messages.
  await sendAll(sender!, "missed", p.missed, ctx.params.bodyBytes);
  const since = p.before;

  // Storm: all reconnect at once.
  const received: number[][] = clients.map(() => []);
  const doneAt = new Float64Array(clients.length);
  const t0 = performance.now();
  const sockets = clients.map(
    (u, i) =>
      new BenchSocket(conversationWsUrl(ctx.edge.wsUrl, id, u.token, seenBefore[i]!), (data, at) => {
        if (frameType(data) === "caught_up") doneAt[i] = at;
        else received[i]!.push(...seqsOf(data));
      }),
  );
  const settled = await Promise.allSettled(sockets.map((s) => s.ready));
  const allCaughtUpMs = performance.now() - t0;
  const perClient = new Latency();
  for (const t of doneAt) if (t > 0) perClient.record(t - t0);

  let gaps = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let total = 0;
  received.forEach((seqs, i) => {
    const from = seenBefore[i]! + 1;
    const to = since + p.missed;
    const set = new Set(seqs);
    duplicates += seqs.length - set.size;
    for (let s = from; s <= to; s++) if (!set.has(s)) gaps++;
    for (let k = 1; k < seqs.length; k++) if (seqs[k]! <= seqs[k - 1]!) outOfOrder++;
    total += seqs.length;
  });
  await closeAll([...sockets, sender!]);
  const failed = settled.filter((s) => s.status === "rejected").length;
  const result: ReconnectResult = {
    clients: clients.length,
    missed: p.missed,
    since,
    allCaughtUpMs: round(allCaughtUpMs, 1),
    perClient: perClient.summary(),
    gaps,
    duplicates,
    outOfOrder,
    received: total,
    expected: clients.length * p.missed,
    complete: failed === 0 && gaps === 0 && duplicates === 0 && outOfOrder === 0 && total === clients.length * p.missed,
  };
  log(`s5: ${result.clients} clients caught up in ${result.allCaughtUpMs} ms, gaps ${gaps} dups ${duplicates}`);
  return result;
}
