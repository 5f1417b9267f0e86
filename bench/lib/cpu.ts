// How busy the machine was with other work while we measured: total CPU time (all processes, from
// /proc/stat) minus the CPU time of this process and its descendants (runtime, relays). On a shared
// 2-core machine, this is the first thing to look at when two runs disagree.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import os from "node:os";

const TICK = 100; // USER_HZ on Linux

function totalBusyTicks(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]!;
}

/** Processes whose CPU is reported apart (the `--hog` busy loop): pid -> true while it runs. */
export const hogPids = new Set<number>();

/** The fields of /proc/<pid>/stat after the command name: f[0] is field 3 (state), f[1] the parent pid. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU ticks of this process and its descendants, and of the hog subtree among them. */
function ourTicks(): { ours: number; hog: number } {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = statFields(Number(d));
      parent.set(Number(d), Number(f[1]));
      // utime stime cutime cstime (fields 14-17; f[0] is field 3)
      ticks.set(Number(d), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
    } catch {
      // exited
    }
  }
  let sum = 0;
  let hog = 0;
  for (const [pid, t] of ticks) {
    let p: number | undefined = pid;
    let inHog = false;
    for (let depth = 0; p && depth < 20; depth++, p = parent.get(p)) {
      if (hogPids.has(p)) inHog = true;
      if (p === process.pid) {
        if (inHog) hog += t;
        else sum += t;
        break;
      }
    }
  }
  return { ours: sum, hog };
}

export interface CpuWindow {
  seconds: number;
  /** Average cores used by this benchmark (load generator, runtime, relays). */
  benchCores: number;
  /** Average cores used by everything else on the machine (approximate if our children exited). */
  otherCores: number;
  loadavg1: number;
  /** Cores used by the `--hog` busy loop (only in hogged passes; ~1.0 when it got its core). */
  hogCores?: number;
}

export function cpuMeter(): () => CpuWindow {
  const t0 = Date.now();
  const busy0 = totalBusyTicks();
  const t0Ticks = ourTicks();
  // Call the returned function while a hog is still running: once it exits, its ticks leave /proc.
  return () => {
    const seconds = (Date.now() - t0) / 1000;
    const busy = (totalBusyTicks() - busy0) / TICK;
    const now = ourTicks();
    const ours = Math.max(0, (now.ours - t0Ticks.ours) / TICK);
    const hog = Math.max(0, (now.hog - t0Ticks.hog) / TICK);
    const r = (x: number) => Math.round(x * 100) / 100;
    const w: CpuWindow = { seconds: r(seconds), benchCores: r(ours / seconds), otherCores: r(Math.max(0, busy - ours - hog) / seconds), loadavg1: r(os.loadavg()[0]!) };
    if (hog > 0 || hogPids.size) w.hogCores = r(hog / seconds);
    return w;
  };
}

/** CPU seconds one process (not its children) has used so far: utime + stime. */
function processCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / TICK;
}

/**
 * Wait until process `pid` has been (nearly) idle for `quietMs`: used below `busyBelow` cores over each window
 * of `quietMs`. Resolves with how long it waited and whether it got there before `timeoutMs` (then it gives up:
 * the caller measures anyway and reports it).
 */
export async function waitForIdle(pid: number, opts: { quietMs: number; busyBelow: number; timeoutMs: number }): Promise<{ waitedMs: number; idle: boolean }> {
  const start = Date.now();
  for (;;) {
    const before = processCpuSeconds(pid);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, opts.quietMs));
    const cores = (processCpuSeconds(pid) - before) / ((Date.now() - t0) / 1000);
    if (cores < opts.busyBelow) return { waitedMs: Date.now() - start, idle: true };
    if (Date.now() - start > opts.timeoutMs) return { waitedMs: Date.now() - start, idle: false };
  }
}

/** How many of process `pid`'s open files have `part` in their path (Linux /proc; -1 where unreadable). */
export function openFilesMatching(pid: number, part: string): number {
  try {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).includes(part)) n++;
      } catch {
        // closed while we looked
      }
    }
    return n;
  } catch {
    return -1;
  }
}

/**
 * Wait until process `pid` holds at most `atMost` open files with `part` in their path. The local runtime closes
 * an idle object's SQLite database some seconds after its last event, and each close checkpoints and fsyncs on
 * the runtime's one thread: objects woken in bulk close in a wave, well after the CPU looked idle.
 */
export async function waitForFilesClosed(pid: number, part: string, atMost: number, timeoutMs: number): Promise<{ waitedMs: number; done: boolean }> {
  const start = Date.now();
  for (;;) {
    const open = openFilesMatching(pid, part);
    if (open <= atMost) return { waitedMs: Date.now() - start, done: true };
    if (Date.now() - start > timeoutMs) return { waitedMs: Date.now() - start, done: false };
    await new Promise((r) => setTimeout(r, 500));
  }
}
