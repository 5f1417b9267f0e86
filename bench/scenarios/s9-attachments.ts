// Scenario 9: attachments (issue 13). Upload then download a small and a large file (full run: 10 MB and
// 100 MB; the large one both in one request and as a multipart upload with parts in parallel) on edgechat
// and on a plain Node `http` file server that streams to disk (baselines/files.ts), with the same client
// code; MB/s for each, and every download's sha256 checked against the file. While the files stream, the
// RSS of the serving process (workerd, or the Node baseline) is sampled: a server that streams keeps it
// flat, one that buffers grows with the file. Last, uploads that declare 1 GB and never send the body:
// the time to the 413 (the body must not be read).
//
// edgechat runs on a fresh runtime of its own (like scenario 4: memory is measured per process, and the
// main runtime carries the other scenarios' heaps); except in --tiny mode (the CI proof that the harness
// works), which uses the main runtime to stay short: its memory figures mean nothing. Miniflare's local
// R2 is part of that workerd process (lib/workerd.ts), so its RSS counts the Worker AND the R2 simulator;
// the bytes themselves go to files. To tell the two apart, a third system runs the same transfers: a bare
// Worker on its own runtime with the same local R2 (bare/r2/worker.js: body straight into R2, nothing else).
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { createGroup, createUsers, isDroppedConnection, pMap, uniqueTag, type BenchUser } from "../lib/client.ts";
import { log, sleep } from "../lib/env.ts";
import { startFileServer } from "../lib/relays.ts";
import { Latency, round, type LatencySummary } from "../lib/stats.ts";
import type { BenchContext } from "../lib/systems.ts";
import { rssBreakdown, rssBytes, startBareR2, startEdgechat, type RuntimeServer } from "../lib/workerd.ts";

/** baseline: Node file server; bare-r2: a Worker that only moves bodies to the local R2 and back; edgechat. */
export type FileSystemName = "baseline" | "bare-r2" | "edgechat";
export const FILE_SYSTEMS: FileSystemName[] = ["baseline", "bare-r2", "edgechat"];

/** MB/s (1 MB = 1,000,000 bytes) of each run, and their median / min / max. */
export interface Throughput {
  runs: number[];
  median: number;
  min: number;
  max: number;
}

/** RSS of the serving process during one kind of transfer, over the reps. */
export interface MemoryWindow {
  /** RSS right before the first transfer of this kind. */
  rssBeforeMiB: number;
  /** Highest RSS seen during any of them. */
  peakMiB: number;
  /** Largest (peak during - RSS right before) of any one transfer. */
  growthMiB: number;
  /** That growth for each transfer, in order (a first-time allocation shows as a large first value). */
  growthPerRunMiB: number[];
  /** That growth as a share of the file's size. */
  growthPercentOfFile: number;
  /** That growth per MB of file. */
  growthKibPerFileMB: number;
  /** The same for anonymous memory only (RssAnon: heaps and buffers, not mapped files): the largest, and per transfer. */
  anonGrowthMiB: number;
  anonGrowthPerRunMiB: number[];
  /** RSS samples taken (every `sampleEveryMs`, plus one at the end of each transfer) and the longest gap between two. */
  samples: number;
  maxSampleGapMs: number;
}

export interface CaseOnSystem {
  upload: Throughput;
  download: Throughput;
  memory: { upload: MemoryWindow; download: MemoryWindow };
  /** Downloads whose bytes had the file's size and sha256. */
  verified: number;
  mismatches: number;
  /** Requests (upload, part, create, complete, download, delete) whose connection the server dropped (ECONNRESET, socket hang up); each was sent again. */
  dropped: number;
  droppedSample: string[];
}

export interface AttachmentCase {
  name: string;
  bytes: number;
  mode: "one request" | "multipart";
  /** Multipart only: parts, and how many were in flight at once. */
  parts?: number;
  partConcurrency?: number;
  edgechat: CaseOnSystem;
  baseline: CaseOnSystem;
  "bare-r2": CaseOnSystem;
  /** edgechat median MB/s / baseline median MB/s. */
  uploadVsBaseline: number;
  downloadVsBaseline: number;
  /** edgechat median MB/s / bare R2 Worker median MB/s (same local R2: edgechat's own share). */
  uploadVsBareR2: number;
  downloadVsBareR2: number;
}

export interface AttachmentsResult {
  reps: number;
  cases: AttachmentCase[];
  /** RSS of each serving process (edgechat's workerd, the bare R2 Worker's workerd, the Node baseline) at start, after a warm-up upload, and at the end. */
  rss: Record<FileSystemName, { startMiB: number; afterWarmupMiB: number; endMiB: number }>;
  /** Time to the 413 answer for uploads declaring `declaredBytes` whose body never comes. */
  refuse: { declaredBytes: number; requests: number; answered: number; statuses: number[]; ms: LatencySummary; codes: string[] };
  /** Where each system keeps the bytes and what it waits for before answering an upload. */
  notes: Record<FileSystemName, string>;
  problems: string[];
}

const MiB = 1024 * 1024;
const MB = 1_000_000;
const REQUEST_TIMEOUT_MS = 300_000;
const WRITE_CHUNK = MiB;

// ---------------------------------------------------------------------------------------------------
// One HTTP client for both systems (node:http, keep-alive). Upload bodies are written from memory in
// 1 MiB slices with backpressure; downloads are counted as they arrive and hashed after the clock stops.

interface Reply {
  status: number;
  body: Buffer;
}

function send(agent: http.Agent, url: string, method: string, headers: Record<string, string | number>, body?: Buffer): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, reply?: Reply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(reply!);
    };
    const req = http.request(url, { method, agent, headers: body ? { ...headers, "Content-Length": body.length } : headers });
    const timer = setTimeout(() => {
      req.destroy();
      finish(new Error(`${method} ${url}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    let answered = false;
    let ended = false;
    req.on("response", (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        // Answered before the whole body was sent: this connection is not reusable.
        if (!ended) req.destroy();
        finish(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
      res.on("error", (e) => finish(e));
    });
    req.on("error", (e) => finish(annotate(e, req)));
    if (!body) {
      ended = true;
      req.end();
      return;
    }
    void (async () => {
      for (let off = 0; off < body.length && !answered && !done; off += WRITE_CHUNK) {
        const ok = req.write(body.subarray(off, Math.min(off + WRITE_CHUNK, body.length)));
        if (!ok) await drained(req);
      }
      // An early answer (an error before the body was read) ends the request where it is.
      if (!answered && !done) {
        ended = true;
        req.end();
      }
    })();
  });
}

/** Whether the failed request went out on a kept-alive connection that had carried an earlier request. */
function annotate(e: Error, req: http.ClientRequest): Error {
  (e as Error & { reusedSocket?: boolean }).reusedSocket = req.reusedSocket;
  return e;
}

/** Until the request can take more body (or is gone). */
function drained(req: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      req.off("drain", done);
      req.off("close", done);
      resolve();
    };
    req.on("drain", done);
    req.on("close", done);
  });
}

async function sendJson<T>(agent: http.Agent, url: string, method: string, headers: Record<string, string | number>, body?: unknown): Promise<T> {
  const raw = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const r = await send(agent, url, method, raw ? { ...headers, "Content-Type": "application/json" } : headers, raw);
  if (r.status >= 300) throw new Error(`${method} ${url.replace(/^https?:\/\/[^/]+/, "")} -> ${r.status} ${r.body.toString("utf8").slice(0, 300)}`);
  return (r.body.length ? JSON.parse(r.body.toString("utf8")) : null) as T;
}

/** GET the bytes; the clock stops at the last byte; size and sha256 are computed after it. */
function download(agent: http.Agent, url: string, headers: Record<string, string>): Promise<{ status: number; seconds: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method: "GET", agent, headers });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url}: not done in ${REQUEST_TIMEOUT_MS / 1000} s`)), REQUEST_TIMEOUT_MS);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const seconds = (performance.now() - t0) / 1000;
        clearTimeout(timer);
        const h = createHash("sha256");
        let bytes = 0;
        for (const c of chunks) {
          h.update(c);
          bytes += c.length;
        }
        resolve({ status: res.statusCode ?? 0, seconds, bytes, sha256: h.digest("hex") });
      });
      res.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(annotate(e, req));
    });
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------
// The two systems behind one shape: the routes differ, the client code is the one above.

interface FileApi {
  name: FileSystemName;
  pid: number;
  single(user: BenchUser, name: string, data: Buffer): Promise<string>;
  multipart(user: BenchUser, name: string, size: number): Promise<{ id: string; partSize: number; partCount: number }>;
  part(user: BenchUser, id: string, n: number, bytes: Buffer): Promise<{ partNumber: number; etag: string }>;
  complete(user: BenchUser, id: string, parts: { partNumber: number; etag: string }[]): Promise<void>;
  download(user: BenchUser, id: string): ReturnType<typeof download>;
  remove(user: BenchUser, id: string): Promise<void>;
}

const CONTENT_TYPE = "application/octet-stream";

function edgechatApi(agent: http.Agent, edge: RuntimeServer, conversationId: string): FileApi {
  const auth = (u: BenchUser) => ({ Authorization: `Bearer ${u.token}` });
  return {
    name: "edgechat",
    pid: edge.pid,
    async single(user, name, data) {
      const headers = { ...auth(user), "Content-Type": CONTENT_TYPE, "X-Attachment-Name": encodeURIComponent(name) };
      const r = await rawJson<{ attachment: { id: string; size: number } }>(agent, `${edge.url}/v1/conversations/${conversationId}/attachments`, "POST", headers, data);
      if (r.attachment.size !== data.length) throw new Error(`upload answered size ${r.attachment.size}, sent ${data.length}`);
      return r.attachment.id;
    },
    async multipart(user, name, size) {
      const r = await sendJson<{ attachment: { id: string }; partSize: number; partCount: number }>(agent, `${edge.url}/v1/conversations/${conversationId}/attachments/multipart`, "POST", auth(user), { name, size, contentType: CONTENT_TYPE });
      return { id: r.attachment.id, partSize: r.partSize, partCount: r.partCount };
    },
    part: (user, id, n, bytes) => rawJson(agent, `${edge.url}/v1/attachments/${id}/parts/${n}`, "PUT", auth(user), bytes),
    async complete(user, id, parts) {
      await sendJson(agent, `${edge.url}/v1/attachments/${id}/complete`, "POST", auth(user), { parts });
    },
    download: (user, id) => download(agent, `${edge.url}/v1/attachments/${id}`, auth(user)),
    async remove(user, id) {
      await sendJson(agent, `${edge.url}/v1/attachments/${id}`, "DELETE", auth(user));
    },
  };
}

/** The Node file server and the bare R2 Worker have the same routes (baselines/files.ts, bare/r2/worker.js). */
function plainApi(name: FileSystemName, agent: http.Agent, files: { url: string; pid: number }): FileApi {
  return {
    name,
    pid: files.pid,
    single: async (_u, _name, data) => (await rawJson<{ id: string }>(agent, `${files.url}/files`, "POST", { "Content-Type": CONTENT_TYPE }, data)).id,
    multipart: (_u, _name, size) => sendJson(agent, `${files.url}/files/multipart`, "POST", {}, { size }),
    part: (_u, id, n, bytes) => rawJson(agent, `${files.url}/files/${id}/parts/${n}`, "PUT", {}, bytes),
    async complete(_u, id, parts) {
      await sendJson(agent, `${files.url}/files/${id}/complete`, "POST", {}, { parts });
    },
    download: (_u, id) => download(agent, `${files.url}/files/${id}`, {}),
    async remove(_u, id) {
      await sendJson(agent, `${files.url}/files/${id}`, "DELETE", {});
    },
  };
}

/** A raw-bytes request whose answer is JSON. */
async function rawJson<T>(agent: http.Agent, url: string, method: string, headers: Record<string, string>, bytes: Buffer): Promise<T> {
  const r = await send(agent, url, method, headers, bytes);
  if (r.status >= 300) throw new Error(`${method} ${url.replace(/^https?:\/\/[^/]+/, "")} -> ${r.status} ${r.body.toString("utf8").slice(0, 300)}`);
  return JSON.parse(r.body.toString("utf8")) as T;
}

// ---------------------------------------------------------------------------------------------------

/** Sample a process's RSS every `everyMs` until the returned function is called. */
interface SamplerWindow {
  before: number;
  peak: number;
  anonBefore: number;
  anonPeak: number;
  samples: number;
  maxGapMs: number;
}

function rssSampler(pid: number, everyMs: number): () => SamplerWindow {
  const first = rssBreakdown(pid);
  const before = first.rss;
  const anonBefore = first.anon;
  let peak = before;
  let anonPeak = anonBefore;
  let samples = 0;
  let last = performance.now();
  let maxGapMs = 0;
  const take = () => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    try {
      const m = rssBreakdown(pid);
      peak = Math.max(peak, m.rss);
      anonPeak = Math.max(anonPeak, m.anon);
      samples++;
    } catch {
      // The process is gone; the transfer fails on its own and says why.
    }
  };
  const timer = setInterval(take, everyMs);
  return () => {
    clearInterval(timer);
    take();
    return { before, peak, anonBefore, anonPeak, samples, maxGapMs };
  };
}

function rethrow(where: string, err: unknown): never {
  const e = err as { code?: string; reusedSocket?: boolean; message?: string };
  throw new Error(`${where}: ${e.message ?? String(err)}${e.code ? ` (${e.code}${e.reusedSocket === undefined ? "" : e.reusedSocket ? ", reused connection" : ", new connection"})` : ""}`);
}

/** Run `fn` while sampling `pid`'s RSS into `tally` (the sampler stops whatever happens). */
async function sampled<T>(pid: number, everyMs: number, tally: MemoryTally, fn: () => Promise<T>): Promise<T> {
  const stop = rssSampler(pid, everyMs);
  let ok = false;
  try {
    const r = await fn();
    ok = true;
    return r;
  } finally {
    const w = stop();
    if (ok) tally.add(w);
  }
}

class MemoryTally {
  private first: number | null = null;
  private peak = 0;
  private growth = 0;
  private runs: number[] = [];
  private anonRuns: number[] = [];
  private samples = 0;
  private maxGap = 0;
  add(w: SamplerWindow): void {
    this.first ??= w.before;
    this.peak = Math.max(this.peak, w.peak);
    this.growth = Math.max(this.growth, w.peak - w.before);
    this.runs.push(w.peak - w.before);
    this.anonRuns.push(w.anonPeak - w.anonBefore);
    this.samples += w.samples;
    this.maxGap = Math.max(this.maxGap, w.maxGapMs);
  }
  summary(fileBytes: number): MemoryWindow {
    return {
      rssBeforeMiB: round((this.first ?? 0) / MiB, 1),
      peakMiB: round(this.peak / MiB, 1),
      growthMiB: round(this.growth / MiB, 1),
      growthPerRunMiB: this.runs.map((x) => round(x / MiB, 1)),
      growthPercentOfFile: round((100 * this.growth) / fileBytes, 1),
      growthKibPerFileMB: round(this.growth / 1024 / (fileBytes / MB), 1),
      anonGrowthMiB: round(Math.max(0, ...this.anonRuns) / MiB, 1),
      anonGrowthPerRunMiB: this.anonRuns.map((x) => round(x / MiB, 1)),
      samples: this.samples,
      maxSampleGapMs: round(this.maxGap, 0),
    };
  }
}

function throughput(runs: number[]): Throughput {
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
  return { runs: runs.map((x) => round(x, 1)), median: round(mid, 1), min: round(s[0] ?? NaN, 1), max: round(s[s.length - 1] ?? NaN, 1) };
}

interface TestFile {
  label: string;
  data: Buffer;
  sha256: string;
}

function makeFile(bytes: number): TestFile {
  const data = randomBytes(bytes); // incompressible, like most large attachments
  return { label: `${round(bytes / MB, 1)} MB`, data, sha256: createHash("sha256").update(data).digest("hex") };
}

const MAX_RETRIES = 3;

/**
 * Send again when the connection was dropped, as the protocol tells clients to (13.2: "upload again";
 * 13.3: "send only the parts you have no answer for"; and as browsers do for a request whose kept-alive
 * connection closes before any answer), at most `MAX_RETRIES` times; every drop is counted in `drops`
 * (and reported): the time of the retried request stays in the measurement.
 */
async function retried<T>(what: string, drops: string[], fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isDroppedConnection(err) || attempt >= MAX_RETRIES) throw err;
      const e = err as { code?: string; reusedSocket?: boolean };
      drops.push(`${what}: ${e.code ?? String(err)}${e.reusedSocket ? " (reused connection)" : " (new connection)"}`);
    }
  }
}

/** Upload `file` (one request, or multipart with `concurrency` parts in flight); returns the id and seconds. */
async function upload(api: FileApi, user: BenchUser, file: TestFile, mode: "one request" | "multipart", concurrency: number, drops: string[]): Promise<{ id: string; seconds: number; parts?: number }> {
  const name = `bench ${file.label} ${mode}.bin`;
  const t0 = performance.now();
  if (mode === "one request") {
    const id = await retried(`${name}`, drops, () => api.single(user, name, file.data));
    return { id, seconds: (performance.now() - t0) / 1000 };
  }
  const { id, partSize, partCount } = await retried(`${name} create`, drops, () => api.multipart(user, name, file.data.length));
  const numbers = Array.from({ length: partCount }, (_, i) => i + 1);
  const parts = await pMap(numbers, concurrency, (n) =>
    retried(`${name} part ${n}`, drops, () => api.part(user, id, n, file.data.subarray((n - 1) * partSize, Math.min(n * partSize, file.data.length)))),
  );
  await retried(`${name} complete`, drops, () => api.complete(user, id, parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag }))));
  return { id, seconds: (performance.now() - t0) / 1000, parts: partCount };
}

/**
 * Uploads declaring `declared` bytes whose body never comes: the time from sending the headers (and
 * 64 KiB of body) to the status line. Raw TCP, so nothing in the client waits for the body to drain.
 */
async function refuseOversized(edge: RuntimeServer, user: BenchUser, conversationId: string, declared: number): Promise<{ status: number; ms: number; code: string }> {
  const { hostname, port } = new URL(edge.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let text = "";
    let t0 = 0;
    let status = 0;
    let ms = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to a ${declared}-byte declared upload in 10 s (status line ${status ? "seen" : "not seen"})`));
    }, 10_000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status, ms, code: /"code"\s*:\s*"([a-z_]+)"/.exec(text)?.[1] ?? /"error"\s*:\s*"([a-z_]+)"/.exec(text)?.[1] ?? "?" });
    };
    socket.on("connect", () => {
      const head =
        `POST /v1/conversations/${conversationId}/attachments HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
        `Authorization: Bearer ${user.token}\r\nContent-Type: ${CONTENT_TYPE}\r\nX-Attachment-Name: too-big.bin\r\n` +
        `Content-Length: ${declared}\r\n\r\n`;
      t0 = performance.now();
      socket.write(head);
      socket.write(Buffer.alloc(64 * 1024));
    });
    socket.on("data", (c: Buffer) => {
      if (!status) {
        ms = performance.now() - t0;
        text += c.toString("latin1");
        status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      } else text += c.toString("latin1");
      // Wait briefly for the error body (the code), not for the connection to end.
      if (/\r\n\r\n[\s\S]*\}/.test(text)) done();
    });
    socket.on("close", () => {
      if (status) done();
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      if (status) done();
      else reject(e);
    });
  });
}

export async function runAttachments(ctx: BenchContext): Promise<AttachmentsResult> {
  const p = ctx.params.s9;
  const problems: string[] = [];
  const small = makeFile(p.smallBytes);
  const large = makeFile(p.largeBytes);
  const edge = p.ownRuntime ? await startEdgechat({ bundle: ctx.bundle, vars: ctx.params.serverVars }) : ctx.edge;
  const files = await startFileServer();
  const bare = await startBareR2();
  const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(4, p.partConcurrency) });
  const pids: Record<FileSystemName, number> = { baseline: files.pid, "bare-r2": bare.pid, edgechat: edge.pid };
  const rssNow = () => Object.fromEntries(FILE_SYSTEMS.map((s) => [s, rssBytes(pids[s])])) as Record<FileSystemName, number>;
  try {
    const startRss = rssNow();
    // One uploader per rep: each part counts against the per-user upload limit (60 requests a minute),
    // which is policy and stays on. users[0] owns the conversation and does the warm-up and the 413s.
    const users = await createUsers(edge.url, p.reps + 1, `s9${uniqueTag()}`);
    const conversationId = await createGroup(edge.url, users[0]!, users, "s9 attachments");
    const apis: Record<FileSystemName, FileApi> = { baseline: plainApi("baseline", agent, files), "bare-r2": plainApi("bare-r2", agent, bare), edgechat: edgechatApi(agent, edge, conversationId) };

    // Warm-up (not recorded): one small upload + download on each, so the first measured transfer does
    // not pay for compiling the routes or opening the R2 bucket's database.
    const warm = makeFile(Math.min(1 * MB, p.smallBytes));
    for (const s of FILE_SYSTEMS) {
      const { id } = await upload(apis[s], users[0]!, warm, "one request", 1, []);
      const d = await apis[s].download(users[0]!, id);
      if (d.sha256 !== warm.sha256) problems.push(`${s} warm-up download differs from the upload`);
      await apis[s].remove(users[0]!, id);
    }
    await sleep(500);
    const warmRss = rssNow();

    const plan: { name: string; file: TestFile; mode: "one request" | "multipart" }[] = [
      { name: `${small.label}, one request`, file: small, mode: "one request" },
      { name: `${large.label}, one request`, file: large, mode: "one request" },
      { name: `${large.label}, multipart (${p.partConcurrency} parts at a time)`, file: large, mode: "multipart" },
    ];
    const cases: AttachmentCase[] = [];
    for (const c of plan) {
      const acc = Object.fromEntries(
        FILE_SYSTEMS.map((s) => [s, { up: [] as number[], down: [] as number[], memUp: new MemoryTally(), memDown: new MemoryTally(), verified: 0, mismatches: 0, parts: 0, drops: [] as string[] }]),
      ) as Record<FileSystemName, { up: number[]; down: number[]; memUp: MemoryTally; memDown: MemoryTally; verified: number; mismatches: number; parts: number; drops: string[] }>;
      // Reps interleave the systems (baseline, edgechat, baseline, ...) so both see the same minutes.
      for (let rep = 0; rep < p.reps; rep++) {
        for (const s of FILE_SYSTEMS) {
          const api = apis[s];
          const a = acc[s];
          const user = users[rep + 1]!;
          const where = `${s}, ${c.name}, rep ${rep + 1}`;
          const up = await sampled(api.pid, p.sampleEveryMs, a.memUp, () => upload(api, user, c.file, c.mode, p.partConcurrency, a.drops)).catch((e: unknown) => rethrow(`${where}, upload`, e));
          a.up.push(c.file.data.length / MB / up.seconds);
          a.parts = up.parts ?? 0;
          await sleep(200);
          const down = await sampled(api.pid, p.sampleEveryMs, a.memDown, () => retried(`download`, a.drops, () => api.download(user, up.id))).catch((e: unknown) => rethrow(`${where}, download`, e));
          a.down.push(down.bytes / MB / down.seconds);
          if (down.status === 200 && down.bytes === c.file.data.length && down.sha256 === c.file.sha256) a.verified++;
          else {
            a.mismatches++;
            problems.push(`${s} ${c.name} rep ${rep + 1}: download status ${down.status}, ${down.bytes} bytes of ${c.file.data.length}, sha256 ${down.sha256 === c.file.sha256 ? "equal" : "differs"}`);
          }
          await retried(`delete`, a.drops, () => api.remove(user, up.id)).catch((e: unknown) => rethrow(`${where}, delete`, e));
          await sleep(200);
        }
      }
      const sys = (s: FileSystemName): CaseOnSystem => ({
        upload: throughput(acc[s].up),
        download: throughput(acc[s].down),
        memory: { upload: acc[s].memUp.summary(c.file.data.length), download: acc[s].memDown.summary(c.file.data.length) },
        verified: acc[s].verified,
        mismatches: acc[s].mismatches,
        dropped: acc[s].drops.length,
        droppedSample: acc[s].drops.slice(0, 5),
      });
      const e = sys("edgechat");
      const b = sys("baseline");
      const r2 = sys("bare-r2");
      const x: AttachmentCase = {
        name: c.name,
        bytes: c.file.data.length,
        mode: c.mode,
        ...(c.mode === "multipart" ? { parts: acc.edgechat.parts, partConcurrency: p.partConcurrency } : {}),
        edgechat: e,
        baseline: b,
        "bare-r2": r2,
        uploadVsBaseline: round(e.upload.median / b.upload.median, 2),
        downloadVsBaseline: round(e.download.median / b.download.median, 2),
        uploadVsBareR2: round(e.upload.median / r2.upload.median, 2),
        downloadVsBareR2: round(e.download.median / r2.download.median, 2),
      };
      cases.push(x);
      log(
        `s9 ${c.name}: upload ${e.upload.median} MB/s (baseline ${b.upload.median}, ${x.uploadVsBaseline}x; bare R2 Worker ${r2.upload.median}), ` +
          `download ${e.download.median} MB/s (baseline ${b.download.median}, ${x.downloadVsBaseline}x; bare R2 Worker ${r2.download.median}); ` +
          `workerd RSS growth up ${e.memory.upload.growthMiB} MiB (bare R2 ${r2.memory.upload.growthMiB}), down ${e.memory.download.growthMiB} MiB (bare R2 ${r2.memory.download.growthMiB}); ` +
          `dropped connections: edgechat ${e.dropped}, bare R2 ${r2.dropped}, baseline ${b.dropped}`,
      );
    }

    // Oversized declared length, body stalled: answered from the headers alone?
    const refuseMs = new Latency();
    const statuses: number[] = [];
    const codes: string[] = [];
    for (let i = 0; i < p.refuseRequests; i++) {
      try {
        const r = await refuseOversized(edge, users[0]!, conversationId, p.refuseDeclaredBytes);
        statuses.push(r.status);
        codes.push(r.code);
        if (r.status === 413) refuseMs.record(r.ms);
        else problems.push(`declared ${p.refuseDeclaredBytes} bytes: answered ${r.status} ${r.code}, not 413`);
      } catch (err) {
        statuses.push(0);
        problems.push(`declared ${p.refuseDeclaredBytes} bytes: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const refuse = { declaredBytes: p.refuseDeclaredBytes, requests: p.refuseRequests, answered: refuseMs.count, statuses, ms: refuseMs.summary(), codes: [...new Set(codes)] };
    log(`s9 413 for a declared ${p.refuseDeclaredBytes / MB} MB body that never comes: p50 ${refuse.ms.p50} ms, max ${refuse.ms.max} ms (${refuse.answered}/${refuse.requests})`);
    await sleep(200);
    const end = rssNow();
    const mib = (x: number) => round(x / MiB, 1);
    return {
      reps: p.reps,
      cases,
      rss: Object.fromEntries(FILE_SYSTEMS.map((s) => [s, { startMiB: mib(startRss[s]), afterWarmupMiB: mib(warmRss[s]), endMiB: mib(end[s]) }])) as AttachmentsResult["rss"],
      refuse,
      notes: {
        edgechat:
          "Worker -> R2 binding -> Miniflare's local R2 (a Durable Object in the same workerd process; metadata in its SQLite, bytes written as files by workerd's disk service); an upload is answered after R2's put (or complete) returns. RSS = the whole workerd process: Worker, conversation object and R2 simulator.",
        "bare-r2":
          "a Worker on its own workerd process with the same local R2 (bare/r2/worker.js): request.body straight into put / uploadPart, object.body straight out; no auth, no Durable Object, no JS stream; same routes as the baseline. What any Worker pays for the local R2.",
        baseline:
          "plain Node http server (baselines/files.ts, own process): the body piped to fs.createWriteStream (flush: true), answered after 'finish', fsync and close; downloads via fs.createReadStream. Multipart: parts written at their offset in one file, each fsynced. No auth, no metadata.",
      },
      problems,
    };
  } finally {
    agent.destroy();
    await Promise.all([p.ownRuntime ? edge.stop() : undefined, files.stop(), bare.stop()]);
  }
}
