// The three systems scenarios 1-3 drive side by side, behind one shape: "give me a room of n members
// and the URL each member connects with". Every system speaks the same frames.
import type { Params } from "./params.ts";
import type { RelayServer } from "./relays.ts";
import { relayUrl } from "./relays.ts";
import { bareRelayUrl, startBare, type Bundle, type RuntimeServer } from "./workerd.ts";
import { conversationWsUrl, createDirect, createGroup, waitForInboxes, type BenchUser } from "./client.ts";
import { openFilesMatching, waitForFilesClosed, waitForIdle } from "./cpu.ts";
import { log } from "./env.ts";

export type SystemName = "edgechat" | "durable-relay" | "plain-relay";
export const SYSTEMS: SystemName[] = ["plain-relay", "durable-relay", "edgechat"];

/**
 * The runtime's floor, reported beside the three systems in scenarios 1 and 3 (never a target): the durable
 * relay's room as a bare SQLite-backed object on its own runtime (bench/bare/worker.js `BareRelay`), behind the
 * same static-assets router as edgechat. What edgechat costs above it is edgechat's; the rest is the runtime's.
 */
export const FLOOR = "bare-object";
export type WithFloor<T> = Record<SystemName, T> & { [FLOOR]?: T };
/** The rows of scenarios 1 and 3: the three systems, then the floor. */
export const SYSTEMS_AND_FLOOR = [...SYSTEMS, FLOOR] as const;

/** Run `fn` with a fresh bare runtime; `room(n)` gives the socket URLs of a new room of n members. */
export async function onBareRelay<T>(fn: (room: (n: number) => string[]) => Promise<T>): Promise<T> {
  const bare = await startBare();
  try {
    return await fn((n) => {
      const id = `b${++roomCounter}`;
      return Array.from({ length: n }, (_, i) => bareRelayUrl(bare.wsUrl, id, `u${i}`));
    });
  } finally {
    await bare.stop();
  }
}

export interface System {
  name: SystemName;
  /** A room with `n` members; member 0 is the owner. `direct` asks for a 1:1 conversation (n = 2). */
  room(n: number, direct?: boolean): Promise<{ id: string; urls: string[] }>;
}

export interface BenchContext {
  params: Params;
  edge: RuntimeServer;
  /** Users on `edge`, minted up front; scenarios take slices. */
  users: BenchUser[];
  plain: RelayServer;
  durable: RelayServer;
  bundle: Bundle;
}

let roomCounter = 0;

export function systemsOf(ctx: BenchContext): Record<SystemName, System> {
  const relay = (name: SystemName, server: RelayServer): System => ({
    name,
    async room(n) {
      const id = `r${++roomCounter}`;
      return { id, urls: Array.from({ length: n }, (_, i) => relayUrl(server.wsUrl, id, `u${i}`)) };
    },
  });
  return {
    "plain-relay": relay("plain-relay", ctx.plain),
    "durable-relay": relay("durable-relay", ctx.durable),
    edgechat: {
      name: "edgechat",
      async room(n, direct = false) {
        if (n > ctx.users.length) throw new Error(`need ${n} users, have ${ctx.users.length}`);
        // Rotate through the pool so a 1:1 room does not reuse the previous room's pair.
        const members = ctx.users.slice(0, n);
        const id = await createSettledRoom(ctx.edge, members, { direct: direct && n === 2, tiny: ctx.params.mode === "tiny" });
        return { id, urls: members.map((u) => conversationWsUrl(ctx.edge.wsUrl, id, u.token, 0)) };
      },
    },
  };
}

/**
 * Create an edgechat room (a direct conversation, or a group of `members`, the first its owner) and return once its
 * creation is over. Creating a group writes every member's inbox once, in the background (the paced stored fan-out:
 * over a minute for 5,000 members on this machine). Time messages once that is done, as the relays have no such
 * work; otherwise a cell measures beside an earlier cell's creation (bench/README.md, session 9). Idle CPU alone is
 * not enough (session 12): the queue hands the fan-out over in batches up to a second apart, and the user objects it
 * woke close their databases in a wave some seconds later (a checkpoint and an fsync each, on the runtime's one
 * thread). So: sampled inboxes hold the group, those objects closed, then idle. `tiny` (the harness's own test)
 * checks counting, not latency: it waits at most 10 s, and not for the closes.
 */
export async function createSettledRoom(edge: { url: string; pid: number }, members: BenchUser[], opts: { direct: boolean; tiny: boolean }): Promise<string> {
  const userFiles = "edgechat-UserObject";
  const openBefore = openFilesMatching(edge.pid, userFiles);
  const id = opts.direct ? await createDirect(edge.url, members[0]!, members[1]!) : await createGroup(edge.url, members[0]!, members);
  const limitMs = opts.tiny ? 10_000 : 300_000;
  const seen = opts.direct ? { waitedMs: 0, done: true } : await waitForInboxes(edge.url, members, id, limitMs);
  const closed = opts.tiny || openBefore < 0 ? { waitedMs: 0, done: true } : await waitForFilesClosed(edge.pid, userFiles, openBefore, limitMs);
  const quiet = await waitForIdle(edge.pid, { quietMs: 1_000, busyBelow: 0.05, timeoutMs: limitMs });
  if (seen.waitedMs + closed.waitedMs + quiet.waitedMs > 2_000 || !seen.done || !closed.done || !quiet.idle) {
    log(
      `room of ${members.length}: sampled inboxes ${seen.done ? "hold it" : "still miss it"} after ${Math.round(seen.waitedMs / 1000)} s, ` +
        `user objects ${closed.done ? "closed" : "still open"} after ${Math.round(closed.waitedMs / 1000)} s, runtime ${quiet.idle ? "idle" : "still busy"} after ${Math.round(quiet.waitedMs / 1000)} s`,
    );
  }
  return id;
}
