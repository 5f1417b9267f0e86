// One verification run: start (or target) a server, run the workload with faults, read back what the
// server holds, check. Used by the CLI (scripts/verify.ts) and by e2e/verify.test.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { check, type Report } from "./checker.ts";
import { readTruth, type D1Target } from "./truth.ts";
import { DEFAULT_FAULTS, DEFAULT_MIX, runWorkload, type FaultRates, type Mix, type Workload } from "./workload.ts";
import { openColdReader } from "./cold.ts";

export const ROOT = resolve(import.meta.dirname, "..", "..");

export interface VerifyOptions {
  /** Target deployment; when absent a local server is started (and D1 is read directly). */
  url?: string;
  adminSecret?: string;
  /** `wrangler d1 execute <name> --remote` to read D1 of a deployment directly (needs your credentials). */
  d1Database?: string;
  messages: number;
  clients: number;
  conversations: number;
  membershipsPerClient: number;
  seed: number;
  window: number;
  faults: FaultRates;
  /** What the actors do: weights of sends, edits, deletes and reactions. */
  mix: Mix;
  /** Extra vars for the local server. */
  vars: Record<string, string>;
  timeoutMs: number;
  d1TimeoutMs: number;
  log?: (line: string) => void;
}

export const DEFAULTS: VerifyOptions = {
  messages: 3000,
  clients: 8,
  conversations: 4,
  membershipsPerClient: 2,
  seed: 1,
  window: 32,
  faults: DEFAULT_FAULTS,
  mix: DEFAULT_MIX,
  // Tiny tiers locally, so that the run crosses every boundary: a hot tail of 50, D1 for the next 100, and R2
  // segments of 40 entries below that. Backlogs and history pages are then served from all three, and pruning,
  // moves to R2 and rewrites of segments run during the workload.
  vars: { HOT_TAIL_MESSAGES: "50", WARM_MESSAGES: "150", SEGMENT_MESSAGES: "40" },
  timeoutMs: 10 * 60_000,
  d1TimeoutMs: 30_000,
};

export interface VerifyResult {
  report: Report;
  workload: Workload;
  target: string;
}

export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const say = options.log ?? (() => {});
  let url = options.url;
  let adminSecret = options.adminSecret;
  let d1: D1Target = options.d1Database ? { kind: "remote", database: options.d1Database, cwd: ROOT } : { kind: "none" };
  let stop: (() => Promise<void>) | undefined;
  let persistDir: string | undefined;
  if (!url) {
    // Imported lazily: targeting a URL must not need wrangler's dev machinery.
    const { startLocalServer } = await import("../../e2e/server.ts");
    persistDir = mkdtempSync(join(tmpdir(), "edgechat-verify-"));
    const server = await startLocalServer({ vars: options.vars, persistDir });
    url = server.url;
    adminSecret = server.adminSecret;
    const cold = await openColdReader(persistDir);
    d1 = { kind: "local", persistDir, cwd: ROOT, cold };
    stop = async () => {
      await cold.close();
      await server.stop();
    };
    say(`local server on ${url} (persist ${persistDir})`);
  }
  if (!adminSecret) throw new Error("--admin-secret (or EDGECHAT_ADMIN_SECRET) is required with --url");
  try {
    const workload = await runWorkload({
      url,
      adminSecret,
      messages: options.messages,
      clients: options.clients,
      conversations: options.conversations,
      membershipsPerClient: options.membershipsPerClient,
      seed: options.seed,
      faults: options.faults,
      mix: options.mix,
      window: options.window,
      deadlineMs: options.timeoutMs,
      log: say,
    });
    const s = workload.stats;
    say(`workload done in ${(s.durationMs / 1000).toFixed(1)} s: ${s.reconnects} reconnects, ${s.slowPauses} slow-consumer pauses, ${s.rateLimited} rate-limited frames`);
    say("reading history as every member (hot tail, D1 and R2 pages) and the archive directly ...");
    const t = Date.now();
    workload.log.conversations = await readTruth(url, workload.readers, workload.members, d1, options.d1TimeoutMs);
    say(`read back in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    return { report: check(workload.log), workload, target: url };
  } finally {
    await stop?.();
    if (persistDir) rmSync(persistDir, { recursive: true, force: true });
  }
}
