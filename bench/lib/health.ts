// Per scenario: sockets the server closed on us, and how late this process's event loop ran (the
// load generator timestamps frames and sends heartbeats from it, so a stalled loop shows up in both
// the latencies and, past 15 s, in the heartbeats).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { connectResetTally, takeHeartbeatGap, unexpectedCloseTally } from "./client.ts";
import { round } from "./stats.ts";

export interface HealthWindow {
  /** Sockets closed by the other side, or lost, that the harness did not close itself. */
  unexpectedCloses: number;
  /** Those closes by code (e.g. "4408": no heartbeat, "1006": lost, "1011"). */
  closesByCode: Record<string, number>;
  /** Connects the server reset before answering the upgrade, each retried (see connectResetTally). */
  connectResets: number;
  /** Healthy sockets closed for a missed heartbeat (4408): the target is 0. */
  heartbeatCloses: number;
  /** This process's event-loop delay while the scenario ran (ms). */
  loopDelay: { p50: number; p99: number; max: number };
  /** Longest gap between two heartbeat ticks (expected 1,000 ms; pings are due every 15 s). */
  heartbeatTickMaxGapMs: number;
}

const RESOLUTION_MS = 10;

export function healthMeter(): () => HealthWindow {
  const before = unexpectedCloseTally();
  const resetsBefore = connectResetTally();
  takeHeartbeatGap();
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  return () => {
    h.disable();
    const after = unexpectedCloseTally();
    const closesByCode: Record<string, number> = {};
    let total = 0;
    for (const [code, n] of Object.entries(after)) {
      const d = n - (before[code] ?? 0);
      if (d > 0) {
        closesByCode[code] = d;
        total += d;
      }
    }
    // The histogram holds the time between two samples: the resolution itself is not a delay.
    const ms = (ns: number) => (h.count ? round(Math.max(0, ns / 1e6 - RESOLUTION_MS), 1) : 0);
    return {
      unexpectedCloses: total,
      closesByCode,
      connectResets: connectResetTally() - resetsBefore,
      heartbeatCloses: closesByCode["4408"] ?? 0,
      loopDelay: { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) },
      heartbeatTickMaxGapMs: takeHeartbeatGap(),
    };
  };
}
