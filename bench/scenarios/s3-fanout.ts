// Scenario 3: one group with N connected members; member 0 sends, one message at a time; latency
// from send to arrival at every other member. Frames are timestamped on arrival and parsed afterwards,
// so the load generator's own parsing does not sit in front of later arrivals.
import { performance } from "node:perf_hooks";
import { closeAll, frameType, makeBody, openSockets, parseMessageFrame, type BenchSocket } from "../lib/client.ts";
import { Latency, type LatencySummary } from "../lib/stats.ts";
import { FLOOR, onBareRelay, systemsOf, SYSTEMS, type BenchContext, type WithFloor } from "../lib/systems.ts";
import { waitFor } from "../lib/wait.ts";
import { log } from "../lib/env.ts";

export interface FanoutResult {
  members: number;
  /** Every (member, message) delivery. */
  delivery: LatencySummary;
  /** Per message: when the last member got it. */
  lastDelivery: LatencySummary;
  messages: number;
  delivered: number;
  expected: number;
  duplicates: number;
  missing: number;
  connectMs: number;
  /** With `report`: the `receipts` frames the members' sockets received. */
  receiptFrames?: number;
  /** Set when this cell could not run (e.g. sockets never went live); the numbers are then empty. */
  error?: string;
}

/**
 * `reportMs`: every member reports delivery as the SDK does (client/src/receipts.ts: one `receipt` frame per socket
 * per burst, as long after its first message as this says; edgechat only, the relays know no such frame), so the server moves
 * a cursor per member per burst (bench/receipts-load.ts).
 */
export async function fanout(urls: string[], messages: number, warmup: number, gapMs: number, bodyBytes: number, reportMs?: () => number): Promise<FanoutResult> {
  const report = reportMs !== undefined;
  const n = urls.length;
  const total = warmup + messages;
  const arrivals: { i: number; at: number; data: Buffer }[] = [];
  let count = 0;
  let receiptFrames = 0;
  const reported: { seq: number; timer: ReturnType<typeof setTimeout> | null }[] = urls.map(() => ({ seq: 0, timer: null }));
  let sockets: BenchSocket[] = [];
  const reportDelivered = (i: number, data: Buffer) => {
    const r = reported[i]!;
    r.seq = Math.max(r.seq, parseMessageFrame(data)?.seq ?? 0);
    if (r.timer) return;
    r.timer = setTimeout(() => {
      r.timer = null;
      sockets[i]?.ws.send(JSON.stringify({ type: "receipt", delivered: r.seq }));
    }, reportMs!());
  };
  const t0 = performance.now();
  sockets = await openSockets(urls, 64, (i) =>
    i === 0
      ? null
      : (data, at) => {
          const type = frameType(data);
          if (type === "receipts") receiptFrames++;
          if (type !== "message") return;
          arrivals.push({ i, at, data });
          count++;
          if (report) reportDelivered(i, data);
        },
  );
  const connectMs = performance.now() - t0;
  try {
    for (let k = 0; k < total; k++) {
      sockets[0]!.send(JSON.stringify({ type: "send", clientMsgId: `f-${k}`, body: makeBody(0, k, bodyBytes) }));
      const closed = sockets.filter((s) => s.ws.readyState !== 1).length;
      if (closed > 0) throw new Error(`${closed} of ${n} member sockets were closed by the server`);
      await waitFor(() => count >= (k + 1) * (n - 1), 30_000, `message ${k} at all ${n - 1} members (got ${count - k * (n - 1)})`);
      await new Promise((r) => setTimeout(r, gapMs));
    }
  } catch (err) {
    await closeAll(sockets);
    throw err;
  }
  for (const r of reported) if (r.timer) clearTimeout(r.timer);
  await closeAll(sockets);
  const delivery = new Latency();
  const last = new Float64Array(total);
  const seen = new Uint8Array(n * total);
  let duplicates = 0;
  for (const a of arrivals) {
    const m = parseMessageFrame(a.data);
    if (!m || m.n < 0 || m.n >= total) continue;
    const key = a.i * total + m.n;
    if (seen[key]) duplicates++;
    seen[key] = 1;
    if (m.n < warmup) continue;
    const ms = a.at - m.sentAt;
    delivery.record(ms);
    if (ms > last[m.n]!) last[m.n] = ms;
  }
  const lastDelivery = new Latency();
  for (let k = warmup; k < total; k++) lastDelivery.record(last[k]!);
  let unique = 0;
  for (let i = 1; i < n; i++) for (let k = 0; k < total; k++) unique += seen[i * total + k]!;
  const expected = (n - 1) * total;
  return {
    members: n,
    delivery: delivery.summary(),
    lastDelivery: lastDelivery.summary(),
    messages: total,
    delivered: arrivals.length,
    expected,
    duplicates,
    missing: expected - unique,
    connectMs: Math.round(connectMs),
    ...(report ? { receiptFrames } : {}),
  };
}

export async function runFanout(ctx: BenchContext): Promise<Record<string, WithFloor<FanoutResult>>> {
  const p = ctx.params.s3;
  const systems = systemsOf(ctx);
  const out: Record<string, WithFloor<FanoutResult>> = {};
  const cell = async (size: number, name: string, urls: () => Promise<string[]>): Promise<FanoutResult> => {
    try {
      const r = await fanout(await urls(), p.messages, p.warmup, p.gapMs, ctx.params.bodyBytes);
      log(`s3 ${size} ${name}: median ${r.delivery.p50} ms p99 ${r.delivery.p99} ms, ${r.delivered}/${r.expected}`);
      return r;
    } catch (err) {
      const empty = new Latency().summary();
      const expected = (size - 1) * (p.messages + p.warmup);
      const r = { members: size, delivery: empty, lastDelivery: empty, messages: 0, delivered: 0, expected, duplicates: 0, missing: expected, connectMs: 0, error: err instanceof Error ? err.message : String(err) };
      log(`s3 ${size} ${name} failed: ${r.error}`);
      return r;
    }
  };
  for (const size of p.sizes) {
    out[String(size)] = {} as WithFloor<FanoutResult>;
    for (const name of SYSTEMS) out[String(size)]![name] = await cell(size, name, async () => (await systems[name].room(size)).urls);
  }
  // The runtime's floor, on a runtime of its own, after the three systems.
  await onBareRelay(async (room) => {
    for (const size of p.sizes) out[String(size)]![FLOOR] = await cell(size, FLOOR, async () => room(size));
  });
  return out;
}
