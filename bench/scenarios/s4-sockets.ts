// Scenario 4: 10,000 open sockets across 1,000 conversations. Memory per socket of the runtime
// process (workerd RSS delta / sockets), against a bare object that only accepts hibernatable
// sockets, each on a fresh runtime so neither inherits the other's heap, both behind the same
// static-assets router. The sockets are opened as the SDK opens them next to its user socket
// (`presence=0`: no presence lease, no user object woken). Then the 1:1 latency while all sockets
// stay open.
import { closeAll, conversationWsUrl, createDirect, createGroup, createUsers, mustApi, openSockets, pMap, type BenchSocket } from "../lib/client.ts";
import { log, sleep } from "../lib/env.ts";
import { round } from "../lib/stats.ts";
import type { BenchContext } from "../lib/systems.ts";
import { BARE_PATH, rssBytes, startBare, startEdgechat } from "../lib/workerd.ts";
import { pacedPair, type PacedResult } from "./s1-latency.ts";

export interface MemoryResult {
  sockets: number;
  conversations: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  bytesPerSocket: number;
  kibPerSocket: number;
  connectSeconds: number;
}

export interface SocketsResult {
  /** Seconds between the last socket opening and the start of the latency probe. */
  probeStartedAfterConnectSeconds: number;
  edgechat: MemoryResult;
  /** Accepts and nothing else: the scenario's target is against this one. */
  bare: MemoryResult;
  /** Accepts and sends one welcome-sized frame: what the runtime keeps for a socket that has carried a frame. */
  bareFirstFrame: MemoryResult;
  overheadKibPerSocket: number;
  overheadAboveFirstFrameKibPerSocket: number;
  latencyWhileOpen: PacedResult;
}

const MiB = 1024 * 1024;

let connectedAt = 0;

async function measure(pid: number, urls: string[], conversations: number, settleMs: number, readyOn: "caught_up" | "open"): Promise<{ m: MemoryResult; sockets: BenchSocket[] }> {
  await sleep(settleMs);
  const before = rssBytes(pid);
  const t0 = Date.now();
  const sockets = await openSockets(urls, 100, () => null, readyOn);
  const connectSeconds = (Date.now() - t0) / 1000;
  connectedAt = Date.now();
  await sleep(settleMs);
  const after = rssBytes(pid);
  const per = (after - before) / urls.length;
  return {
    sockets,
    m: {
      sockets: urls.length,
      conversations,
      rssBeforeMiB: round(before / MiB, 1),
      rssAfterMiB: round(after / MiB, 1),
      bytesPerSocket: Math.round(per),
      kibPerSocket: round(per / 1024, 2),
      connectSeconds: round(connectSeconds, 2),
    },
  };
}

async function measureBare(p: BenchContext["params"]["s4"], welcome: boolean): Promise<MemoryResult> {
  const bare = await startBare();
  try {
    const names = Array.from({ length: p.conversations }, (_, c) => `c${c}`);
    // Wake every object first, so the delta below is sockets, not objects.
    await pMap(names, 16, async (o) => {
      const r = await fetch(`${bare.url}${BARE_PATH}?o=${o}`);
      await r.text();
    });
    const urls = names.flatMap((o) => Array.from({ length: p.socketsPerConversation }, () => `${bare.wsUrl}${BARE_PATH}?o=${o}${welcome ? "&welcome=1" : ""}`));
    const { m, sockets } = await measure(bare.pid, urls, p.conversations, p.settleMs, "open");
    log(`s4 bare${welcome ? " + one frame" : ""}: ${m.kibPerSocket} KiB/socket over ${m.sockets} sockets`);
    await closeAll(sockets);
    return m;
  } finally {
    await bare.stop();
  }
}

export async function runSockets(ctx: BenchContext): Promise<SocketsResult> {
  const p = ctx.params.s4;
  const total = p.conversations * p.socketsPerConversation;

  // --- bare runtimes: accept only, then accept + one frame (each fresh)
  const bareResult = await measureBare(p, false);
  const bareFirstFrame = await measureBare(p, true);

  // --- edgechat on its own fresh runtime
  let edge = await startEdgechat({ bundle: ctx.bundle, vars: ctx.params.serverVars });
  try {
    const users = await createUsers(edge.url, p.users + 2, "s4");
    const probeA = users[p.users]!;
    const probeB = users[p.users + 1]!;
    const convs = await pMap(Array.from({ length: p.conversations }, (_, c) => c), 8, (c) => {
      const members = Array.from({ length: p.socketsPerConversation }, (_, j) => users[(c * p.socketsPerConversation + j) % p.users]!);
      return createGroup(edge.url, members[0]!, members, `s4-${c}`).then((id) => ({ id, members }));
    });
    const dm = await createDirect(edge.url, probeA, probeB);
    // Creating 1,000 groups wakes (and the runtime later evicts) thousands of objects: a heap the allocator
    // then reuses for the sockets, which hid up to ~40 KiB per socket from the delta. So the sockets are
    // measured on a fresh process over the same storage, like the bare runtimes.
    edge = await edge.restart();
    // Wake every object (describe) right before the "before" snapshot, as for the bare runtime.
    await pMap(convs, 16, (c) => mustApi(edge.url, "GET", `/v1/conversations/${c.id}`, { token: c.members[0]!.token }));
    const urls = convs.flatMap((c) => c.members.map((u) => conversationWsUrl(edge.wsUrl, c.id, u.token)));
    const { m, sockets } = await measure(edge.pid, urls, p.conversations, p.settleMs, "caught_up");
    log(`s4 edgechat: ${m.kibPerSocket} KiB/socket over ${m.sockets} sockets`);
    const warm = Math.min(100, Math.floor(p.probeMessages / 10));
    const probeStart = Date.now();
    const latency = await pacedPair(
      [conversationWsUrl(edge.wsUrl, dm, probeA.token), conversationWsUrl(edge.wsUrl, dm, probeB.token)],
      p.probeRatePerSec,
      p.probeMessages,
      warm,
      ctx.params.bodyBytes,
    );
    log(`s4 latency with ${total} open: p50 ${latency.delivery.p50} p99 ${latency.delivery.p99}`);
    const stillOpen = sockets.filter((s) => s.ws.readyState === 1).length;
    if (stillOpen !== total) log(`s4 warning: ${total - stillOpen} sockets closed during the probe`);
    await closeAll(sockets);
    return {
      probeStartedAfterConnectSeconds: round((probeStart - connectedAt) / 1000, 1),
      edgechat: m,
      bare: bareResult,
      bareFirstFrame,
      overheadKibPerSocket: round(m.kibPerSocket - bareResult.kibPerSocket, 2),
      overheadAboveFirstFrameKibPerSocket: round(m.kibPerSocket - bareFirstFrame.kibPerSocket, 2),
      latencyWhileOpen: latency,
    };
  } finally {
    await edge.stop();
  }
}
