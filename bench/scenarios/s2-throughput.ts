// Scenario 2: one conversation, N concurrent senders, persisted-and-acked messages per second.
// Each sender keeps a fixed window of unacknowledged messages in flight (closed loop); every member
// also receives every message (the senders are the members), as in a real busy group.
import { performance } from "node:perf_hooks";
import { closeAll, frameType, makeBody, openSockets, parseMessageFrame } from "../lib/client.ts";
import { Latency, round, type LatencySummary } from "../lib/stats.ts";
import { systemsOf, SYSTEMS, type BenchContext, type SystemName } from "../lib/systems.ts";
import { settle } from "../lib/wait.ts";
import { log } from "../lib/env.ts";

export interface ThroughputResult {
  messagesPerSecond: number;
  framesPerSecond: number;
  ack: LatencySummary;
  delivery: LatencySummary;
  sent: number;
  acked: number;
  /** Sum over members of messages received; must be sent x members. */
  delivered: number;
  expectedDeliveries: number;
  errors: number;
  /** Acked messages per sender: shows whether the server serves concurrent senders fairly. */
  perSender: number[];
  complete: boolean;
}

export async function drive(urls: string[], perFrame: number, window: number, warmupS: number, seconds: number, bodyBytes: number): Promise<ThroughputResult> {
  const n = urls.length;
  const ack = new Latency();
  const delivery = new Latency();
  const sentAt: number[][] = urls.map(() => []);
  const inflight = new Int32Array(n);
  const sent = new Int32Array(n);
  const acked = new Int32Array(n);
  const deliveredTo = new Float64Array(n);
  let errors = 0;
  let windowAcks = 0;
  let running = true;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const sockets = await openSockets(urls, 32);

  const pump = (i: number) => {
    while (running && inflight[i]! + perFrame <= window * perFrame) {
      const items: { clientMsgId: string; body: string }[] = [];
      for (let k = 0; k < perFrame; k++) {
        const seq = sent[i]!++;
        sentAt[i]![seq] = performance.now();
        items.push({ clientMsgId: `t-${i}-${seq}`, body: makeBody(i, seq, bodyBytes) });
      }
      inflight[i]! += perFrame;
      sockets[i]!.send(JSON.stringify(perFrame === 1 ? { type: "send", ...items[0] } : { type: "send_batch", messages: items }));
    }
  };
  sockets.forEach((s, i) => {
    s.onFrame = (data, at) => {
      const type = frameType(data);
      if (type === "message") {
        deliveredTo[i]!++;
        if (i === 0) {
          const m = parseMessageFrame(data);
          if (m) delivery.record(at - m.sentAt);
        }
        return;
      }
      if (type === "ack") {
        const text = data.toString();
        const c = text.indexOf('"clientMsgId":"t-') + 17;
        const seq = parseInt(text.slice(text.indexOf("-", c) + 1), 10);
        acked[i]!++;
        inflight[i]!--;
        if (at >= windowStart && at < windowEnd) windowAcks++;
        ack.record(at - sentAt[i]![seq]!);
        pump(i);
        return;
      }
      if (type === "error") {
        // A refused message (e.g. rate_limited) is counted and frees its window slot.
        errors++;
        inflight[i]!--;
        pump(i);
      }
    };
  });
  const t0 = performance.now();
  windowStart = t0 + warmupS * 1000;
  windowEnd = windowStart + seconds * 1000;
  for (let i = 0; i < n; i++) pump(i);
  await new Promise((r) => setTimeout(r, (warmupS + seconds) * 1000));
  running = false;
  const totalSent = () => sent.reduce((a, b) => a + b, 0);
  const totalAcked = () => acked.reduce((a, b) => a + b, 0);
  const totalDelivered = () => deliveredTo.reduce((a, b) => a + b, 0);
  const complete = await settle(() => totalAcked() + errors >= totalSent() && totalDelivered() >= totalSent() * n, 60_000);
  await closeAll(sockets);
  const mps = windowAcks / seconds;
  return {
    messagesPerSecond: round(mps, 1),
    framesPerSecond: round(mps / perFrame, 1),
    ack: ack.summary(),
    delivery: delivery.summary(),
    sent: totalSent(),
    acked: totalAcked(),
    delivered: totalDelivered(),
    expectedDeliveries: totalSent() * n,
    errors,
    perSender: Array.from(acked),
    complete: complete && totalAcked() === totalSent() && totalDelivered() === totalSent() * n,
  };
}

export type ThroughputResults = Record<"single" | "batched", Record<SystemName, ThroughputResult>>;

export async function runThroughput(ctx: BenchContext): Promise<ThroughputResults> {
  const p = ctx.params.s2;
  const systems = systemsOf(ctx);
  const out: ThroughputResults = { single: {} as Record<SystemName, ThroughputResult>, batched: {} as Record<SystemName, ThroughputResult> };
  for (const variant of ["single", "batched"] as const) {
    for (const name of SYSTEMS) {
      const room = await systems[name].room(p.senders);
      const perFrame = variant === "single" ? 1 : p.batchSize;
      const window = variant === "single" ? p.windowPerSender : p.batchWindowPerSender;
      const r = await drive(room.urls, perFrame, window, p.warmupSeconds, p.seconds, ctx.params.bodyBytes);
      out[variant][name] = r;
      log(`s2 ${variant} ${name}: ${r.messagesPerSecond} msg/s, ack p50 ${r.ack.p50} ms, complete ${r.complete}`);
    }
  }
  return out;
}
