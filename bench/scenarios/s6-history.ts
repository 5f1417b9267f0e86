// Scenario 6: history pages from every tier (docs/architecture.md 3.2; issue 14).
//
// Part 1, on the main runtime: fill one conversation over a socket (send_batch) so that all three tiers hold
// rows (the runtime's HOT_TAIL_MESSAGES / WARM_MESSAGES / SEGMENT_MESSAGES come from params.s6), wait until
// the archive job (the object's alarm) has put them in place, verified in D1 and R2, then time 50-message
// pages of each kind from a lean client in its own process: the newest page, a random hot range, a random
// warm range, a random cold range, and a page straddling each boundary. Every page's content is checked
// (contiguous seqs, the expected first seq, and a digest of seq, sender, idempotency key and body of every
// message), so a wrong page is never timed as a fast one.
//
// Part 2: a cold-tier page from a conversation of params.s6.large.messages (1,000,000 in the full run), on a
// fresh runtime of its own (full, quick): filled by real sends through the server, moved to R2 by the archive
// job for real (nothing is written into storage behind the server's back). Reported: fill time, time for the
// tiers to settle, segments and bytes in R2, and page latency at the start, middle and end of the cold tier,
// for a segment not in the object's memory (each page a new segment) and for the same page again.
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { closeAll, conversationWsUrl, createGroup, createUsers, frameType, openSockets, type BenchUser } from "../lib/client.ts";
import { cpuMeter, type CpuWindow } from "../lib/cpu.ts";
import { log, ROOT, sleep } from "../lib/env.ts";
import { PROBE_CLIENT, pageDigest, pageLine, runHttpProbe, type ProbeReply } from "../lib/http-probe.ts";
import { Latency, round, type LatencySummary } from "../lib/stats.ts";
import type { BenchContext } from "../lib/systems.ts";
import { waitFor } from "../lib/wait.ts";
import { startEdgechat, type RuntimeServer } from "../lib/workerd.ts";
import { d1Bindings } from "../../scripts/local-d1.mjs";

const PAGE = 50;

/** The kinds of page timed in part 1, in the order each round requests them. */
export const PAGE_KINDS = ["newest", "hot", "hotWarm", "warm", "warmCold", "cold"] as const;
export type PageKind = (typeof PAGE_KINDS)[number];

export const PAGE_KIND_LABELS: Record<PageKind, string> = {
  newest: "newest page (hot)",
  hot: "hot range (object SQLite)",
  hotWarm: "straddles the hot/warm boundary",
  warm: "warm range (D1 shard)",
  warmCold: "straddles the warm/cold boundary",
  cold: "cold range (R2 segment)",
};

/** Where each tier starts and ends (seqs, inclusive) once the archive job has settled. */
export interface TierLayout {
  cold: [number, number];
  warm: [number, number];
  hot: [number, number];
}

/** What D1 and R2 held for the conversation when the tiers were found in place. */
export interface TierObservation {
  /** The D1 binding holding the conversation's warm rows (its shard). */
  d1Binding: string | null;
  /** Rows in D1: the warm tier plus the hot tail's copies (archived, not yet cold). */
  d1Rows: number;
  d1MinSeq: number | null;
  d1MaxSeq: number | null;
  segments: number;
  segmentBytes: number;
  /** First seq of the first and last segment, and the last seq the segment keys imply. */
  segmentFirstSeqs: [number, number] | null;
  /** Rows in the object's hot tail, read from its SQLite file (read only); null when that file could not be read. */
  hotRows: number | null;
  hotMinSeq: number | null;
}

/** Progress of the archive job, sampled from the start of the fill until the tiers were in place. */
export interface SettleSample {
  /** Seconds after the last ack (negative: before it, while the fill ran), at the end of the look. */
  t: number;
  /** Messages acked so far. */
  acked: number;
  d1MaxSeq: number;
  d1MinSeq: number;
  segments: number;
  /** How long this look (D1 min/max, R2 listing of new keys) took. */
  lookMs: number;
}

export interface ConversationFill {
  messages: number;
  fillSeconds: number;
  fillMessagesPerSecond: number;
  /** The harness's event-loop delay during the fill (ms): the sender and the tier watcher share that loop. */
  fillLoopDelay: { p99: number; max: number } | null;
  /** From the last ack until D1 and R2 held exactly the expected layout. */
  settleSeconds: number;
  /** From the last ack until every row was in D1 (the archive's step 1 done). */
  archivedAfterSeconds: number | null;
  /** From the last ack until the last segment was in R2. */
  lastSegmentAfterSeconds: number | null;
  /** The last look before the last ack: how far the archive job had come as the fill ended. */
  atFillEnd: SettleSample | null;
  /** How far the archive job trailed the sends during the fill (over the looks): acked messages not yet in D1, and segments not yet in R2 that WARM_MESSAGES already allowed. */
  lagDuringFill: { maxUnarchived: number; maxSegmentsBehind: number; looks: number };
  /** The archive job's progress from the start of the fill (thinned), looked at every `lookEveryMs`: the settle times are that exact. */
  timeline: SettleSample[];
  lookEveryMs: number;
  layout: TierLayout;
  observed: TierObservation;
  serverVars: Record<string, string>;
}

export interface PositionPages {
  /** The segment range the pages came from (0-based segment numbers) and the seqs they cover. */
  segments: [number, number];
  seqs: [number, number];
  /** Each page from a segment not read before: the object fetches it from R2 and decodes it. */
  uncached: LatencySummary;
  /** The same page again right after: the decoded segment is in the object's memory. */
  cached: LatencySummary;
}

export interface LargeHistoryResult extends ConversationFill {
  ownRuntime: boolean;
  segmentMessages: number;
  /** Machine load from the start of the fill until the tiers were in place, and while the pages were timed. */
  fillCpu: CpuWindow;
  pagesCpu: CpuWindow;
  positions: Record<"start" | "middle" | "end", PositionPages>;
  badPages: number;
  badSamples: string[];
  clientGc: ProbeReply["gc"];
}

export interface HistoryResult extends ConversationFill {
  hotTail: number;
  warmMessages: number;
  segmentMessages: number;
  pages: Record<PageKind, LatencySummary>;
  /** Machine load while the pages were timed (the scenario's own `cpu` also covers the fills and part 2). */
  pagesCpu: CpuWindow;
  /** Timed cold-range pages whose segment should have been in the object's memory (4 most recently read), per a replay of the request order. */
  coldPagesInMemory: { pages: number; of: number };
  /** Seconds spent waiting for the rest of the runtime's archive work (other scenarios' conversations) to go quiet; null if it did not within the limit. */
  quietAfterSeconds: number | null;
  badPages: number;
  /** A few malformed pages, for the report (kind, expected first seq, what came back). */
  badSamples: string[];
  /** Which client timed the pages (scenario 6 does not use the harness process for this). */
  client: string;
  /** GC in that client while the pages ran; `requestsOverlapping` timed requests may include a client pause. */
  clientGc: ProbeReply["gc"];
  /** The cold page from a large conversation (1,000,000 messages in the full run). */
  large?: LargeHistoryResult;
  largeError?: string;
}

/** Seq s of a filled conversation carries this body and idempotency key (s = 1, 2, ...). */
const clientMsgIdOf = (tag: string, seq: number) => `${tag}-${seq - 1}`;
/** Words the bodies are made of: text that gzip compresses about as much as chat text does, unlike padding. */
const WORDS = (
  "the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we " +
  "when your can said there use an each which she do how their if will up other about out many then them these so some her would make " +
  "like him into time has look two more write go see number no way could people my than first water been call who its now find long " +
  "down day did get come made may part ok yes lunch tomorrow meeting sounds good thanks see you later great idea"
).split(" ");

/**
 * The body of message `seq` (bodyBytes long): its tag and index, then words picked by a small PRNG seeded with the
 * seq, so the content check can recompute it, and the R2 segments compress like text (the bytes in R2 are reported).
 */
export function bodyOf(tag: string, seq: number, bodyBytes: number): string {
  let x = Math.imul(seq, 2654435761) >>> 0 || 1;
  let s = `${tag}${seq - 1}`;
  while (s.length < bodyBytes) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    s += ` ${WORDS[x % WORDS.length]}`;
  }
  return s.slice(0, bodyBytes);
}

/** Tiers once settled: cold holds whole segments up to lastSeq - warmMessages, hot the newest hotTail. */
export function layoutFor(messages: number, hotTail: number, warmMessages: number, segmentMessages: number): TierLayout {
  const coldTop = Math.floor((messages - warmMessages) / segmentMessages) * segmentMessages;
  const hotLo = messages - hotTail + 1;
  return { cold: [1, coldTop], warm: [coldTop + 1, hotLo - 1], hot: [hotLo, messages] };
}

/** Every tier must hold at least a page (and so each boundary a straddling page). */
function checkLayout(l: TierLayout, label: string): void {
  const size = (r: [number, number]) => r[1] - r[0] + 1;
  if (size(l.cold) < PAGE || size(l.warm) < PAGE || size(l.hot) < PAGE) throw new Error(`${label} parameters leave a tier smaller than a page: ${JSON.stringify(l)}`);
}

/**
 * Which cold pages should find their segment in the object's memory: segments.ts keeps the last SEGMENT_CACHE
 * (4) decoded segments, least recently used out. Replays the request order against that rule (an estimate from
 * outside: it assumes nothing else read segments meanwhile). Returns, per request, whether every segment it
 * needed was in memory (null for pages that need none).
 */
function simulateSegmentCache(plan: Planned[], coldTop: number, segmentMessages: number, size = 4): (boolean | null)[] {
  const lru: number[] = [];
  return plan.map((r) => {
    const hi = Math.min(r.lo + PAGE - 1, coldTop);
    if (r.lo > hi) return null;
    let all = true;
    for (let seg = Math.floor((r.lo - 1) / segmentMessages); seg <= Math.floor((hi - 1) / segmentMessages); seg++) {
      const at = lru.indexOf(seg);
      if (at < 0) all = false;
      else lru.splice(at, 1);
      lru.push(seg);
      if (lru.length > size) lru.shift();
    }
    return all;
  });
}

/** Send `n` messages over one socket (send_batch, 8 batches in flight) and wait for every ack. */
async function fill(edge: RuntimeServer, owner: BenchUser, id: string, n: number, batchSize: number, tag: string, bodyBytes: number, state: FillState): Promise<number> {
  const [ws] = await openSockets([conversationWsUrl(edge.wsUrl, id, owner.token)], 1);
  let acked = 0;
  let sent = 0;
  const window = 8 * batchSize;
  const pump = () => {
    while (sent < n && sent - acked < window) {
      const k = Math.min(batchSize, n - sent);
      const messages = Array.from({ length: k }, (_, j) => ({ clientMsgId: clientMsgIdOf(tag, sent + j + 1), body: bodyOf(tag, sent + j + 1, bodyBytes) }));
      sent += k;
      ws!.send(JSON.stringify({ type: "send_batch", messages }));
    }
  };
  ws!.onFrame = (data) => {
    if (frameType(data) === "ack") {
      acked++;
      state.acked = acked;
      pump();
    }
  };
  const t0 = performance.now();
  state.start = t0;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  pump();
  try {
    await waitFor(() => acked >= n, 3_600_000, `fill of ${n} messages`);
  } finally {
    delay.disable();
  }
  state.end = performance.now();
  state.loopDelay = { p99: round(delay.percentile(99) / 1e6, 1), max: round(delay.max / 1e6, 1) };
  const seconds = (state.end - t0) / 1000;
  await closeAll([ws!]);
  return seconds;
}

interface D1 {
  binding: string;
  db: Awaited<ReturnType<RuntimeServer["mf"]["getD1Database"]>>;
}
type Bucket = Awaited<ReturnType<RuntimeServer["mf"]["getR2Bucket"]>>;

async function storage(edge: RuntimeServer): Promise<{ dbs: D1[]; bucket: Bucket }> {
  // (A build of an older commit may bind fewer databases than this tree's wrangler.toml.)
  const dbs = (await Promise.all(d1Bindings(ROOT).map(async (binding) => ({ binding, db: await edge.mf.getD1Database(binding).catch(() => null) })))).filter((d): d is D1 => d.db !== null);
  const bucket = await edge.mf.getR2Bucket("HISTORY").catch(() => null);
  if (!bucket) throw new Error("this build has no HISTORY bucket (no cold tier): scenario 6 needs the three-tier history");
  return { dbs, bucket };
}

/**
 * Min and max seq of the conversation's rows in D1, over every bound database (cheap: index lookups). The
 * statements are prepared once: through Miniflare's proxy, prepare() and bind() are round trips to the runtime
 * that block this process until answered, and this runs while the fill's socket is being fed.
 */
function d1Ranger(dbs: D1[], id: string): () => Promise<{ binding: string | null; min: number; max: number }> {
  const stmts = dbs.map((d) => ({ binding: d.binding, stmt: d.db.prepare("SELECT min(seq) AS lo, max(seq) AS hi FROM messages WHERE conversation_id = ?").bind(id) }));
  return async () => {
    let min = 0;
    let max = 0;
    let binding: string | null = null;
    for (const d of stmts) {
      const r = await d.stmt.first<{ lo: number | null; hi: number | null }>();
      if (r?.hi) {
        binding = binding ?? d.binding;
        min = min === 0 ? r.lo! : Math.min(min, r.lo!);
        max = Math.max(max, r.hi);
      }
    }
    return { binding, min, max };
  };
}

/**
 * Segment objects of one conversation in R2 with their sizes (the final check). Through Miniflare's proxy every
 * property of a listed object is a blocking round trip to the runtime (~4 ms each here), so this is only done
 * once, after the tiers are in place and before anything is timed.
 */
async function listSegments(bucket: Bucket, id: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await bucket.list({ prefix: `h/${id}/`, limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const o of page.objects) out.push({ key: o.key, size: o.size });
    if (!page.truncated) return out;
    cursor = (page as { cursor?: string }).cursor;
  }
}

/**
 * First seqs of the conversation's segments in R2 after `after` (a first seq; 0 for all), cheaply: listed with
 * "." as the delimiter, each segment key (h/<id>/<first seq>.v<n>.ndjson.gz) comes back as a plain string
 * prefix, with no per-object round trip (see listSegments).
 */
async function segmentFirstSeqs(bucket: Bucket, id: string, after: number): Promise<number[]> {
  const out: number[] = [];
  const prefix = `h/${id}/`;
  let cursor: string | undefined;
  // "~" sorts after ".v1.ndjson.gz", so every version of the segment at `after` is skipped too.
  const startAfter = after > 0 ? `${prefix}${String(after).padStart(12, "0")}.~` : undefined;
  for (;;) {
    const page = await bucket.list({ prefix, delimiter: ".", limit: 1000, ...(cursor ? { cursor } : startAfter ? { startAfter } : {}) });
    for (const p of page.delimitedPrefixes) out.push(Number(p.slice(prefix.length, -1)));
    if (!page.truncated) return out;
    cursor = (page as { cursor?: string }).cursor;
  }
}

const firstSeqOfKey = (key: string) => Number(/\/(\d+)\.v\d+\.ndjson\.gz$/.exec(key)?.[1] ?? NaN);

/**
 * Rows of the conversation's hot tail, read from the object's SQLite file with python3's sqlite3 in read-only
 * mode (the harness cannot call the object's RPC). Only a check that pruning happened; null if unavailable.
 */
async function hotTail(edge: RuntimeServer, id: string): Promise<{ rows: number; min: number | null } | null> {
  if (!edge.persist) return null;
  try {
    const ns = await edge.mf.getDurableObjectNamespace("CONVERSATIONS");
    const hex = ns.idFromName(id).toString();
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const { readdirSync } = await import("node:fs");
    const { join } = await import("node:path");
    const doDir = join(edge.persist, "v3", "do");
    const dir = readdirSync(doDir).find((d) => d.endsWith("ConversationObject"));
    if (!dir) return null;
    const file = join(doDir, dir, `${hex}.sqlite`);
    const py = "import sqlite3,sys,json\nc=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True,timeout=5)\nr=c.execute('SELECT count(*), min(seq) FROM messages').fetchone()\nprint(json.dumps(r))";
    const { stdout } = await promisify(execFile)("python3", ["-c", py, file], { encoding: "utf8", timeout: 15_000 });
    const [rows, min] = JSON.parse(stdout) as [number, number | null];
    return { rows, min };
  } catch (err) {
    log(`s6: could not read the hot tail from the object's SQLite file (${err instanceof Error ? err.message.split("\n")[0] : String(err)})`);
    return null;
  }
}

/** The fill as the tier watcher sees it (performance.now() times). */
interface FillState {
  acked: number;
  start: number;
  end: number | null;
  /** The fill failed: the watcher stops. */
  failed?: boolean;
  /** This process's event-loop delay while the fill ran (p99 and max, ms): a stalled sender fills slower. */
  loopDelay?: { p99: number; max: number };
}

/** Fill while watching the tiers; the watcher's result once they are in place. */
async function fillAndWatch(fillFn: () => Promise<number>, watch: () => Promise<Awaited<ReturnType<typeof watchTiers>>>, state: FillState): Promise<[number, Awaited<ReturnType<typeof watchTiers>>]> {
  const watching = watch();
  watching.catch(() => {}); // awaited below; a failure while the fill runs must not go unhandled meanwhile
  let seconds: number;
  try {
    seconds = await fillFn();
  } catch (err) {
    state.failed = true;
    throw err;
  }
  return [seconds, await watching];
}

/**
 * Watch D1 and R2 from the start of the fill until they hold exactly `layout` for conversation `id`: D1 min
 * seq = first warm seq, max = last seq, R2 = one segment per SEGMENT_MESSAGES of the cold range with
 * contiguous first seqs. Looks cheaply (D1 min/max, R2 listed incrementally from the last key seen) so the
 * watching costs the runtime little; each look's time is kept (it bounds how exact the settle time is).
 */
async function watchTiers(edge: RuntimeServer, id: string, layout: TierLayout, warmMessages: number, segmentMessages: number, fill: FillState, intervalMs: number, timeoutMs: number, label: string): Promise<{ observed: TierObservation; archivedAfterSeconds: number | null; lastSegmentAfterSeconds: number | null; settleSeconds: number; atFillEnd: SettleSample | null; lagDuringFill: ConversationFill["lagDuringFill"]; samples: SettleSample[] }> {
  const { dbs, bucket } = await storage(edge);
  const d1Range = d1Ranger(dbs, id);
  const wantSegments = layout.cold[1] / segmentMessages;
  const segs: number[] = [];
  const samples: SettleSample[] = [];
  let archivedAt: number | null = null;
  let lastSegmentAt: number | null = null;
  let lastLog = performance.now();
  let settleSeconds = 0;
  const lookEnds: number[] = [];
  for (;;) {
    if (fill.failed) throw new Error(`${label}: the fill failed`);
    const before = performance.now();
    const d = await d1Range();
    segs.push(...(await segmentFirstSeqs(bucket, id, segs[segs.length - 1] ?? 0)));
    const now = performance.now();
    // Seconds since the last ack, at the end of the look (looks made while the fill ran get theirs below,
    // negative, once its end is known).
    const t = round((now - (fill.end ?? now)) / 1000, 2);
    const sample: SettleSample = { t, acked: fill.acked, d1MaxSeq: d.max, d1MinSeq: d.min, segments: segs.length, lookMs: round(now - before, 1) };
    samples.push(sample);
    lookEnds.push(now);
    if (fill.end !== null && archivedAt === null && d.max >= layout.hot[1]) archivedAt = t;
    if (fill.end !== null && lastSegmentAt === null && segs.length >= wantSegments) lastSegmentAt = t;
    if (fill.end !== null && d.max === layout.hot[1] && d.min === layout.warm[0] && segs.length === wantSegments) {
      settleSeconds = t;
      break;
    }
    if (segs.length > wantSegments) throw new Error(`${label}: R2 holds ${segs.length} segments, expected ${wantSegments}`);
    if (fill.end !== null && now - fill.end > timeoutMs)
      throw new Error(`${label}: tiers not in place ${round(timeoutMs / 1000, 0)} s after the fill: D1 seqs ${d.min}-${d.max} (want ${layout.warm[0]}-${layout.hot[1]}), ${segs.length}/${wantSegments} segments in R2`);
    if (now - lastLog > 20_000) {
      lastLog = now;
      log(`${label}: ${fill.acked.toLocaleString("en-US")} acked; D1 seqs ${d.min}-${d.max}, ${segs.length}/${wantSegments} segments in R2 (look took ${sample.lookMs} ms)`);
    }
    await sleep(intervalMs);
  }
  samples.forEach((x, i) => (x.t = round((lookEnds[i]! - fill.end!) / 1000, 2)));
  const during = samples.filter((x) => x.t <= 0);
  const atFillEnd = during[during.length - 1] ?? null;
  const lagDuringFill = {
    maxUnarchived: Math.max(0, ...during.map((x) => x.acked - x.d1MaxSeq)),
    maxSegmentsBehind: Math.max(0, ...during.map((x) => Math.floor(Math.max(0, x.acked - warmMessages) / segmentMessages) - x.segments)),
    looks: during.length,
  };
  // Final look: every segment listed again, counted rows in D1, and the hot tail from the object's file.
  const all = await listSegments(bucket, id);
  const firsts = all.map((s) => firstSeqOfKey(s.key));
  const contiguous = firsts.every((f, i) => f === 1 + i * segmentMessages);
  if (all.length !== wantSegments || !contiguous) throw new Error(`${label}: R2 segments do not tile 1-${layout.cold[1]} in ${segmentMessages}s (${all.length} objects, first seqs ${firsts.slice(0, 5).join(",")}...)`);
  const d = await d1Range();
  const shard = dbs.find((x) => x.binding === d.binding);
  const count = shard ? ((await shard.db.prepare("SELECT count(*) AS n FROM messages WHERE conversation_id = ?").bind(id).first<{ n: number }>())?.n ?? 0) : 0;
  if (count !== layout.hot[1] - layout.warm[0] + 1) throw new Error(`${label}: D1 holds ${count} rows, expected ${layout.hot[1] - layout.warm[0] + 1} (seqs ${layout.warm[0]}-${layout.hot[1]})`);
  const hot = await hotTail(edge, id);
  if (hot && (hot.rows !== layout.hot[1] - layout.hot[0] + 1 || hot.min !== layout.hot[0]))
    throw new Error(`${label}: the object's hot tail holds ${hot.rows} rows from seq ${hot.min}, expected ${layout.hot[1] - layout.hot[0] + 1} from ${layout.hot[0]}`);
  return {
    observed: {
      d1Binding: d.binding,
      d1Rows: count,
      d1MinSeq: d.min,
      d1MaxSeq: d.max,
      segments: all.length,
      segmentBytes: all.reduce((a, s) => a + s.size, 0),
      segmentFirstSeqs: firsts.length ? [firsts[0]!, firsts[firsts.length - 1]!] : null,
      hotRows: hot?.rows ?? null,
      hotMinSeq: hot?.min ?? null,
    },
    archivedAfterSeconds: archivedAt,
    lastSegmentAfterSeconds: lastSegmentAt,
    settleSeconds,
    atFillEnd,
    lagDuringFill,
    samples,
  };
}

/**
 * Wait until no conversation of the runtime is archiving (rows in every D1 database and objects in R2
 * unchanged for two looks a second apart), so other scenarios' archive jobs do not run during the timed
 * pages. Returns the seconds waited, or null if it was still busy after `limitMs` (then the pages run anyway).
 */
async function waitQuiet(edge: RuntimeServer, limitMs: number): Promise<number | null> {
  const { dbs, bucket } = await storage(edge);
  const t0 = performance.now();
  const look = async () => {
    let rows = 0;
    for (const d of dbs) rows += (await d.db.prepare("SELECT count(*) AS n FROM messages").first<{ n: number }>())?.n ?? 0;
    let objects = 0;
    let cursor: string | undefined;
    for (;;) {
      const page = await bucket.list({ limit: 1000, ...(cursor ? { cursor } : {}) });
      objects += page.objects.length;
      if (!page.truncated) break;
      cursor = (page as { cursor?: string }).cursor;
    }
    return `${rows}/${objects}`;
  };
  let prev = await look();
  let same = 0;
  while (performance.now() - t0 < limitMs) {
    await sleep(1000);
    const now = await look();
    same = now === prev ? same + 1 : 0;
    prev = now;
    if (same >= 2) return round((performance.now() - t0) / 1000, 1);
  }
  return null;
}

interface Planned {
  path: string;
  kind: string | null;
  lo: number;
}

/** Check every answered page against what was sent; returns the number of bad pages and a few samples. */
function checkPages(plan: Planned[], reply: ProbeReply, sender: string, tag: string, bodyBytes: number): { bad: number; samples: string[] } {
  let bad = 0;
  const samples: string[] = [];
  plan.forEach((r, i) => {
    const seqs = reply.seqs[i]!;
    const lines: string[] = [];
    for (let s = r.lo; s < r.lo + PAGE; s++) lines.push(pageLine({ seq: s, senderId: sender, clientMsgId: clientMsgIdOf(tag, s), body: bodyOf(tag, s, bodyBytes) }));
    const ok = reply.status[i]! < 300 && seqs.length === PAGE && seqs.every((s, k) => s === r.lo + k) && reply.digests[i] === pageDigest(lines);
    if (!ok) {
      bad++;
      if (samples.length < 5) samples.push(`${r.kind ?? "warm-up"} ${r.path}: status ${reply.status[i]}, ${seqs.length} messages, seqs ${seqs[0]}..${seqs[seqs.length - 1]} (want ${r.lo}..${r.lo + PAGE - 1})${seqs.length === PAGE && seqs[0] === r.lo ? ", content differs" : ""}`);
    }
  });
  return { bad, samples };
}

const randInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

export async function runHistory(ctx: BenchContext): Promise<HistoryResult> {
  const p = ctx.params.s6;
  const [owner, other] = [ctx.users[0]!, ctx.users[1]!];
  const tag = "t";
  const layout = layoutFor(p.messages, p.hotTail, p.warmMessages, p.segmentMessages);
  checkLayout(layout, "s6");
  const id = await createGroup(ctx.edge.url, owner, [owner, other], "s6");
  log(`s6: filling ${p.messages} messages; the tiers will be cold 1-${layout.cold[1]}, warm ${layout.warm[0]}-${layout.warm[1]}, hot ${layout.hot[0]}-${layout.hot[1]}`);
  const state: FillState = { acked: 0, start: performance.now(), end: null };
  const [fillSeconds, settled] = await fillAndWatch(
    () => fill(ctx.edge, owner, id, p.messages, p.batchSize, tag, ctx.params.bodyBytes, state),
    () => watchTiers(ctx.edge, id, layout, p.warmMessages, p.segmentMessages, state, 250, 600_000, "s6"),
    state,
  );
  log(`s6: filled in ${round(fillSeconds, 1)} s; tiers in place ${settled.settleSeconds} s after the fill: ${JSON.stringify(settled.observed)}`);
  // Other scenarios' conversations on this runtime may still be archiving (scenario 2's are large).
  const quietAfterSeconds = await waitQuiet(ctx.edge, 120_000);
  log(`s6: runtime's archive work ${quietAfterSeconds === null ? "still busy after 120 s; timing anyway" : `quiet after ${quietAfterSeconds} s`}`);

  // Time the pages from a lean client in its own process (bench/lib/http-probe.ts), not from this process:
  // by now the harness holds a large heap, and its GC pauses were being recorded as server latency. Each
  // round requests one page of every kind, in PAGE_KINDS order, each at a random place in its range; the
  // first `warmup` rounds are not recorded.
  const path = (before: number | null) => `/v1/conversations/${id}/messages?${before === null ? "" : `before=${before}&`}limit=${PAGE}`;
  const [hotLo, last] = layout.hot;
  const warmLo = layout.warm[0];
  const loOf: Record<PageKind, () => number> = {
    newest: () => last - PAGE + 1,
    hot: () => randInt(hotLo, last - PAGE + 1),
    hotWarm: () => randInt(hotLo - PAGE + 1, hotLo - 1),
    warm: () => randInt(warmLo, hotLo - PAGE),
    warmCold: () => randInt(warmLo - PAGE + 1, warmLo - 1),
    cold: () => randInt(1, warmLo - PAGE),
  };
  const plan: Planned[] = [];
  for (let i = 0; i < p.warmup + p.requests; i++)
    for (const kind of PAGE_KINDS) {
      const lo = loOf[kind]();
      plan.push({ path: path(kind === "newest" ? null : lo + PAGE), kind: i < p.warmup ? null : kind, lo });
    }
  const url = new URL(ctx.edge.url);
  const pagesMeter = cpuMeter();
  const reply = await runHttpProbe({ host: url.hostname, port: Number(url.port), token: other.token, requests: plan.map((r) => ({ path: r.path })), timeoutMs: 60_000 });
  const pagesCpu = pagesMeter();
  if (reply.error) throw new Error(`history probe: ${reply.error}`);
  if (reply.latencyNs.length !== plan.length) throw new Error(`history probe answered ${reply.latencyNs.length} of ${plan.length} requests`);

  const lat = Object.fromEntries(PAGE_KINDS.map((k) => [k, new Latency()])) as Record<PageKind, Latency>;
  plan.forEach((r, i) => {
    if (r.kind) lat[r.kind as PageKind].record(reply.latencyNs[i]! / 1e6);
  });
  const checked = checkPages(plan, reply, owner.id, tag, ctx.params.bodyBytes);
  // The archive job remembers the segments it wrote last: the newest 4 are in memory when the pages start.
  const warmStart: Planned[] = Array.from({ length: 4 }, (_, i) => ({ path: "", kind: null, lo: layout.cold[1] - (4 - i) * p.segmentMessages + 1 }));
  const inMemory = simulateSegmentCache([...warmStart, ...plan], layout.cold[1], p.segmentMessages).slice(warmStart.length);
  const coldTimed = plan.map((r, i) => [r, inMemory[i]] as const).filter(([r]) => r.kind === "cold");
  const coldInMemory = coldTimed.filter(([, hit]) => hit).length;
  const pages = Object.fromEntries(PAGE_KINDS.map((k) => [k, lat[k].summary()])) as Record<PageKind, LatencySummary>;
  log(`s6: p99 ${PAGE_KINDS.map((k) => `${k} ${pages[k].p99}`).join(", ")} ms; bad pages ${checked.bad}; client GCs ${reply.gc.count} (${reply.gc.totalMs} ms), overlapping ${reply.gc.requestsOverlapping} requests`);
  const result: HistoryResult = {
    ...conversationFill({ messages: p.messages, fillSeconds, digits: 2, loopDelay: state.loopDelay, settled, timelineMax: 60, lookEveryMs: 250, layout, serverVars: ctx.params.serverVars }),
    hotTail: p.hotTail,
    warmMessages: p.warmMessages,
    segmentMessages: p.segmentMessages,
    quietAfterSeconds,
    pagesCpu,
    pages,
    coldPagesInMemory: { pages: coldInMemory, of: coldTimed.length },
    badPages: checked.bad,
    badSamples: checked.samples,
    client: PROBE_CLIENT,
    clientGc: reply.gc,
  };

  // Part 2: the large conversation.
  try {
    result.large = await runLarge(ctx);
  } catch (err) {
    result.largeError = err instanceof Error ? err.message : String(err);
    log(`s6 large: failed: ${result.largeError}`);
  }
  return result;
}

/** The ConversationFill part of a result: the fill, and how the archive job followed it until the tiers were in place. */
function conversationFill(o: {
  messages: number;
  fillSeconds: number;
  /** Decimals of fillSeconds in the report. */
  digits: number;
  loopDelay: ConversationFill["fillLoopDelay"] | undefined;
  settled: Awaited<ReturnType<typeof watchTiers>>;
  timelineMax: number;
  lookEveryMs: number;
  layout: TierLayout;
  serverVars: Record<string, string>;
}): ConversationFill {
  const { settled } = o;
  return {
    messages: o.messages,
    fillSeconds: round(o.fillSeconds, o.digits),
    fillMessagesPerSecond: round(o.messages / o.fillSeconds, 0),
    fillLoopDelay: o.loopDelay ?? null,
    settleSeconds: settled.settleSeconds,
    archivedAfterSeconds: settled.archivedAfterSeconds,
    lastSegmentAfterSeconds: settled.lastSegmentAfterSeconds,
    atFillEnd: settled.atFillEnd,
    lagDuringFill: settled.lagDuringFill,
    timeline: thin(settled.samples, o.timelineMax),
    lookEveryMs: o.lookEveryMs,
    layout: o.layout,
    observed: settled.observed,
    serverVars: pick(o.serverVars),
  };
}

/** At most `max` samples, evenly spaced, always with the last. */
function thin<T>(xs: T[], max: number): T[] {
  if (xs.length <= max) return xs;
  const step = xs.length / max;
  const out = Array.from({ length: max - 1 }, (_, i) => xs[Math.floor(i * step)]!);
  out.push(xs[xs.length - 1]!);
  return out;
}

const TIER_VARS = ["HOT_TAIL_MESSAGES", "HOT_TAIL_DAYS", "WARM_MESSAGES", "WARM_DAYS", "SEGMENT_MESSAGES"];
const pick = (vars: Record<string, string>) => Object.fromEntries(TIER_VARS.filter((k) => k in vars).map((k) => [k, vars[k]!]));

async function runLarge(ctx: BenchContext): Promise<LargeHistoryResult> {
  const q = ctx.params.s6.large;
  const vars = q.ownRuntime
    ? { ...ctx.params.serverVars, HOT_TAIL_MESSAGES: String(q.hotTail), WARM_MESSAGES: String(q.warmMessages), SEGMENT_MESSAGES: String(q.segmentMessages) }
    : ctx.params.serverVars;
  const layout = layoutFor(q.messages, q.hotTail, q.warmMessages, q.segmentMessages);
  checkLayout(layout, "s6 large");
  const coldSegments = layout.cold[1] / q.segmentMessages;
  const n = q.pagesPerPosition;
  if (coldSegments < 3 * n || q.segmentMessages < PAGE) throw new Error(`s6 large: ${coldSegments} cold segments cannot hold 3 x ${n} distinct segments of >= ${PAGE} rows`);
  const edge = q.ownRuntime ? await startEdgechat({ bundle: ctx.bundle, vars }) : ctx.edge;
  try {
    const [owner, other] = q.ownRuntime ? await createUsers(edge.url, 2, "s6large") : [ctx.users[0]!, ctx.users[1]!];
    const id = await createGroup(edge.url, owner!, [owner!, other!], "s6 large");
    const tag = "L";
    log(`s6 large: filling ${q.messages.toLocaleString("en-US")} messages${q.ownRuntime ? ` on a fresh runtime (pid ${edge.pid})` : " on the main runtime"}; tiers will be cold 1-${layout.cold[1]} (${coldSegments} segments), warm ${layout.warm[0]}-${layout.warm[1]}, hot ${layout.hot[0]}-${layout.hot[1]}`);
    // The watcher looks at D1 and R2 every second from the start of the fill (it also logs the progress).
    const state: FillState = { acked: 0, start: performance.now(), end: null };
    const fillMeter = cpuMeter();
    const [fillSeconds, settled] = await fillAndWatch(
      async () => {
        const seconds = await fill(edge, owner!, id, q.messages, ctx.params.s6.batchSize, tag, ctx.params.bodyBytes, state);
        log(`s6 large: filled in ${round(seconds, 1)} s (${round(q.messages / seconds, 0)} msg/s); waiting for the archive job`);
        return seconds;
      },
      () => watchTiers(edge, id, layout, q.warmMessages, q.segmentMessages, state, 1000, q.settleTimeoutMs, "s6 large"),
      state,
    );
    const fillCpu = fillMeter();
    log(`s6 large: tiers in place ${settled.settleSeconds} s after the fill: ${JSON.stringify(settled.observed)}`);

    // Pages: for each position, n pages each from a different segment never read (so not in the object's
    // 4-segment memory: it is fetched from R2 and decoded), each followed by the same page again (in memory).
    // Positions interleaved; a few newest pages first warm the route up without touching the cold tier.
    const mid = Math.floor(coldSegments / 2);
    const ranges: Record<"start" | "middle" | "end", [number, number]> = { start: [0, n - 1], middle: [mid - Math.floor(n / 2), mid - Math.floor(n / 2) + n - 1], end: [coldSegments - n, coldSegments - 1] };
    const path = (before: number | null) => `/v1/conversations/${id}/messages?${before === null ? "" : `before=${before}&`}limit=${PAGE}`;
    const plan: Planned[] = [];
    for (let i = 0; i < 20; i++) plan.push({ path: path(null), kind: null, lo: q.messages - PAGE + 1 });
    for (let i = 0; i < n; i++)
      for (const pos of ["start", "middle", "end"] as const) {
        const seg = ranges[pos][0] + i;
        const lo = seg * q.segmentMessages + 1 + randInt(0, q.segmentMessages - PAGE);
        plan.push({ path: path(lo + PAGE), kind: `${pos}:uncached`, lo }, { path: path(lo + PAGE), kind: `${pos}:cached`, lo });
      }
    const url = new URL(edge.url);
    const pagesMeter = cpuMeter();
    const reply = await runHttpProbe({ host: url.hostname, port: Number(url.port), token: other!.token, requests: plan.map((r) => ({ path: r.path })), timeoutMs: 60_000 });
    const pagesCpu = pagesMeter();
    if (reply.error) throw new Error(`large history probe: ${reply.error}`);
    if (reply.latencyNs.length !== plan.length) throw new Error(`large history probe answered ${reply.latencyNs.length} of ${plan.length} requests`);
    const lat = new Map<string, Latency>();
    plan.forEach((r, i) => {
      if (!r.kind) return;
      if (!lat.has(r.kind)) lat.set(r.kind, new Latency());
      lat.get(r.kind)!.record(reply.latencyNs[i]! / 1e6);
    });
    const checked = checkPages(plan, reply, owner!.id, tag, ctx.params.bodyBytes);
    const positions = Object.fromEntries(
      (["start", "middle", "end"] as const).map((pos) => [
        pos,
        {
          segments: ranges[pos],
          seqs: [ranges[pos][0] * q.segmentMessages + 1, (ranges[pos][1] + 1) * q.segmentMessages],
          uncached: lat.get(`${pos}:uncached`)!.summary(),
          cached: lat.get(`${pos}:cached`)!.summary(),
        } satisfies PositionPages,
      ]),
    ) as LargeHistoryResult["positions"];
    log(`s6 large: cold pages p50/p99 uncached ${(["start", "middle", "end"] as const).map((k) => `${k} ${positions[k].uncached.p50}/${positions[k].uncached.p99}`).join(", ")} ms; cached ${(["start", "middle", "end"] as const).map((k) => `${k} ${positions[k].cached.p50}/${positions[k].cached.p99}`).join(", ")} ms; bad pages ${checked.bad}`);
    if (checked.bad) log(`s6 large: bad pages: ${checked.samples.join("; ")}`);
    return {
      ownRuntime: q.ownRuntime,
      ...conversationFill({ messages: q.messages, fillSeconds, digits: 1, loopDelay: state.loopDelay, settled, timelineMax: 80, lookEveryMs: 1000, layout, serverVars: vars }),
      segmentMessages: q.segmentMessages,
      fillCpu,
      pagesCpu,
      positions,
      badPages: checked.bad,
      badSamples: checked.samples,
      clientGc: reply.gc,
    };
  } finally {
    if (q.ownRuntime) await edge.stop();
  }
}
