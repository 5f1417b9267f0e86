// Scenario 6: history pages from a large conversation. Fill it over a socket (send_batch), wait until
// the alarm has archived everything to D1 and pruned the object down to its hot tail, then time
// 50-message pages from the hot tail (the object's SQLite) and from the archive (D1).
import { performance } from "node:perf_hooks";
import { closeAll, conversationWsUrl, createGroup, frameType, openSockets } from "../lib/client.ts";
import { log, ROOT, sleep } from "../lib/env.ts";
import { PROBE_CLIENT, runHttpProbe, type ProbeReply } from "../lib/http-probe.ts";
import { Latency, round, type LatencySummary } from "../lib/stats.ts";
import type { BenchContext } from "../lib/systems.ts";
import { waitFor } from "../lib/wait.ts";
import { d1Bindings } from "../../scripts/local-d1.mjs";

export interface HistoryResult {
  messages: number;
  hotTail: number;
  fillSeconds: number;
  fillMessagesPerSecond: number;
  archiveSeconds: number;
  hot: LatencySummary;
  archived: LatencySummary;
  badPages: number;
  /** Which client timed the pages (scenario 6 does not use the harness process for this). */
  client: string;
  /** GC in that client while the pages ran; `requestsOverlapping` timed requests may include a client pause. */
  clientGc: ProbeReply["gc"];
}

interface Page {
  messages: { seq: number }[];
}

export async function runHistory(ctx: BenchContext): Promise<HistoryResult> {
  const p = ctx.params.s6;
  const [owner, other] = [ctx.users[0]!, ctx.users[1]!];
  const id = await createGroup(ctx.edge.url, owner, [owner, other], "s6");
  const [ws] = await openSockets([conversationWsUrl(ctx.edge.wsUrl, id, owner.token)], 1);
  let acked = 0;
  let sent = 0;
  const window = 8 * p.batchSize;
  const pump = () => {
    while (sent < p.messages && sent - acked < window) {
      const n = Math.min(p.batchSize, p.messages - sent);
      const messages = Array.from({ length: n }, (_, k) => ({ clientMsgId: `h-${sent + k}`, body: `history message ${sent + k} `.padEnd(ctx.params.bodyBytes, "x") }));
      sent += n;
      ws!.send(JSON.stringify({ type: "send_batch", messages }));
    }
  };
  ws!.onFrame = (data) => {
    if (frameType(data) === "ack") {
      acked++;
      pump();
    }
  };
  const t0 = performance.now();
  pump();
  await waitFor(() => acked >= p.messages, 600_000, "history fill");
  const fillSeconds = (performance.now() - t0) / 1000;
  await closeAll([ws!]);
  log(`s6: filled ${p.messages} in ${round(fillSeconds, 1)} s; waiting for the archive`);

  // The archive runs from the object's alarm; watch D1 directly (whichever shard the conversation uses) until it holds every message.
  // (A build of an older commit may bind fewer databases than this tree's wrangler.toml.)
  const dbs = (await Promise.all(d1Bindings(ROOT).map((b) => ctx.edge.mf.getD1Database(b).catch(() => null)))).filter((db) => db !== null);
  const t1 = performance.now();
  for (;;) {
    let n = 0;
    for (const db of dbs) n += (await db.prepare("SELECT count(*) AS n FROM messages WHERE conversation_id = ?").bind(id).first<{ n: number }>())?.n ?? 0;
    if (n >= p.messages) break;
    if (performance.now() - t1 > 600_000) throw new Error(`archive stalled at ${n}`);
    await sleep(250);
  }
  // Pruning to the hot tail follows each archive batch (2,000 rows per alarm run).
  await sleep(Math.max(1500, ((p.messages - p.hotTail) / 2000) * 50));
  const archiveSeconds = (performance.now() - t1) / 1000;
  log(`s6: archived in ${round(archiveSeconds, 1)} s`);

  // Time the pages from a lean client in its own process (bench/lib/http-probe.ts), not from this
  // process: by now the harness holds a large heap, and its GC pauses were being recorded as server
  // latency. Same requests as before, in the same order: each iteration one hot-tail page then one
  // random archived page; the first `warmup` iterations are not recorded.
  const path = (q: string) => `/v1/conversations/${id}/messages?${q}`;
  const coldTop = p.messages - p.hotTail - 100;
  const plan: { path: string; lat: "hot" | "archived" | null; expectFirst: number }[] = [];
  for (let i = 0; i < p.warmup + p.requests; i++) {
    const warm = i < p.warmup;
    plan.push({ path: path("limit=50"), lat: warm ? null : "hot", expectFirst: p.messages - 49 });
    const before = 51 + Math.floor(Math.random() * (coldTop - 51));
    plan.push({ path: path(`before=${before}&limit=50`), lat: warm ? null : "archived", expectFirst: before - 50 });
  }
  const url = new URL(ctx.edge.url);
  const reply = await runHttpProbe({ host: url.hostname, port: Number(url.port), token: other.token, requests: plan.map((r) => ({ path: r.path })), timeoutMs: 60_000 });
  if (reply.error) throw new Error(`history probe: ${reply.error}`);
  if (reply.latencyNs.length !== plan.length) throw new Error(`history probe answered ${reply.latencyNs.length} of ${plan.length} requests`);

  const hot = new Latency();
  const archived = new Latency();
  let badPages = 0;
  plan.forEach((r, i) => {
    if (r.lat) (r.lat === "hot" ? hot : archived).record(reply.latencyNs[i]! / 1e6);
    const seqs = reply.seqs[i]!;
    const ok = reply.status[i]! < 300 && seqs.length === 50 && seqs.every((s2, k) => k === 0 || s2 === seqs[k - 1]! + 1) && seqs[0] === r.expectFirst;
    if (!ok) badPages++;
  });
  const result: HistoryResult = {
    messages: p.messages,
    hotTail: p.hotTail,
    fillSeconds: round(fillSeconds, 2),
    fillMessagesPerSecond: round(p.messages / fillSeconds, 0),
    archiveSeconds: round(archiveSeconds, 1),
    hot: hot.summary(),
    archived: archived.summary(),
    badPages,
    client: PROBE_CLIENT,
    clientGc: reply.gc,
  };
  log(`s6: hot p99 ${result.hot.p99} ms, archived p99 ${result.archived.p99} ms, bad pages ${badPages}; client GCs ${reply.gc.count} (${reply.gc.totalMs} ms), overlapping ${reply.gc.requestsOverlapping} requests`);
  return result;
}
