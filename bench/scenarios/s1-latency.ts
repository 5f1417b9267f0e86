// Scenario 1: 1:1 send -> deliver latency at a steady ~100 msg/s. Measured at the receiving client.
import { performance } from "node:perf_hooks";
import { closeAll, frameType, makeBody, openSockets, parseMessageFrame, uniqueTag } from "../lib/client.ts";
import { Latency, type LatencySummary } from "../lib/stats.ts";
import { FLOOR, onBareRelay, systemsOf, SYSTEMS, type BenchContext, type WithFloor } from "../lib/systems.ts";
import { sleepUntil, waitFor } from "../lib/wait.ts";
import { log } from "../lib/env.ts";

export interface PacedResult {
  delivery: LatencySummary;
  ack: LatencySummary;
  sent: number;
  delivered: number;
  acked: number;
  duplicates: number;
  achievedRatePerSec: number;
  /** When the slowest message was sent, in seconds from the start of sending (locates stalls). */
  worstSentAtSecond: number;
}

/** Send `warmup + messages` at `rate` from url[0] to url[1]; latency of the last `messages` only. */
export async function pacedPair(urls: [string, string], rate: number, messages: number, warmup: number, bodyBytes: number): Promise<PacedResult> {
  const total = warmup + messages;
  const delivery = new Latency();
  const ack = new Latency();
  const sentAt = new Float64Array(total);
  const seen = new Uint8Array(total);
  let delivered = 0;
  let acked = 0;
  let duplicates = 0;
  let worst = -1;
  let worstAt = 0;
  const [a, b] = await openSockets(urls, 2);
  b!.onFrame = (data, at) => {
    if (frameType(data) !== "message") return;
    const m = parseMessageFrame(data);
    if (!m || m.sender !== 0 || m.n < 0 || m.n >= total) return;
    if (seen[m.n]) duplicates++;
    seen[m.n] = 1;
    delivered++;
    if (m.n >= warmup) delivery.record(at - m.sentAt);
    if (at - m.sentAt > worst) {
      worst = at - m.sentAt;
      worstAt = m.sentAt;
    }
  };
  a!.onFrame = (data, at) => {
    if (frameType(data) !== "ack") return;
    const f = JSON.parse(data.toString()) as { clientMsgId: string };
    const n = Number(f.clientMsgId.slice(f.clientMsgId.lastIndexOf("-") + 1));
    acked++;
    if (n >= warmup) ack.record(at - sentAt[n]!);
  };
  const tag = uniqueTag();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    await sleepUntil(start + (i * 1000) / rate);
    const body = makeBody(0, i, bodyBytes);
    sentAt[i] = performance.now();
    a!.send(JSON.stringify({ type: "send", clientMsgId: `p${tag}-${i}`, body }));
  }
  const elapsed = performance.now() - start;
  await waitFor(() => delivered >= total && acked >= total, 20_000, `all ${total} messages delivered and acked`).catch(() => undefined);
  await closeAll([a!, b!]);
  return {
    delivery: delivery.summary(),
    ack: ack.summary(),
    sent: total,
    delivered,
    acked,
    duplicates,
    achievedRatePerSec: Math.round((total / elapsed) * 1000 * 10) / 10,
    worstSentAtSecond: Math.round((worstAt - start) / 100) / 10,
  };
}

export async function runLatency(ctx: BenchContext): Promise<WithFloor<PacedResult>> {
  const p = ctx.params.s1;
  const systems = systemsOf(ctx);
  const out = {} as WithFloor<PacedResult>;
  const report = (name: string, r: PacedResult) => log(`s1 ${name}: p50 ${r.delivery.p50} ms p99 ${r.delivery.p99} ms (${r.delivered}/${r.sent})`);
  for (const name of SYSTEMS) {
    const room = await systems[name].room(2, true);
    out[name] = await pacedPair([room.urls[0]!, room.urls[1]!], p.ratePerSec, p.messages, p.warmup, ctx.params.bodyBytes);
    report(name, out[name]);
  }
  out[FLOOR] = await onBareRelay(async (room) => {
    const [a, b] = room(2) as [string, string];
    return pacedPair([a, b], p.ratePerSec, p.messages, p.warmup, ctx.params.bodyBytes);
  });
  report(FLOOR, out[FLOOR]);
  return out;
}
