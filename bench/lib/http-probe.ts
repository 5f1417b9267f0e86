// A lean HTTP client in its own process, for timing small GET requests (scenario 6's history pages).
//
// Why a separate process: the harness process has driven thousands of sockets by the time it gets
// here and holds a large heap; its own GC pauses (dozens of them, up to ~10 ms, during a few seconds
// of requests) were being recorded as server latency. This process holds almost nothing, keeps one
// keep-alive connection, allocates little per request, and times each request with
// process.hrtime.bigint() from just before the request is written to the last byte of the body.
// Parsing and checking a page happen after its clock stops.
//
// Protocol (IPC, started with fork() by runHttpProbe below):
//   parent -> child  ProbeJob
//   child  -> parent ProbeReply (one message, then the child exits)
import { fork } from "node:child_process";
import { createHash } from "node:crypto";
import http from "node:http";
import { PerformanceObserver } from "node:perf_hooks";

export interface ProbeRequest {
  /** Path and query, e.g. /v1/conversations/x/messages?limit=50 */
  path: string;
}

export interface ProbeJob {
  host: string;
  port: number;
  /** Sent as `Authorization: Bearer <token>` on every request. */
  token: string;
  /** Requests, issued one at a time in this order. */
  requests: ProbeRequest[];
  /** Per-request timeout (ms); one watchdog timer, nothing left behind per request. */
  timeoutMs: number;
}

export interface ProbeReply {
  /** Wall time of each request in nanoseconds (start of write to last body byte), in job order. */
  latencyNs: number[];
  status: number[];
  /** `messages[].seq` of each page (empty if the body had none). */
  seqs: number[][];
  /**
   * Content of each page: sha256 (hex) of its messages, one line per message, `pageLine()` of each (empty
   * string if the body had none). The parent computes the same from what it sent, so a page with the right
   * seqs but another body, sender or idempotency key is caught.
   */
  digests: string[];
  /** GC in this client while requests ran: if a client pause overlapped a request, it is counted here. */
  gc: { count: number; forcedBetweenRequests: number; totalMs: number; maxMs: number; requestsOverlapping: number };
  node: string;
  pid: number;
  error?: string;
}

/** Human description recorded in the results next to the numbers. */
export const PROBE_CLIENT =
  "separate Node process (bench/lib/http-probe.ts): node:http, one keep-alive connection, requests one at a time, timed with process.hrtime.bigint() from write to last body byte; parsing and checks after the clock stops";

/** One message of a page as the content digest sees it (both sides of the probe use this). */
export function pageLine(m: { seq: number; senderId: string; clientMsgId: string; body: string }): string {
  return `${m.seq}\t${m.senderId}\t${m.clientMsgId}\t${m.body}\n`;
}

/** The digest of a page whose messages are `lines` (pageLine of each, in order). */
export function pageDigest(lines: string[]): string {
  const h = createHash("sha256");
  for (const l of lines) h.update(l);
  return h.digest("hex");
}

/** Requests between two forced minor GCs (each request leaves roughly 80 KB of garbage). */
const GC_EVERY = 50;

async function runJob(job: ProbeJob): Promise<ProbeReply> {
  const n = job.requests.length;
  const lat = new Float64Array(n);
  const starts = new Float64Array(n);
  const status = new Array<number>(n).fill(0);
  const seqs: number[][] = new Array(n);
  const digests = new Array<string>(n).fill("");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, scheduling: "lifo" });
  const headers = { Authorization: `Bearer ${job.token}`, Accept: "application/json" };

  // Client GCs, to show whether any overlapped a timed request (performance.timeOrigin-relative ms).
  const gcs: { start: number; end: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  obs.observe({ entryTypes: ["gc"] });

  let forced = 0;
  let inFlightSince = 0n;
  let inFlight: http.ClientRequest | null = null;
  const watchdog = setInterval(() => {
    if (inFlight && process.hrtime.bigint() - inFlightSince > BigInt(job.timeoutMs) * 1_000_000n) inFlight.destroy(new Error(`request timed out after ${job.timeoutMs} ms`));
  }, 1000);
  let failed: Error | null = null;

  const one = (path: string) =>
    new Promise<{ status: number; body: Buffer; ns: bigint; startMs: number }>((resolve, reject) => {
      const startMs = performance.now();
      const t0 = process.hrtime.bigint();
      inFlightSince = t0;
      const req = http.request({ host: job.host, port: job.port, path, method: "GET", agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const ns = process.hrtime.bigint() - t0;
          inFlight = null;
          resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), ns, startMs });
        });
        res.on("error", reject);
      });
      inFlight = req;
      req.on("error", reject);
      req.end();
    });

  try {
    for (let i = 0; i < n; i++) {
      const r = await one(job.requests[i]!.path);
      lat[i] = Number(r.ns);
      starts[i] = r.startMs;
      status[i] = r.status;
      // Clock stopped: now parse and keep only the sequence numbers.
      let s: number[] = [];
      try {
        const page = JSON.parse(r.body.toString("utf8")) as { messages?: { seq: number; senderId: string; clientMsgId: string; body: string }[] };
        if (Array.isArray(page.messages)) {
          s = page.messages.map((m) => m.seq);
          digests[i] = pageDigest(page.messages.map(pageLine));
        }
      } catch {
        // not JSON: the parent sees an empty page and the status
      }
      seqs[i] = s;
      // Collect this process's young garbage here, between requests with no clock running, so that
      // V8 never has to scavenge in the middle of a timed request (GC_EVERY pages leave ~4 MB, far
      // below the 64 MB young generation; see runHttpProbe). Each takes ~0.5-1 ms here and only
      // delays the start of the next request.
      if (i % GC_EVERY === GC_EVERY - 1 && globalThis.gc) {
        globalThis.gc({ type: "minor" });
        forced++;
      }
      if (r.status >= 300) throw new Error(`GET ${job.requests[i]!.path} -> ${r.status} ${r.body.toString("utf8").slice(0, 300)}`);
    }
  } catch (err) {
    failed = err instanceof Error ? err : new Error(String(err));
  } finally {
    clearInterval(watchdog);
    agent.destroy();
  }
  // Let the observer deliver the last entries.
  await new Promise((r) => setImmediate(r));
  obs.disconnect();

  let overlapping = 0;
  for (let i = 0; i < n; i++) {
    const a = starts[i]!;
    const b = a + lat[i]! / 1e6;
    if (a && gcs.some((g) => g.start < b && g.end > a)) overlapping++;
  }
  const durations = gcs.map((g) => g.end - g.start);
  return {
    latencyNs: Array.from(lat),
    status,
    seqs: Array.from(seqs, (s) => s ?? []),
    digests,
    gc: {
      count: gcs.length,
      forcedBetweenRequests: forced,
      totalMs: Math.round(durations.reduce((x, y) => x + y, 0) * 1000) / 1000,
      maxMs: Math.round(Math.max(0, ...durations) * 1000) / 1000,
      requestsOverlapping: overlapping,
    },
    node: process.version,
    pid: process.pid,
    error: failed ? (failed as Error).message : undefined,
  };
}

/**
 * Run `job` in a fresh child process and return its reply. The parent does nothing but wait meanwhile.
 * The child starts with a 64 MB young generation (--min/--max-semi-space-size) and collects it
 * itself every GC_EVERY requests, between requests (--expose-gc): a page costs it ~80 KB of garbage,
 * so V8 never needs to start a scavenge on its own. With Node's default young generation, the 2,100
 * requests of a full run saw 24-26 scavenges overlapping ~22 timed requests (against a trivial server).
 * Every GC it does have, and how many overlapped a timed request, is reported in `gc`.
 */
export async function runHttpProbe(job: ProbeJob): Promise<ProbeReply> {
  const child = fork(import.meta.filename, [], {
    execArgv: ["--import", "tsx", "--expose-gc", "--min-semi-space-size=64", "--max-semi-space-size=64"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    return await new Promise<ProbeReply>((resolve, reject) => {
      child.once("message", (m) => resolve(m as ProbeReply));
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`http probe exited (${code ?? signal}) without a reply`)));
      child.send(job);
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.disconnect();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }
}

// Child side.
if (process.send && process.argv[1] === import.meta.filename) {
  process.once("message", (job: ProbeJob) => {
    runJob(job).then(
      (reply) => process.send!(reply, () => process.disconnect()),
      (err) => process.send!({ latencyNs: [], status: [], seqs: [], digests: [], gc: { count: 0, forcedBetweenRequests: 0, totalMs: 0, maxMs: 0, requestsOverlapping: 0 }, node: process.version, pid: process.pid, error: String(err) }, () => process.disconnect()),
    );
  });
}
