// The hog pass against the normal one: each scenario's headline numbers side by side, hog/normal, and
// a flag when a number degrades by more than 5x (latency up 5x, or throughput down to a fifth).
import type { Scenarios } from "../run.ts";
import { round } from "./stats.ts";

export interface HogComparison {
  scenario: string;
  metric: string;
  unit: string;
  better: "lower" | "higher";
  normal: number | null;
  hog: number | null;
  /** hog / normal. */
  hogVsNormal: number;
  /** How much worse under the hog: hog/normal for latencies, normal/hog for throughput. */
  degradation: number;
  /** Degraded more than 5x, or measured normally but not under the hog. */
  flagged: boolean;
}

export const DEGRADATION_FLAG = 5;

interface Headline {
  scenario: string;
  metric: string;
  unit: string;
  better: "lower" | "higher";
  value: number | null;
}

/** The numbers of each scenario worth comparing (edgechat's; the relays' are in the full sections). */
export function headlines(s: Scenarios): Headline[] {
  const h: Headline[] = [];
  const lat = (scenario: string, metric: string, value: number | undefined | null) => h.push({ scenario, metric, unit: "ms", better: "lower", value: value ?? null });
  if (s.s1) {
    lat("1 latency", "delivery p50", s.s1.edgechat.delivery.p50);
    lat("1 latency", "delivery p99", s.s1.edgechat.delivery.p99);
  }
  if (s.s2) {
    for (const v of ["single", "batched"] as const) {
      h.push({ scenario: "2 throughput", metric: `${v} msg/s`, unit: "msg/s", better: "higher", value: s.s2[v].edgechat.messagesPerSecond });
      lat("2 throughput", `${v} ack p99`, s.s2[v].edgechat.ack.p99);
    }
  }
  if (s.s3)
    for (const [size, by] of Object.entries(s.s3)) {
      const e = by.edgechat;
      lat("3 fan-out", `${size} members p50`, e.error ? null : e.delivery.p50);
      lat("3 fan-out", `${size} members p99`, e.error ? null : e.delivery.p99);
    }
  if (s.s4) {
    h.push({ scenario: "4 sockets", metric: "overhead above bare", unit: "KiB/socket", better: "lower", value: s.s4.overheadKibPerSocket });
    h.push({ scenario: "4 sockets", metric: "connect time", unit: "s", better: "lower", value: s.s4.edgechat.connectSeconds });
    lat("4 sockets", "1:1 p99 while open", s.s4.latencyWhileOpen.delivery.p99);
  }
  if (s.s5) lat("5 reconnect", "all caught up", s.s5.allCaughtUpMs);
  if (s.s6) {
    for (const [k, v] of Object.entries(s.s6.pages)) lat("6 history", `${k} page p99`, v.p99);
    for (const [pos, v] of Object.entries(s.s6.large?.positions ?? {})) lat("6 history", `large conversation, cold ${pos} p99`, v.uncached.p99);
  }
  if (s.s7?.available) lat("7 inbox", "first page p99", s.s7.firstPage.p99);
  if (s.s8)
    for (const [c, by] of Object.entries(s.s8)) {
      const e = by.edgechat;
      for (const [gap, b] of Object.entries(e?.blocks ?? {})) {
        const ok = !e.error && b.latency.count > 0;
        lat("8 notify", `${c} @${gap} p50`, ok ? b.latency.p50 : null);
        lat("8 notify", `${c} @${gap} p99`, ok ? b.latency.p99 : null);
      }
    }
  if (s.s9)
    for (const c of s.s9.cases) {
      h.push({ scenario: "9 attachments", metric: `upload ${c.name}`, unit: "MB/s", better: "higher", value: c.edgechat.upload.median });
      h.push({ scenario: "9 attachments", metric: `download ${c.name}`, unit: "MB/s", better: "higher", value: c.edgechat.download.median });
    }
  if (s.s9) lat("9 attachments", "413 for an oversized upload, max", s.s9.refuse.answered ? s.s9.refuse.ms.max : null);
  return h;
}

export function compareHog(normal: Scenarios, hog: Scenarios): HogComparison[] {
  const after = new Map(headlines(hog).map((x) => [`${x.scenario}|${x.metric}`, x.value]));
  return headlines(normal).map((x) => {
    const hv = after.get(`${x.scenario}|${x.metric}`) ?? null;
    const ok = x.value !== null && hv !== null && x.value > 0 && hv > 0;
    const hogVsNormal = ok ? round(hv / x.value!, 2) : NaN;
    const degradation = ok ? round(x.better === "lower" ? hv / x.value! : x.value! / hv, 2) : NaN;
    return { ...x, normal: x.value, hog: hv, hogVsNormal, degradation, flagged: (ok && degradation > DEGRADATION_FLAG) || (x.value !== null && hv === null) };
  }).map(({ value: _value, ...rest }) => rest as HogComparison);
}
