// Latency summaries from a real HDR histogram (microsecond resolution, 3 significant digits).
import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  /** Always milliseconds. */
  unit: "ms";
}

export class Latency {
  private readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

  /** Record one latency in milliseconds (negative clock noise is clamped to 0). */
  record(ms: number): void {
    this.h.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.h.totalCount;
  }

  summary(): LatencySummary {
    const at = (p: number) => round(this.h.getValueAtPercentile(p) / 1000);
    return {
      count: this.h.totalCount,
      p50: at(50),
      p95: at(95),
      p99: at(99),
      max: round(this.h.maxValue / 1000),
      mean: round(this.h.mean / 1000),
      unit: "ms",
    };
  }
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export interface TargetCheck {
  scenario: string;
  metric: string;
  target: string;
  value: number | null;
  unit: string;
  pass: boolean | null;
  /** How far from the target when missed, e.g. "2.3x over" or "by 1,200 msg/s (24%)". */
  miss?: string;
  note?: string;
}

export function checkMax(scenario: string, metric: string, value: number | null, limit: number, unit: string, target: string): TargetCheck {
  if (value === null) return { scenario, metric, target, value, unit, pass: null, note: "not measured" };
  const pass = value <= limit;
  return { scenario, metric, target, value: round(value), unit, pass, miss: pass ? undefined : `${round(value / limit, 2)}x the limit (+${round(value - limit, 2)} ${unit})` };
}

export function checkMin(scenario: string, metric: string, value: number | null, floor: number, unit: string, target: string): TargetCheck {
  if (value === null) return { scenario, metric, target, value, unit, pass: null, note: "not measured" };
  const pass = value >= floor;
  return {
    scenario,
    metric,
    target,
    value: round(value, 1),
    unit,
    pass,
    miss: pass ? undefined : `short by ${round(floor - value, 1)} ${unit} (${round((100 * (floor - value)) / floor, 1)}% below)`,
  };
}
