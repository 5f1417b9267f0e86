// edgechat benchmark harness (issue 6). Starts the real Worker on workerd (via Miniflare, no proxy,
// storage on disk) and two Node `ws` relays in child processes, drives them all from this process,
// and writes bench/results/<date>.{json,md,svg} (+ latest.md for full runs).
//
//   npm run bench            the issue's scenarios at full size, normal then hogged (~25 min on 2 cores)
//   npm run bench:quick      reduced sizes, ~4 minutes
//   tsx bench/run.ts --tiny  proves the harness counts every message (CI; e2e/bench-harness.test.ts)
// Options: --only s1,s3   --out <dir>   --ref <git ref> (bench a committed snapshot, not the working tree)
//          --json (print the results JSON on stdout)
//          --hog: run every selected scenario twice, back to back: normal, then with a child process
//          spinning one core (lib/hog.ts); both are reported with the ratio hog/normal. On by default
//          for the full run (`npm run bench`, no --only); --no-hog turns it off.
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { BENCH_DIR, ROOT, log } from "./lib/env.ts";
import { createUsers } from "./lib/client.ts";
import { paramsFor, type Mode, type Params } from "./lib/params.ts";
import { startRelay, type RelayServer } from "./lib/relays.ts";
import { writeResults } from "./lib/report.ts";
import { cpuMeter, type CpuWindow } from "./lib/cpu.ts";
import { checkMax, checkMin, round, type TargetCheck } from "./lib/stats.ts";
import { SYSTEMS, SYSTEMS_AND_FLOOR, type BenchContext } from "./lib/systems.ts";
import { bundleWorker, startEdgechat, workerdVersion, type RuntimeServer } from "./lib/workerd.ts";
import { runLatency } from "./scenarios/s1-latency.ts";
import { runThroughput, type ThroughputResults } from "./scenarios/s2-throughput.ts";
import { runFanout, type FanoutResult } from "./scenarios/s3-fanout.ts";
import { runSockets, type SocketsResult } from "./scenarios/s4-sockets.ts";
import { runReconnect, type ReconnectResult } from "./scenarios/s5-reconnect.ts";
import { PAGE_KIND_LABELS, runHistory, type HistoryResult } from "./scenarios/s6-history.ts";
import { runInbox, type InboxResult } from "./scenarios/s7-inbox.ts";
import { runNotify, type NotifyResult } from "./scenarios/s8-notify.ts";
import { runAttachments, type AttachmentsResult } from "./scenarios/s9-attachments.ts";
import { compareHog, type HogComparison } from "./lib/compare.ts";
import { healthMeter, type HealthWindow } from "./lib/health.ts";
import { startHog } from "./lib/hog.ts";
import type { PacedResult } from "./scenarios/s1-latency.ts";
import type { SystemName, WithFloor } from "./lib/systems.ts";

export interface Scenarios {
  s1?: WithFloor<PacedResult>;
  s2?: ThroughputResults;
  s3?: Record<string, WithFloor<FanoutResult>>;
  s4?: SocketsResult;
  s5?: ReconnectResult;
  s6?: HistoryResult;
  s7?: InboxResult;
  s8?: NotifyResult;
  s9?: AttachmentsResult;
}

export interface Ratios {
  /** VsBare: against the runtime's floor (lib/systems.ts FLOOR), when it ran. */
  s1?: { p50VsDurable: number; p50VsPlain: number; p99VsDurable: number; p99VsPlain: number; p50VsBare?: number; p99VsBare?: number };
  s2?: { singleVsDurable: number; singleVsPlain: number; batchedVsDurable: number; batchedVsPlain: number };
  s3?: Record<string, { medianVsDurable: number; medianVsPlain: number; p99VsDurable?: number; medianVsBare?: number; p99VsBare?: number }>;
  /** By case, then by gap (ms). */
  s8?: Record<string, Record<string, { p50VsDurable: number; p99VsDurable: number; p50VsPlain: number; p99VsPlain: number }>>;
  /** By case: edgechat / baseline file server, and edgechat / bare R2 Worker, median MB/s. */
  s9?: Record<string, { uploadVsBaseline: number; downloadVsBaseline: number; uploadVsBareR2: number; downloadVsBareR2: number }>;
}

/** What one pass over the scenarios produced (the normal pass is the top level of BenchResults). */
export interface Pass {
  scenarios: Scenarios;
  errors: Record<string, string>;
  /** CPU used by the bench vs by other processes during each scenario (shared machine). */
  cpu: Record<string, CpuWindow>;
  /** Per scenario: sockets closed under the harness (by code) and this process's event-loop delay. */
  health: Record<string, HealthWindow>;
}

export interface HogPass extends Pass {
  ratios: Ratios;
  targets: TargetCheck[];
  /** Headline numbers of each scenario, normal vs hogged; `flagged` when one degrades more than 5x. */
  comparison: HogComparison[];
  verification: { ok: boolean; problems: string[] };
}

export interface BenchResults extends Pass {
  date: string;
  wallSeconds: number;
  machine: Record<string, string | number>;
  params: Params;
  ratios: Ratios;
  targets: TargetCheck[];
  /** The same scenarios again with one core hogged (--hog). */
  hog?: HogPass;
  verification: { ok: boolean; problems: string[] };
}

interface Args {
  mode: Mode;
  only: Set<string> | null;
  out: string;
  ref: string | null;
  json: boolean;
  hog: boolean;
}

function parseArgs(argv: string[]): Args {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const mode: Mode = argv.includes("--tiny") ? "tiny" : argv.includes("--quick") ? "quick" : "full";
  const only = get("--only");
  return {
    mode,
    only: only ? new Set(only.split(",").map((s) => s.trim())) : null,
    out: get("--out") ?? join(BENCH_DIR, "results"),
    ref: get("--ref") ?? null,
    json: argv.includes("--json"),
    hog: !argv.includes("--no-hog") && (argv.includes("--hog") || (mode === "full" && !only)),
  };
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function machine(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    workerd: workerdVersion(),
    wrangler: pkgVersion("wrangler"),
    miniflare: pkgVersion("miniflare"),
    tmpdir: os.tmpdir(),
    hostname: os.hostname(),
  };
}

const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? NaN : round(a / b, 2));

function evaluate(r: BenchResults): void {
  const s = r.scenarios;
  const t: TargetCheck[] = [];
  if (s.s1) {
    const e = s.s1.edgechat.delivery;
    const d = s.s1["durable-relay"].delivery;
    r.ratios.s1 = {
      p50VsDurable: ratio(e.p50, d.p50),
      p50VsPlain: ratio(e.p50, s.s1["plain-relay"].delivery.p50),
      p99VsDurable: ratio(e.p99, d.p99),
      p99VsPlain: ratio(e.p99, s.s1["plain-relay"].delivery.p99),
      ...(s.s1["bare-object"] ? { p50VsBare: ratio(e.p50, s.s1["bare-object"].delivery.p50), p99VsBare: ratio(e.p99, s.s1["bare-object"].delivery.p99) } : {}),
    };
    t.push(checkMax("1 latency", "p50 / durable relay p50", r.ratios.s1.p50VsDurable, 1.5, "x", "<= 1.5x"));
    t.push(checkMax("1 latency", "p99", e.p99, 10, "ms", "<= 10 ms"));
  }
  if (s.s2) {
    const g = (v: "single" | "batched", n: SystemName) => s.s2?.[v]?.[n]?.messagesPerSecond;
    r.ratios.s2 = {
      singleVsDurable: ratio(g("single", "edgechat"), g("single", "durable-relay")),
      singleVsPlain: ratio(g("single", "edgechat"), g("single", "plain-relay")),
      batchedVsDurable: ratio(g("batched", "edgechat"), g("batched", "durable-relay")),
      batchedVsPlain: ratio(g("batched", "edgechat"), g("batched", "plain-relay")),
    };
    t.push(checkMin("2 throughput", "msg/s, one message per send", g("single", "edgechat") ?? null, 5000, "msg/s", ">= 5,000"));
    t.push(checkMin("2 throughput", `msg/s, send_batch of ${r.params.s2.batchSize}`, g("batched", "edgechat") ?? null, 5000, "msg/s", ">= 5,000"));
  }
  if (s.s3) {
    r.ratios.s3 = {};
    for (const [size, by] of Object.entries(s.s3)) {
      r.ratios.s3[size] = {
        medianVsDurable: ratio(by.edgechat?.delivery.p50, by["durable-relay"]?.delivery.p50),
        medianVsPlain: ratio(by.edgechat?.delivery.p50, by["plain-relay"]?.delivery.p50),
        p99VsDurable: ratio(by.edgechat?.delivery.p99, by["durable-relay"]?.delivery.p99),
        ...(by["bare-object"] && !by["bare-object"].error
          ? { medianVsBare: ratio(by.edgechat?.delivery.p50, by["bare-object"].delivery.p50), p99VsBare: ratio(by.edgechat?.delivery.p99, by["bare-object"].delivery.p99) }
          : {}),
      };
      const e = by.edgechat?.error ? undefined : by.edgechat?.delivery;
      if (size === "1000") t.push(checkMax("3 fan-out", "median, 1,000 members", e?.p50 ?? null, 25, "ms", "<= 25 ms"));
      if (size !== "1000") t.push({ scenario: "3 fan-out", metric: `median, ${size} members`, target: "reported", value: e?.p50 ?? null, unit: "ms", pass: null, note: by.edgechat?.error ? `failed: ${by.edgechat.error}` : "report only" });
      t.push({ scenario: "3 fan-out", metric: `p99, ${size} members`, target: "reported", value: e?.p99 ?? null, unit: "ms", pass: null, note: by.edgechat?.error ? "failed" : "report only" });
    }
  }
  if (s.s4) {
    t.push(checkMax("4 sockets", "overhead above bare object", s.s4.overheadKibPerSocket, 10, "KiB/socket", "<= 10 KB/socket"));
    if (s.s4.bareFirstFrame) {
      t.push({ scenario: "4 sockets", metric: "overhead above a bare object that sends one frame", target: "reported", value: s.s4.overheadAboveFirstFrameKibPerSocket, unit: "KiB/socket", pass: null, note: `the first frame costs the bare object ${round(s.s4.bareFirstFrame.kibPerSocket - s.s4.bare.kibPerSocket, 1)} KiB/socket` });
    }
    t.push({ scenario: "4 sockets", metric: "1:1 p99 while open", target: "reported", value: s.s4.latencyWhileOpen.delivery.p99, unit: "ms", pass: null, note: "report only" });
  }
  if (s.s5) {
    t.push(checkMax("5 reconnect", `all ${s.s5.clients} caught up`, s.s5.allCaughtUpMs, 5000, "ms", "<= 5 s"));
    t.push({ scenario: "5 reconnect", metric: "gaps + duplicates", target: "0", value: s.s5.gaps + s.s5.duplicates, unit: "", pass: s.s5.gaps + s.s5.duplicates === 0 });
  }
  if (s.s6) {
    const pg = s.s6.pages;
    t.push(checkMax("6 history", "hot tier, random 50-message page p99", pg.hot.p99, 5, "ms", "<= 5 ms"));
    t.push(checkMax("6 history", "hot tier, newest page p99", pg.newest.p99, 5, "ms", "<= 5 ms"));
    for (const k of ["hotWarm", "warm", "warmCold", "cold"] as const)
      t.push({ scenario: "6 history", metric: `${PAGE_KIND_LABELS[k]} p99`, target: "reported", value: pg[k].p99, unit: "ms", pass: null, note: `report only; p50 ${pg[k].p50} ms` });
    const big = s.s6.large;
    if (big)
      for (const pos of ["start", "middle", "end"] as const)
        t.push({
          scenario: "6 history",
          metric: `cold page of a ${big.messages.toLocaleString("en-US")}-message conversation, ${pos} of the cold tier, p99 (segment not in memory)`,
          target: "reported",
          value: big.positions[pos].uncached.p99,
          unit: "ms",
          pass: null,
          note: `report only; p50 ${big.positions[pos].uncached.p50} ms; same page again p50 ${big.positions[pos].cached.p50} ms`,
        });
    else t.push({ scenario: "6 history", metric: "cold page of the large conversation", target: "reported", value: null, unit: "ms", pass: null, note: `failed: ${s.s6.largeError ?? "not run"}` });
  }
  if (s.s7) {
    if (s.s7.available) t.push(checkMax("7 inbox", "first page p99", s.s7.firstPage.p99, 20, "ms", "<= 20 ms"));
    else t.push({ scenario: "7 inbox", metric: "first page", target: "<= 20 ms", value: null, unit: "ms", pass: null, note: "not available in this build" });
  }
  if (s.s8) {
    r.ratios.s8 = {};
    let missed = 0;
    let expected = 0;
    for (const [c, by] of Object.entries(s.s8)) {
      r.ratios.s8[c] = {};
      const e = by.edgechat;
      for (const gap of Object.keys(e?.blocks ?? {})) {
        const eb = e?.error ? undefined : e?.blocks[gap];
        const d = by["durable-relay"]?.blocks[gap]?.latency;
        const pl = by["plain-relay"]?.blocks[gap]?.latency;
        r.ratios.s8[c][gap] = {
          p50VsDurable: ratio(eb?.latency.p50, d?.p50),
          p99VsDurable: ratio(eb?.latency.p99, d?.p99),
          p50VsPlain: ratio(eb?.latency.p50, pl?.p50),
          p99VsPlain: ratio(eb?.latency.p99, pl?.p99),
        };
        const label = `p99, ${c}, ${gap} gaps`;
        const p99 = eb && eb.latency.count ? eb.latency.p99 : null;
        if ((e?.members ?? 0) <= 100) t.push(checkMax("8 notify", label, p99, 100, "ms", "< 100 ms"));
        else
          t.push({
            scenario: "8 notify",
            metric: label,
            target: "reported (aim < 1 s)",
            value: p99,
            unit: "ms",
            pass: null,
            note: e?.error ? `failed: ${e.error}` : p99 === null ? "nothing heard" : p99 < 1000 ? "aim met" : `aim missed (${round(p99 / 1000, 2)}x)`,
          });
        missed += eb?.missed ?? 0;
        expected += eb?.expected ?? 0;
      }
    }
    t.push({ scenario: "8 notify", metric: `missed notifications (not heard within ${r.params.s8.deadlineMs / 1000} s), of ${expected}`, target: "0", value: missed, unit: "", pass: missed === 0, ...(missed ? { miss: `${missed} missed` } : {}) });
  }
  if (s.s9) {
    r.ratios.s9 = {};
    for (const c of s.s9.cases) {
      r.ratios.s9[c.name] = { uploadVsBaseline: c.uploadVsBaseline, downloadVsBaseline: c.downloadVsBaseline, uploadVsBareR2: c.uploadVsBareR2, downloadVsBareR2: c.downloadVsBareR2 };
      for (const dir of ["upload", "download"] as const) {
        const e = c.edgechat[dir];
        const ratioNow = dir === "upload" ? c.uploadVsBaseline : c.downloadVsBaseline;
        const bareNow = dir === "upload" ? c.uploadVsBareR2 : c.downloadVsBareR2;
        t.push({ scenario: "9 attachments", metric: `${dir} MB/s, ${c.name}`, target: "reported (vs Node file server)", value: e.median, unit: "MB/s", pass: null, note: `${ratioNow}x the baseline's ${c.baseline[dir].median} MB/s; ${bareNow}x the bare R2 Worker's ${c["bare-r2"][dir].median}` });
      }
    }
    // Flat memory: the 100 MB transfers must not grow workerd's RSS by more than a fifth of the file.
    const large = s.s9.cases.filter((c) => c.bytes === r.params.s9.largeBytes);
    for (const c of large)
      for (const dir of ["upload", "download"] as const) {
        const m = c.edgechat.memory[dir];
        const bare = c["bare-r2"].memory[dir];
        t.push({
          ...checkMax("9 attachments", `workerd RSS growth during ${dir}, ${c.name}`, m.growthPercentOfFile, 20, "% of file", "< 20% of the file (flat)"),
          note: `largest of ${m.growthPerRunMiB.length}: ${m.growthPerRunMiB.join(" / ")} MiB; bare R2 Worker ${bare.growthPerRunMiB.join(" / ")} MiB`,
        });
      }
    const dropped = s.s9.cases.reduce((n, c) => n + c.edgechat.dropped, 0);
    t.push({ scenario: "9 attachments", metric: "requests whose connection edgechat dropped (sent again)", target: "0", value: dropped, unit: "", pass: dropped === 0, ...(dropped ? { miss: `${dropped} dropped` } : {}) });
    const rf = s.s9.refuse;
    t.push(checkMax("9 attachments", `413 for a declared ${rf.declaredBytes / 1e6} MB upload, body stalled (max of ${rf.requests})`, rf.answered === rf.requests ? rf.ms.max : null, 100, "ms", "<= 100 ms (body never read)"));
  }
  const hb = Object.values(r.health ?? {}).reduce((a, h) => a + h.heartbeatCloses, 0);
  const other = Object.values(r.health ?? {}).reduce((a, h) => a + h.unexpectedCloses - h.heartbeatCloses, 0);
  if (Object.keys(r.health ?? {}).length) {
    t.push({ scenario: "sockets", metric: "healthy sockets closed for missed heartbeat (4408)", target: "0", value: hb, unit: "", pass: hb === 0, ...(hb ? { miss: `${hb} closed` } : {}) });
    t.push({ scenario: "sockets", metric: "other closes the harness did not ask for", target: "reported", value: other, unit: "", pass: null, note: "by code in the health table" });
    const resets = Object.values(r.health ?? {}).reduce((a, h) => a + (h.connectResets ?? 0), 0);
    t.push({ scenario: "sockets", metric: "connects reset before the upgrade was answered (retried)", target: "reported", value: resets, unit: "", pass: null, note: "a saturated local runtime drops requests it did not read for 15 s (bench/README.md)" });
  }
  r.targets = t;
}

/** Every message the harness sent must have been counted where it should arrive. */
function verify(r: Pass, ran: Set<string>): { ok: boolean; problems: string[] } {
  const p: string[] = [];
  const s = r.scenarios;
  for (const [k, v] of Object.entries(r.errors)) p.push(`${k} failed: ${v}`);
  for (const k of ran) if (!(k in s) && !(k in r.errors)) p.push(`${k} produced no result`);
  if (s.s1)
    for (const n of SYSTEMS_AND_FLOOR) {
      const x = s.s1[n];
      if (!x) continue;
      if (x.delivered !== x.sent || x.acked !== x.sent || x.duplicates) p.push(`s1 ${n}: delivered ${x.delivered}, acked ${x.acked} of ${x.sent}, dups ${x.duplicates}`);
    }
  if (s.s2)
    for (const v of ["single", "batched"] as const)
      for (const n of SYSTEMS) {
        const x = s.s2[v][n];
        if (!x.complete || x.sent === 0) p.push(`s2 ${v} ${n}: sent ${x.sent}, acked ${x.acked}, delivered ${x.delivered}/${x.expectedDeliveries}, errors ${x.errors}`);
      }
  if (s.s3)
    for (const [size, by] of Object.entries(s.s3))
      for (const n of SYSTEMS_AND_FLOOR) {
        const x = by[n];
        if (!x) continue;
        if (x.error) p.push(`s3 ${size} ${n} failed: ${x.error}`);
        else if (x.delivered !== x.expected || x.missing || x.duplicates) p.push(`s3 ${size} ${n}: ${x.delivered}/${x.expected}, missing ${x.missing}, dups ${x.duplicates}`);
      }
  if (s.s4) {
    const l = s.s4.latencyWhileOpen;
    if (l.delivered !== l.sent || l.acked !== l.sent) p.push(`s4 probe: ${l.delivered}/${l.sent}`);
  }
  if (s.s5 && !s.s5.complete) p.push(`s5: received ${s.s5.received}/${s.s5.expected}, gaps ${s.s5.gaps}, dups ${s.s5.duplicates}, out of order ${s.s5.outOfOrder}`);
  if (s.s6 && s.s6.badPages) p.push(`s6: ${s.s6.badPages} wrong pages (${s.s6.badSamples.join("; ")})`);
  if (s.s6?.largeError) p.push(`s6 large conversation failed: ${s.s6.largeError}`);
  if (s.s6?.large?.badPages) p.push(`s6 large: ${s.s6.large.badPages} wrong pages (${s.s6.large.badSamples.join("; ")})`);
  if (s.s7?.available && (s.s7.badResponses || s.s7.listed !== s.s7.conversations))
    p.push(`s7: ${s.s7.badResponses} bad responses; inbox lists ${s.s7.listed} of ${s.s7.conversations} conversations`);
  // Scenario 8: misses are a result, not a harness failure; malformed or mismatched frames are.
  if (s.s8)
    for (const [c, by] of Object.entries(s.s8))
      for (const n of SYSTEMS) {
        const x = by[n];
        if (!x) continue;
        if (x.error) p.push(`s8 ${c} ${n} failed: ${x.error}`);
        else if (x.malformed || x.mismatched || x.unacked)
          p.push(`s8 ${c} ${n}: ${x.malformed} malformed inbox_update frames${x.malformedSample ? ` (e.g. ${x.malformedSample})` : ""}, ${x.mismatched} with a preview/sender not matching their seq, ${x.unacked} messages not acked`);
      }
  // Scenario 9: every download must be the uploaded bytes (size and sha256), every 413 answered.
  if (s.s9) for (const x of s.s9.problems) p.push(`s9: ${x}`);
  return { ok: p.length === 0, problems: p };
}

/** Run one scenario into `pass`, optionally with one core hogged; its CPU and socket health beside it. */
async function runStep(k: string, fn: () => Promise<unknown>, pass: Pass, hogged: boolean): Promise<void> {
  const hog = hogged ? await startHog() : null;
  try {
    const t0 = performance.now();
    const meter = cpuMeter();
    const health = healthMeter();
    try {
      (pass.scenarios as Record<string, unknown>)[k] = await fn();
    } catch (err) {
      pass.errors[k] = err instanceof Error ? err.message : String(err);
      log(`${k}${hogged ? " (hog)" : ""} failed: ${pass.errors[k]}${err instanceof Error && err.stack ? `\n${err.stack}` : ""}`);
    }
    pass.cpu[k] = meter();
    pass.health[k] = health();
    const h = pass.health[k];
    log(
      `${k}${hogged ? " (hog)" : ""} took ${round((performance.now() - t0) / 1000, 1)} s; cpu ${JSON.stringify(pass.cpu[k])}; ` +
        `unexpected closes ${JSON.stringify(h.closesByCode)}; connects reset and retried ${h.connectResets}; loop delay max ${h.loopDelay.max} ms; heartbeat tick max gap ${h.heartbeatTickMaxGapMs} ms`,
    );
  } finally {
    await hog?.stop();
  }
}

export async function runBench(argv: string[]): Promise<BenchResults> {
  const args = parseArgs(argv);
  const params = paramsFor(args.mode);
  const want = (k: string) => args.only === null || args.only.has(k);
  const started = performance.now();
  const date = new Date().toISOString().replace(/:/g, "-").replace(/\..*/, "");
  const results: BenchResults = { date, wallSeconds: 0, machine: machine(), params, scenarios: {}, ratios: {}, targets: [], errors: {}, cpu: {}, health: {}, verification: { ok: false, problems: [] } };
  const hogPass: Pass = { scenarios: {}, errors: {}, cpu: {}, health: {} };
  // Each scenario: normal, then (--hog) again at once with one core hogged, so both see the same machine.
  const step = async (k: string, fn: () => Promise<unknown>) => {
    ran.add(k);
    await runStep(k, fn, results, false);
    if (args.hog) await runStep(k, fn, hogPass, true);
  };
  log(`mode ${args.mode}${args.hog ? " + hog pass" : ""}; bundling the Worker from ${args.ref ?? "the working tree"}`);
  const bundle = bundleWorker(args.ref ?? undefined);
  results.machine.build = bundle.source;
  const ran = new Set<string>();

  const s9OnMain = !params.s9.ownRuntime;
  const needsMain = ["s1", "s2", "s3", "s5", "s6", "s7", "s8"].some(want) || (want("s9") && s9OnMain);
  let edge: RuntimeServer | null = null;
  let plain: RelayServer | null = null;
  let durable: RelayServer | null = null;
  try {
    if (needsMain) {
      edge = await startEdgechat({ bundle, vars: params.serverVars });
      [plain, durable] = await Promise.all([startRelay("plain"), startRelay("durable")]);
      const s8Sizes = params.s8.cases.map((c) => (c === "direct" ? 2 : Number(c)));
      const poolSize = Math.max(2, want("s2") ? params.s2.senders : 0, ...(want("s3") ? params.s3.sizes : [0]), want("s5") ? params.s5.clients + 1 : 0, ...(want("s8") ? s8Sizes : [0]));
      const t = performance.now();
      const users = await createUsers(edge.url, poolSize, "bench");
      log(`runtime pid ${edge.pid}; ${poolSize} users in ${Math.round(performance.now() - t)} ms`);
      const ctx: BenchContext = { params, edge, users, plain, durable, bundle };
      const steps: [string, () => Promise<unknown>][] = [
        // Fan-out runs last on this runtime: its 5,000-member room is the heaviest thing we do, and a
        // runtime that fails there must not take the other scenarios' numbers down with it.
        ["s1", () => runLatency(ctx)],
        ["s2", () => runThroughput(ctx)],
        ["s5", () => runReconnect(ctx)],
        ["s6", () => runHistory(ctx)],
        ["s7", () => runInbox(ctx)],
        ["s8", () => runNotify(ctx)],
        // --tiny only: scenario 9 on this runtime (elsewhere it starts its own, below).
        ...(s9OnMain ? ([["s9", () => runAttachments(ctx)]] as [string, () => Promise<unknown>][]) : []),
        ["s3", () => runFanout(ctx)],
      ];
      for (const [k, fn] of steps) if (want(k)) await step(k, fn);
    }
  } finally {
    await Promise.all([edge?.stop(), plain?.stop(), durable?.stop()]);
  }
  // Scenarios 4 and 9 start their own fresh runtimes (memory is measured per process). Scenario 9 runs
  // last: it writes ~1 GB to disk, whose writeback must not land in another scenario's fsyncs.
  if (want("s4")) await step("s4", () => runSockets({ params, bundle } as BenchContext));
  if (want("s9") && !s9OnMain) await step("s9", () => runAttachments({ params, bundle } as BenchContext));
  bundle.cleanup();
  results.wallSeconds = round((performance.now() - started) / 1000, 1);
  evaluate(results);
  results.verification = verify(results, ran);
  if (args.hog) {
    // The hogged pass is evaluated and verified like the normal one (a message lost under load is a failure).
    const shadow: BenchResults = { ...results, ...hogPass, ratios: {}, targets: [], hog: undefined };
    evaluate(shadow);
    const v = verify(hogPass, ran);
    results.hog = { ...hogPass, ratios: shadow.ratios, targets: shadow.targets, comparison: compareHog(results.scenarios, hogPass.scenarios), verification: v };
    results.verification.problems.push(...v.problems.map((x) => `hog: ${x}`));
    results.verification.ok = results.verification.problems.length === 0;
    for (const c of results.hog.comparison.filter((x) => x.flagged)) log(`hog: ${c.scenario} ${c.metric} degrades ${c.degradation}x (${c.normal} -> ${c.hog} ${c.unit})`);
  }
  const stem = `${args.mode === "full" ? date : `${date}-${args.mode}`}${args.hog ? "-hog" : ""}`;
  const files = await writeResults(args.out, results, stem, args.mode === "full" && args.only === null);
  log(`wrote ${files.join(", ")}`);
  log(`verification: ${results.verification.ok ? "ok" : results.verification.problems.join("; ")}`);
  if (args.json) process.stdout.write(JSON.stringify(results) + "\n");
  return results;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  runBench(process.argv.slice(2)).then(
    (r) => process.exit(r.verification.ok ? 0 : 1),
    (err) => {
      console.error(err);
      process.exit(2);
    },
  );
}
