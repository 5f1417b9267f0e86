// Results: JSON (everything), a markdown table, and an SVG chart rendered by vega-lite + vega in Node.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as vega from "vega";
import * as vl from "vega-lite";
import type { BenchResults, Pass, Ratios } from "../run.ts";
import { DEGRADATION_FLAG } from "./compare.ts";
import type { LatencySummary, TargetCheck } from "./stats.ts";
import { SYSTEMS, SYSTEMS_AND_FLOOR } from "./systems.ts";
import { FILE_SYSTEMS } from "../scenarios/s9-attachments.ts";
import { PAGE_KIND_LABELS, type PageKind } from "../scenarios/s6-history.ts";

/** What the floor row is (lib/systems.ts FLOOR). */
const FLOOR_NOTE =
  "bare-object: the runtime's floor, not a target: the durable relay's room as a bare SQLite-backed object with hibernatable sockets (bench/bare/worker.js `BareRelay`), on its own runtime, behind the same assets router; no auth, validation, idempotency, history or inbox.";

const fmt = (x: number | null | undefined, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? "-" : Number(x.toFixed(d)).toLocaleString("en-US"));
const lat = (s: LatencySummary | undefined) => (s ? `${fmt(s.p50)} / ${fmt(s.p95)} / ${fmt(s.p99)} / ${fmt(s.max)}` : "-");

export function markdown(r: BenchResults): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(`# edgechat benchmark: ${r.date} (${r.params.mode})`, "");
  lines.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}; Node ${m.node}; workerd ${m.workerd}; wrangler ${m.wrangler}; miniflare ${m.miniflare}. ` +
      `Build: ${m.build}. Runtime reached directly through Miniflare (no wrangler dev proxy), storage persisted to disk (${m.tmpdir}). Server vars: ${Object.entries(r.params.serverVars).map(([k, v]) => `${k}=${v}`).join(", ")} (rate limit and per-user socket cap lifted: capacity, not policy). Wall time ${fmt(r.wallSeconds, 0)} s.`,
    "",
  );
  if (r.params.mode !== "full") lines.push(`**${r.params.mode} mode: reduced sizes, not the issue's parameters. See the full run for the targets.**`, "");
  if (r.hog) lines.push(`**Hog pass:** every scenario also ran a second time, right after, with one core busy (a child process spinning): see [Under a CPU hog](#under-a-cpu-hog-one-core-busy).`, "");
  lines.push("## Targets", "");
  targetTable(lines, r.targets);
  scenarioSections(lines, r, r, r.ratios);
  loadAndHealth(lines, r);
  if (Object.keys(r.errors).length) {
    lines.push("", "## Errors", "");
    for (const [k, v] of Object.entries(r.errors)) lines.push(`- ${k}: ${v}`);
  }
  if (r.hog) {
    const h = r.hog;
    lines.push("", "## Under a CPU hog (one core busy)", "");
    lines.push(
      `Each scenario ran again right after its normal pass, with a child process spinning one core (\`lib/hog.ts\`), so edgechat, the relays and the load generator share the other core. ` +
        `Headline numbers of edgechat; **flagged** when one degrades by more than ${DEGRADATION_FLAG}x (latency x${DEGRADATION_FLAG}, or throughput /${DEGRADATION_FLAG}) or was not measured under the hog. ` +
        `The load generator is one of the processes starved: its event-loop delay (health table below) is part of every latency here.`,
      "",
    );
    lines.push("| scenario | metric | normal | hog | hog / normal | degradation | |", "|---|---|---|---|---|---|---|");
    for (const c of h.comparison)
      lines.push(`| ${c.scenario} | ${c.metric} | ${fmt(c.normal)} ${c.unit} | ${fmt(c.hog)} ${c.unit} | ${fmt(c.hogVsNormal)}x | ${fmt(c.degradation)}x | ${c.flagged ? "**> " + DEGRADATION_FLAG + "x**" : ""} |`);
    lines.push("", "### Targets under the hog", "");
    targetTable(lines, h.targets);
    // The same sections as above, one heading level down.
    const sub: string[] = [];
    scenarioSections(sub, r, h, h.ratios);
    loadAndHealth(sub, h);
    lines.push(...sub.map((l) => (l.startsWith("## ") ? `### Hog: ${l.slice(3)}` : l)));
    if (Object.keys(h.errors).length) {
      lines.push("", "### Errors under the hog", "");
      for (const [k, v] of Object.entries(h.errors)) lines.push(`- ${k}: ${v}`);
    }
  }
  lines.push("", `Verification (every message counted): ${r.verification.ok ? "ok" : `FAILED: ${r.verification.problems.join("; ")}`}`, "");
  return lines.join("\n");
}

function targetTable(lines: string[], targets: TargetCheck[]): void {
  lines.push("| scenario | metric | target | measured | verdict |", "|---|---|---|---|---|");
  for (const t of targets) {
    const verdict = t.pass === null ? `n/a${t.note ? ` (${t.note})` : ""}` : `${t.pass ? "pass" : `**MISS**: ${t.miss}`}${t.note ? ` (${t.note})` : ""}`;
    lines.push(`| ${t.scenario} | ${t.metric} | ${t.target} | ${t.value === null ? "-" : `${fmt(t.value)} ${t.unit}`} | ${verdict} |`);
  }
}

function loadAndHealth(lines: string[], p: Pass): void {
  if (Object.keys(p.cpu).length) {
    const hogged = Object.values(p.cpu).some((c) => c.hogCores !== undefined);
    lines.push("", "## Machine load during each scenario", "", "Average cores busy: this benchmark (load generator + runtime + relays) vs every other process on the machine (other sessions' tests share these cores).", "");
    lines.push(`| scenario | seconds | bench cores | other cores |${hogged ? " hog cores |" : ""} load avg (1 min, at end) |`, `|---|---|---|---|${hogged ? "---|" : ""}---|`);
    for (const [k, c] of Object.entries(p.cpu)) lines.push(`| ${k} | ${c.seconds} | ${c.benchCores} | ${c.otherCores} |${hogged ? ` ${c.hogCores ?? "-"} |` : ""} ${c.loadavg1} |`);
  }
  if (Object.keys(p.health).length) {
    lines.push("", "## Socket health and load-generator stalls", "");
    lines.push(
      "Sockets closed under the harness (not by `close()`), by close code: 4408 is a healthy socket cut off for a missed heartbeat (target 0). " +
        "Connects reset before the upgrade was answered are not closes: the harness retried each, as a client does, and counts them apart. " +
        "Event-loop delay of the load generator (it timestamps frames and sends the 15 s heartbeats from a 1 s tick; the tick's longest gap is shown).",
      "",
    );
    lines.push("| scenario | unexpected closes | by code | 4408 (no heartbeat) | connects reset, retried | loop delay p50 / p99 / max (ms) | heartbeat tick max gap (ms) |", "|---|---|---|---|---|---|---|");
    for (const [k, h] of Object.entries(p.health))
      lines.push(`| ${k} | ${h.unexpectedCloses} | ${Object.entries(h.closesByCode).map(([c, n]) => `${c}: ${n}`).join(", ") || "-"} | ${h.heartbeatCloses} | ${h.connectResets ?? "-"} | ${fmt(h.loopDelay.p50, 1)} / ${fmt(h.loopDelay.p99, 1)} / ${fmt(h.loopDelay.max, 1)} | ${fmt(h.heartbeatTickMaxGapMs, 0)} |`);
  }
}

function scenarioSections(lines: string[], r: BenchResults, pass: Pass, ratios: Ratios): void {
  const s = pass.scenarios;
  if (s.s1) {
    lines.push("", "## 1. 1:1 send -> deliver latency (ms, p50 / p95 / p99 / max)", "", `${r.params.s1.messages} measured messages at ${r.params.s1.ratePerSec}/s after ${r.params.s1.warmup} warm-up; latency at the receiving client.`, "");
    lines.push("| system | delivery | ack (sender) | delivered/sent |", "|---|---|---|---|");
    for (const n of SYSTEMS_AND_FLOOR) {
      const x = s.s1[n];
      if (x) lines.push(`| ${n} | ${lat(x.delivery)} | ${lat(x.ack)} | ${x.delivered}/${x.sent} |`);
    }
    if (ratios.s1) lines.push("", `Ratios (edgechat / durable relay, edgechat / plain relay): p50 ${fmt(ratios.s1.p50VsDurable)}x, ${fmt(ratios.s1.p50VsPlain)}x; p99 ${fmt(ratios.s1.p99VsDurable)}x, ${fmt(ratios.s1.p99VsPlain)}x.`);
    if (ratios.s1?.p50VsBare !== undefined) lines.push("", `${FLOOR_NOTE} Edgechat / bare object: p50 ${fmt(ratios.s1.p50VsBare)}x, p99 ${fmt(ratios.s1.p99VsBare)}x.`);
  }
  if (s.s2) {
    lines.push("", `## 2. One conversation, ${r.params.s2.senders} concurrent senders: persisted + acked messages/s`, "");
    lines.push(
      `Closed loop, ${r.params.s2.seconds} s measured after ${r.params.s2.warmupSeconds} s warm-up. single: one message per frame, ${r.params.s2.windowPerSender} in flight per sender; batched: send_batch of ${r.params.s2.batchSize}, ${r.params.s2.batchWindowPerSender} frames in flight per sender. Every member receives every message.`,
      "",
    );
    lines.push("| variant | system | msg/s | frames/s | ack latency p50 / p95 / p99 / max | delivered/expected |", "|---|---|---|---|---|---|");
    for (const v of ["single", "batched"] as const)
      for (const n of SYSTEMS) {
        const x = s.s2[v]?.[n];
        if (x) lines.push(`| ${v} | ${n} | ${fmt(x.messagesPerSecond, 0)} | ${fmt(x.framesPerSecond, 0)} | ${lat(x.ack)} | ${x.delivered}/${x.expectedDeliveries} |`);
      }
    if (ratios.s2) lines.push("", `Ratios edgechat / durable, edgechat / plain (msg/s): single ${fmt(ratios.s2.singleVsDurable)}x, ${fmt(ratios.s2.singleVsPlain)}x; batched ${fmt(ratios.s2.batchedVsDurable)}x, ${fmt(ratios.s2.batchedVsPlain)}x.`);
  }
  if (s.s3) {
    lines.push("", "## 3. Fan-out: one message to every member (ms, p50 / p95 / p99 / max over all deliveries)", "");
    lines.push("| members | system | delivery | last member (per message) | delivered/expected |", "|---|---|---|---|---|");
    for (const [size, bySys] of Object.entries(s.s3))
      for (const n of SYSTEMS_AND_FLOOR) {
        const x = bySys[n];
        if (x?.error) lines.push(`| ${size} | ${n} | **failed**: ${x.error} | - | ${x.delivered}/${x.expected} |`);
        else if (x) lines.push(`| ${size} | ${n} | ${lat(x.delivery)} | ${lat(x.lastDelivery)} | ${x.delivered}/${x.expected} |`);
      }
    if (ratios.s3) {
      const parts = Object.entries(ratios.s3).map(
        ([size, x]) =>
          `${size}: median ${fmt(x.medianVsDurable)}x, p99 ${fmt(x.p99VsDurable)}x the durable relay${x.medianVsBare !== undefined ? `; ${fmt(x.medianVsBare)}x, ${fmt(x.p99VsBare)}x the bare object` : ""}`,
      );
      lines.push("", `Ratios edgechat / durable relay and edgechat / bare object (median, p99): ${parts.join("; ")}.`);
      if (Object.values(ratios.s3).some((x) => x.medianVsBare !== undefined)) lines.push("", FLOOR_NOTE);
    }
  }
  if (s.s4) {
    const x = s.s4;
    lines.push("", `## 4. ${x.edgechat.sockets} open sockets across ${x.edgechat.conversations} conversations`, "");
    lines.push("| runtime | RSS before (MiB) | RSS after (MiB) | KiB per socket | connect time (s) |", "|---|---|---|---|---|");
    lines.push(`| bare object (hibernatable accept only) | ${x.bare.rssBeforeMiB} | ${x.bare.rssAfterMiB} | ${fmt(x.bare.kibPerSocket)} | ${x.bare.connectSeconds} |`);
    if (x.bareFirstFrame) lines.push(`| bare object + one welcome-sized frame sent on accept | ${x.bareFirstFrame.rssBeforeMiB} | ${x.bareFirstFrame.rssAfterMiB} | ${fmt(x.bareFirstFrame.kibPerSocket)} | ${x.bareFirstFrame.connectSeconds} |`);
    lines.push(`| edgechat (sockets as the SDK opens them: \`presence=0\`) | ${x.edgechat.rssBeforeMiB} | ${x.edgechat.rssAfterMiB} | ${fmt(x.edgechat.kibPerSocket)} | ${x.edgechat.connectSeconds} |`);
    lines.push("", "All three behind the same static-assets router (the project's `[assets]` routing).");
    lines.push("", `Overhead above bare: ${fmt(x.overheadKibPerSocket)} KiB per socket${x.bareFirstFrame ? `; above the bare object that sends one frame: ${fmt(x.overheadAboveFirstFrameKibPerSocket)} KiB per socket` : ""}. 1:1 latency while open: ${lat(x.latencyWhileOpen.delivery)} ms (${x.latencyWhileOpen.delivered}/${x.latencyWhileOpen.sent}).`);
  }
  if (s.s5) {
    const x = s.s5;
    lines.push("", "## 5. Reconnect storm", "", `${x.clients} clients each missed ${x.missed} messages and reconnected at once with since=${x.since}.`, "");
    lines.push(`All caught up in ${fmt(x.allCaughtUpMs, 0)} ms; per client ${lat(x.perClient)} ms. Gaps ${x.gaps}, duplicates ${x.duplicates}, out of order ${x.outOfOrder}; received ${x.received}/${x.expected}.`);
  }
  if (s.s6) {
    const x = s.s6;
    const range = (r: [number, number]) => `${fmt(r[0], 0)}-${fmt(r[1], 0)}`;
    const sec = (v: number | null | undefined) => (v === null || v === undefined ? "-" : `${fmt(v, 1)} s`);
    lines.push("", `## 6. History: 50-message pages from each tier of a ${x.messages.toLocaleString("en-US")}-message conversation`, "");
    lines.push(
      `Tiers (server vars ${Object.entries(x.serverVars).map(([k, v]) => `${k}=${v}`).join(", ")}): cold (R2 segments) ${range(x.layout.cold)}, warm (D1 shard) ${range(x.layout.warm)}, hot (object SQLite) ${range(x.layout.hot)}. ` +
        `Found in place ${sec(x.settleSeconds)} after the fill: D1 (${x.observed.d1Binding ?? "-"}) held ${fmt(x.observed.d1Rows, 0)} rows, seqs ${fmt(x.observed.d1MinSeq ?? NaN, 0)}-${fmt(x.observed.d1MaxSeq ?? NaN, 0)} (the warm tier and the hot tail's archived copies); ` +
        `R2 ${x.observed.segments} segments, ${fmt(x.observed.segmentBytes / 1024, 0)} KiB; the object's hot tail ${x.observed.hotRows === null ? "not read" : `${fmt(x.observed.hotRows, 0)} rows from seq ${fmt(x.observed.hotMinSeq ?? NaN, 0)}`}.`,
      "",
    );
    const load = (c: { seconds: number; benchCores: number; otherCores: number; loadavg1: number } | undefined) => (c ? `${fmt(c.seconds, 0)} s; bench ${fmt(c.benchCores)} cores, other processes ${fmt(c.otherCores)} cores, load average ${fmt(c.loadavg1)}` : "not recorded");
    lines.push(`Machine while these pages were timed: ${load(x.pagesCpu)}.`, "");
    lines.push("| page | p50 / p95 / p99 / max (ms) | requests |", "|---|---|---|");
    for (const [k, v] of Object.entries(x.pages)) lines.push(`| ${PAGE_KIND_LABELS[k as PageKind]} | ${lat(v)} | ${v.count} |`);
    lines.push(
      "",
      `Each round asks for one page of each kind in this order, each at a random place in its range; every page checked (50 contiguous seqs from the expected one, and seq, sender, idempotency key and body of each message): wrong pages ${x.badPages}${x.badSamples.length ? ` (${x.badSamples.join("; ")})` : ""}. ` +
        `The object keeps the last 4 decoded segments in memory (segments.ts): by a replay of the request order, ${x.coldPagesInMemory ? `${x.coldPagesInMemory.pages} of the ${x.coldPagesInMemory.of} timed cold-range pages` : "some cold-range pages"} found their segment there, the others fetched it from R2 and decoded it; the page straddling warm/cold reads the newest segment, which stays in memory.`,
    );
    lines.push("", `Fill: ${fmt(x.fillSeconds, 1)} s (${fmt(x.fillMessagesPerSecond, 0)} msg/s over one socket, send_batch); the tiers were in place ${sec(x.settleSeconds)} after the last ack. Other archive work on the runtime (scenario 2's conversations) ${x.quietAfterSeconds === null ? "was still running after 120 s: pages timed anyway" : `quiet after ${fmt(x.quietAfterSeconds, 1)} s more`}.`);
    if (x.client) lines.push("", `Pages timed by: ${x.client}. GC in that client during the pages: ${x.clientGc?.count ?? "?"} (${fmt(x.clientGc?.totalMs ?? NaN, 1)} ms total), overlapping ${x.clientGc?.requestsOverlapping ?? "?"} timed requests.`);
    const b = x.large;
    if (b) {
      lines.push("", `### 6b. Cold pages from a ${b.messages.toLocaleString("en-US")}-message conversation${r.params.mode === "full" ? "" : ` (${r.params.mode} mode: not the issue's 1,000,000)`}`, "");
      lines.push(
        `${b.ownRuntime ? "On a fresh runtime of its own" : "On the main runtime"} (${Object.entries(b.serverVars).map(([k, v]) => `${k}=${v}`).join(", ")}). Filled by real sends (one socket, send_batch of ${r.params.s6.batchSize}, 8 in flight) in ${sec(b.fillSeconds)} (${fmt(b.fillMessagesPerSecond, 0)} msg/s${b.fillLoopDelay ? `; the sender's event-loop delay meanwhile p99 ${fmt(b.fillLoopDelay.p99, 1)} ms, max ${fmt(b.fillLoopDelay.max, 0)} ms` : ""}). ` +
          `D1 and R2 were looked at every ${fmt(b.lookEveryMs / 1000, 2)} s from the start of the fill${b.lagDuringFill?.looks ? ` (${b.lagDuringFill.looks} looks while it ran): the archive job trailed the sends by at most ${fmt(b.lagDuringFill.maxUnarchived, 0)} messages not yet in D1 and ${fmt(b.lagDuringFill.maxSegmentsBehind, 0)} segments not yet in R2` : ""}${b.atFillEnd ? `; at the last look before the last ack (${fmt(-b.atFillEnd.t, 2)} s before it) ${fmt(b.atFillEnd.acked, 0)} were acked, D1 held up to seq ${fmt(b.atFillEnd.d1MaxSeq, 0)} and R2 ${fmt(b.atFillEnd.segments, 0)} segments` : ""}; every row was in D1 ${sec(b.archivedAfterSeconds)} after the last ack, the last segment in R2 after ${sec(b.lastSegmentAfterSeconds)}, and the tiers in place after ${sec(b.settleSeconds)} (each look took up to ${fmt(Math.max(0, ...(b.timeline ?? []).map((x) => x.lookMs)), 0)} ms). ` +
          `Cold ${range(b.layout.cold)}: **${fmt(b.observed.segments, 0)} segments, ${b.observed.segmentBytes >= 1024 ** 2 ? `${fmt(b.observed.segmentBytes / 1024 ** 2, 1)} MiB` : `${fmt(b.observed.segmentBytes / 1024, 1)} KiB`}** in R2 (${fmt(b.observed.segmentBytes / b.observed.segments / 1024, 1)} KiB each, ${fmt(b.observed.segmentBytes / b.layout.cold[1], 1)} B a message); warm ${range(b.layout.warm)} (D1 ${fmt(b.observed.d1Rows, 0)} rows); hot ${range(b.layout.hot)}.`,
        "",
      );
      lines.push("| position in the cold tier | segments (seqs) | segment not in memory: p50 / p95 / p99 / max (ms) | same page again | pages |", "|---|---|---|---|---|");
      for (const [pos, v] of Object.entries(b.positions))
        lines.push(`| ${pos} | ${v.segments[0]}-${v.segments[1]} (${range(v.seqs)}) | ${lat(v.uncached)} | ${lat(v.cached)} | ${v.uncached.count} + ${v.cached.count} |`);
      lines.push("", `Machine during the fill and settling: ${load(b.fillCpu)}; while the pages were timed: ${load(b.pagesCpu)}.`);
      lines.push("", `Each page from a segment not read before (fetched from R2 and decoded), then the same page again; positions interleaved. Wrong pages: ${b.badPages}${b.badSamples.length ? ` (${b.badSamples.join("; ")})` : ""}.`);
    } else if (x.largeError) lines.push("", `### 6b. Large conversation: **failed**: ${x.largeError}`);
  }
  if (s.s7) {
    const x = s.s7;
    lines.push("", "## 7. Inbox first page", "");
    if (!x.available) lines.push(x.note);
    else lines.push(`User in ${x.conversations} conversations: ${lat(x.firstPage)} ms (p50 / p95 / p99 / max), ${x.firstPageSize} entries in the first page; paging with cursor lists ${x.listed} of ${x.conversations}.`);
  }
  if (s.s8) {
    const p8 = r.params.s8;
    lines.push("", "## 8. Live notifications on the user socket (ms, p50 / p95 / p99 / max over recipients x messages)", "");
    lines.push(
      `Recipients connected only on their user socket; one member sends. Latency = first \`inbox_update\` of the conversation covering the message's seq, minus its send time. ` +
        `Per case: ${p8.warmup} warm-up message(s), then ${p8.gaps.map((g) => `${g.messages} messages ${g.gapMs} ms apart`).join(", then ")} (quiet >= ${p8.quietMs} ms before each block). ` +
        `Missed: not heard within ${p8.deadlineMs / 1000} s. Updates per message: distinct updates that first covered a message, per recipient and message (1 = one update per message; less = coalesced).`,
      "",
    );
    lines.push("| case | gap | system | latency | missed | heard/expected | updates per message |", "|---|---|---|---|---|---|---|");
    for (const [c, by] of Object.entries(s.s8))
      for (const n of SYSTEMS) {
        const x = by[n];
        if (!x) continue;
        if (x.error) {
          lines.push(`| ${c} | - | ${n} | **failed**: ${x.error} | - | - | - |`);
          continue;
        }
        for (const [gap, b] of Object.entries(x.blocks)) lines.push(`| ${c} | ${gap} | ${n} | ${lat(b.latency)} | ${b.missed} | ${b.heard}/${b.expected} | ${fmt(b.updatesPerMessage, 3)} |`);
      }
    if (ratios.s8) {
      const parts: string[] = [];
      for (const [c, byGap] of Object.entries(ratios.s8)) for (const [gap, x] of Object.entries(byGap)) parts.push(`${c} @${gap}: p50 ${fmt(x.p50VsDurable)}x, p99 ${fmt(x.p99VsDurable)}x`);
      lines.push("", `Ratios edgechat / durable relay: ${parts.join("; ")}.`);
    }
    const bad = Object.entries(s.s8).flatMap(([c, by]) => SYSTEMS.filter((n) => by[n] && (by[n].malformed || by[n].mismatched || by[n].unacked || by[n].recipientsClosed)).map((n) => `${c} ${n}: malformed ${by[n].malformed}, mismatched ${by[n].mismatched}, unacked ${by[n].unacked}, recipient sockets closed ${by[n].recipientsClosed}`));
    if (bad.length) lines.push("", `Problems: ${bad.join("; ")}.`);
  }
  if (s.s9) {
    const x = s.s9;
    const mbps = (t: { median: number; min: number; max: number }) => `${fmt(t.median, 1)} (${fmt(t.min, 1)}-${fmt(t.max, 1)})`;
    lines.push("", "## 9. Attachments: upload and download throughput, and the server's memory while streaming", "");
    lines.push(
      `Each case ${x.reps} time(s) per system, interleaved; each time uploaded, then downloaded and checked (size + sha256), then deleted. MB = 1,000,000 bytes; ` +
        `MB/s median (min-max) over the reps; upload time = first byte sent to the answer (multipart: create, parts, complete), download time = request to last byte. Same client code (node:http) for both.`,
      "",
    );
    lines.push("| case | system | upload MB/s | download MB/s | verified | requests whose connection the server dropped (sent again) |", "|---|---|---|---|---|---|");
    for (const c of x.cases)
      for (const n of FILE_SYSTEMS) {
        const y = c[n];
        lines.push(`| ${c.name} | ${n} | ${mbps(y.upload)} | ${mbps(y.download)} | ${y.verified}/${y.verified + y.mismatches} | ${y.dropped}${y.dropped ? ` (${y.droppedSample.join("; ")})` : ""} |`);
      }
    lines.push("", `Ratios edgechat / baseline (median MB/s): ${x.cases.map((c) => `${c.name}: upload ${fmt(c.uploadVsBaseline)}x, download ${fmt(c.downloadVsBaseline)}x`).join("; ")}.`);
    lines.push("", `Ratios edgechat / bare R2 Worker (same local R2; 1 = edgechat adds nothing): ${x.cases.map((c) => `${c.name}: upload ${fmt(c.uploadVsBareR2)}x, download ${fmt(c.downloadVsBareR2)}x`).join("; ")}.`);
    lines.push(
      "",
      `RSS of the serving process, sampled every ${r.params.s9.sampleEveryMs} ms during each transfer: before (first transfer of the kind), peak (any), and the largest growth (peak during one transfer minus RSS right before it). ` +
        `Flat = growth under 20% of the file. "anon": the same for anonymous memory only (RssAnon: heaps, buffers; not mapped files). ` +
        `RSS at start / after warm-up / at the end: ${FILE_SYSTEMS.map((n) => `${n} ${fmt(x.rss[n].startMiB, 1)} / ${fmt(x.rss[n].afterWarmupMiB, 1)} / ${fmt(x.rss[n].endMiB, 1)} MiB`).join("; ")}.`,
      "",
    );
    lines.push("| case | transfer | system | RSS before (MiB) | peak (MiB) | growth (MiB) | % of file | KiB per MB of file | growth per run (MiB) | anon growth per run (MiB) | samples |", "|---|---|---|---|---|---|---|---|---|---|---|");
    for (const c of x.cases)
      for (const dir of ["upload", "download"] as const)
        for (const n of FILE_SYSTEMS) {
          const m = c[n].memory[dir];
          lines.push(
            `| ${c.name} | ${dir} | ${n} | ${fmt(m.rssBeforeMiB, 1)} | ${fmt(m.peakMiB, 1)} | ${fmt(m.growthMiB, 1)} | ${fmt(m.growthPercentOfFile, 1)} | ${fmt(m.growthKibPerFileMB, 1)} | ${m.growthPerRunMiB.map((g) => fmt(g, 1)).join(", ")} | ${m.anonGrowthPerRunMiB.map((g) => fmt(g, 1)).join(", ")} | ${m.samples} |`,
          );
        }
    const rf = x.refuse;
    lines.push(
      "",
      `Oversized upload: ${rf.requests} uploads declaring ${fmt(rf.declaredBytes, 0)} bytes sent their headers and 64 KiB, then nothing; ${rf.answered} answered 413 (${rf.codes.join(", ") || "-"}) after ${lat(rf.ms)} ms (p50 / p95 / p99 / max). Statuses: ${rf.statuses.join(", ")}.`,
    );
    lines.push("", "What each system does:", "", ...FILE_SYSTEMS.map((n) => `- ${n}: ${x.notes[n]}`));
    if (x.problems.length) lines.push("", `Problems: ${x.problems.join("; ")}.`);
  }
}

export async function chartSvg(r: BenchResults): Promise<string> {
  const rows: { case: string; system: string; stat: string; ms: number }[] = [];
  const push = (label: string, system: string, s: LatencySummary | undefined) => {
    if (!s || s.count === 0) return;
    rows.push({ case: label, system, stat: "p50", ms: Math.max(s.p50, 0.01) }, { case: label, system, stat: "p99", ms: Math.max(s.p99, 0.01) });
  };
  const sc = r.scenarios;
  for (const n of SYSTEMS) push("1: 1:1 @100/s", n, sc.s1?.[n]?.delivery);
  for (const [size, bySys] of Object.entries(sc.s3 ?? {})) for (const n of SYSTEMS) push(`3: fan-out ${size}`, n, bySys[n]?.delivery);
  if (sc.s4) push("4: 1:1 with 10k open", "edgechat", sc.s4.latencyWhileOpen.delivery);
  for (const [c, by] of Object.entries(sc.s8 ?? {}))
    for (const n of SYSTEMS) for (const [gap, b] of Object.entries(by[n]?.error ? {} : (by[n]?.blocks ?? {}))) push(`8: ${c} @${gap}`, n, b.latency);
  if (sc.s6) {
    push("6: history hot", "edgechat", sc.s6.pages.hot);
    push("6: history warm", "edgechat", sc.s6.pages.warm);
    push("6: history cold", "edgechat", sc.s6.pages.cold);
  }
  const tput: { variant: string; system: string; mps: number }[] = [];
  for (const v of ["single", "batched"] as const) for (const n of SYSTEMS) {
    const x = sc.s2?.[v]?.[n];
    if (x) tput.push({ variant: `2: ${v}`, system: n, mps: x.messagesPerSecond });
  }
  const color = { field: "system", type: "nominal", scale: { domain: [...SYSTEMS], range: ["#9aa5b1", "#f0a202", "#1f6feb"] } } as const;
  const spec: vl.TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `edgechat vs relays (${r.params.mode}, ${r.date}, ${r.machine.cores} cores)`,
    vconcat: [
      {
        title: "Latency, ms (log scale; solid p50, faded p99)",
        data: { values: rows },
        width: 640,
        height: 260,
        mark: { type: "bar" },
        encoding: {
          x: { field: "case", type: "nominal", title: null, axis: { labelAngle: -30 } },
          xOffset: { field: "system" },
          y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms" },
          color,
          opacity: { field: "stat", type: "ordinal", scale: { domain: ["p50", "p99"], range: [1, 0.35] } },
          tooltip: [{ field: "case" }, { field: "system" }, { field: "stat" }, { field: "ms" }],
        },
      },
      {
        title: "Scenario 2: persisted + acked messages/s, one conversation",
        data: { values: tput },
        width: 640,
        height: 180,
        mark: "bar",
        encoding: {
          x: { field: "variant", type: "nominal", title: null },
          xOffset: { field: "system" },
          y: { field: "mps", type: "quantitative", title: "msg/s" },
          color,
        },
      },
    ],
  } as vl.TopLevelSpec;
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeResults(dir: string, r: BenchResults, stem: string, updateLatest: boolean): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, `${stem}.json`), join(dir, `${stem}.md`), join(dir, `${stem}.svg`)];
  writeFileSync(files[0]!, JSON.stringify(r, null, 2) + "\n");
  const md = markdown(r).replace("\n## Targets", `\n![chart](${stem}.svg)\n\n## Targets`);
  writeFileSync(files[1]!, md);
  writeFileSync(files[2]!, await chartSvg(r));
  if (updateLatest) {
    writeFileSync(join(dir, "latest.md"), md);
    files.push(join(dir, "latest.md"));
  }
  return files;
}

export type { TargetCheck };
