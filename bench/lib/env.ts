// Environment every bench process shares: no telemetry, no network lookups, 127.0.0.1 only.
import { resolve } from "node:path";

process.env.WRANGLER_SEND_METRICS = "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_HIDE_BANNER = "true";

export const ROOT = resolve(import.meta.dirname, "..", "..");
export const BENCH_DIR = resolve(ROOT, "bench");
export const HOST = "127.0.0.1";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function log(...args: unknown[]): void {
  if (process.env.BENCH_QUIET) return;
  const t = new Date().toISOString().slice(11, 19);
  console.error(`[bench ${t}]`, ...args);
}
