// The workload of `npm run verify`: N clients in M conversations send uniquely identified messages
// over real WebSockets while faults are injected on the client side:
//   - random disconnects (clean close or abrupt drop) and reconnects with `since` = last seq seen;
//   - duplicate resends of a clientMsgId already sent (acked or not);
//   - lost acks: the socket is dropped right after a send, before its ack can arrive, then the
//     message is resent on the new socket (or, now and then, abandoned and never resent);
//   - slow consumers: a socket stops reading for a while (TCP backpressure on the server).
// Besides messages, actors change messages (protocol 15): edit and delete their own acked messages (a group's
// owner also deletes others'), react and take reactions back; now and then on purpose to a message already
// deleted, a reaction already so, or another's message by a member, whose documented answers (message_deleted,
// forbidden, duplicate acks) are recorded for the checker to judge. Changes ride the same faults.
// Everything observed is recorded in an ObservationLog for the checker.
//
// This file is the run: the options, the users and conversations it creates, one actor per membership
// (actor.ts: the socket, the faults; plan.ts: what it asks for), the final catch-up. REST: net.ts.
import type { IncidentRecord, ObservationLog } from "./checker.ts";
import { Actor } from "./actor.ts";
import { http, mintUser, type User } from "./net.ts";

export { http } from "./net.ts";
export { pick } from "./actor.ts";
export { EMOJI } from "./plan.ts";

export interface WorkloadOptions {
  url: string;
  adminSecret: string;
  messages: number;
  clients: number;
  conversations: number;
  /** Conversations each client joins (each conversation still gets at least two members). */
  membershipsPerClient: number;
  seed: number;
  /** Fault probabilities per step of an actor. */
  faults: FaultRates;
  /** Max unacked messages per actor before it waits. */
  window: number;
  /** Relative weights of what an actor does: sends (messages) and changes (edits, deletes, reactions). */
  mix: Mix;
  /** Give up (and report a timeout incident) after this long. */
  deadlineMs: number;
  log?: (line: string) => void;
}

export interface FaultRates {
  disconnect: number;
  lostAck: number;
  abandon: number;
  duplicate: number;
  slowConsumer: number;
}

export interface Mix {
  sends: number;
  edits: number;
  deletes: number;
  reactions: number;
}

/** 70% messages, 30% changes. `--messages` counts the messages; the changes come on top, in this proportion. */
export const DEFAULT_MIX: Mix = { sends: 70, edits: 8, deletes: 4, reactions: 18 };

export const DEFAULT_FAULTS: FaultRates = { disconnect: 0.01, lostAck: 0.01, abandon: 0.002, duplicate: 0.03, slowConsumer: 0.005 };

export interface Workload {
  log: ObservationLog;
  conversationIds: string[];
  /** Tokens of one member per conversation (its owner), to read history afterwards. */
  readers: Map<string, string>;
  /** Every member of each conversation with a current token, to read history as each of them (`me`). */
  members: Map<string, { userId: string; token: string }[]>;
  stats: { durationMs: number; reconnects: number; slowPauses: number; rateLimited: number };
}

/** mulberry32: small, fast, seedable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runWorkload(opts: WorkloadOptions): Promise<Workload> {
  const say = opts.log ?? (() => {});
  const random = rng(opts.seed);
  const started = Date.now();
  const deadline = started + opts.deadlineMs;
  const run = `v${started.toString(36)}${Math.floor(random() * 1296).toString(36)}`;
  if (opts.clients < 2) throw new Error("--clients must be at least 2");

  const users: User[] = [];
  for (let i = 0; i < opts.clients; i += 16) {
    const batch = Array.from({ length: Math.min(16, opts.clients - i) }, (_, j) => mintUser(opts, `${run}_${i + j}`));
    users.push(...(await Promise.all(batch)));
  }

  // Membership: client i joins conversations i, i+1, ... (mod M); every conversation gets >= 2 members.
  const members: User[][] = Array.from({ length: opts.conversations }, () => []);
  const per = Math.min(opts.membershipsPerClient, opts.conversations);
  users.forEach((u, i) => {
    for (let k = 0; k < per; k++) members[(i + k) % opts.conversations]!.push(u);
  });
  members.forEach((list, c) => {
    for (let k = 0; list.length < 2; k++) {
      const u = users[(c + k + 1) % users.length]!;
      if (!list.includes(u)) list.push(u);
    }
  });

  const conversationIds: string[] = [];
  const readers = new Map<string, string>();
  for (const [c, list] of members.entries()) {
    const [owner, ...rest] = list;
    const r = await http<{ conversation: { id: string } }>(opts.url, "POST", "/v1/conversations", {
      token: owner!.token,
      body: { type: "group", title: `verify ${run} #${c}`, memberIds: rest.map((u) => u.id) },
    });
    if (r.status !== 201) throw new Error(`creating conversation ${c} failed: ${r.status} ${JSON.stringify(r.body)}`);
    conversationIds.push(r.body.conversation.id);
    readers.set(r.body.conversation.id, owner!.token);
  }

  const actors: Actor[] = [];
  const incidents: IncidentRecord[] = [];
  const totalActors = members.reduce((n, l) => n + l.length, 0);
  let assigned = 0;
  members.forEach((list, c) => {
    list.forEach((u, i) => {
      const budget = Math.floor((opts.messages * (actors.length + 1)) / totalActors) - assigned;
      assigned += budget;
      actors.push(new Actor(opts, u, conversationIds[c]!, budget, rng(Math.floor(random() * 2 ** 31)), incidents, `${u.id.slice(run.length + 1)}c${c}`, i === 0));
    });
  });
  const m = opts.mix;
  say(`workload: ${opts.clients} clients, ${opts.conversations} conversations, ${actors.length} member sockets, ${opts.messages} messages, mix sends ${m.sends} / edits ${m.edits} / deletes ${m.deletes} / reactions ${m.reactions}, seed ${opts.seed}`);

  const progress = setInterval(() => {
    const sent = actors.reduce((n, a) => n + a.sends.length, 0);
    const acked = actors.reduce((n, a) => n + a.sends.filter((s) => s.acks.length > 0).length, 0);
    const changed = actors.reduce((n, a) => n + a.changes.length, 0);
    const answered = actors.reduce((n, a) => n + a.changes.filter((c) => c.acks.length > 0 || c.errors.length > 0).length, 0);
    say(`  ... ${sent} sent, ${acked} acked; ${changed} changes, ${answered} answered; ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }, 5000);
  try {
    await Promise.all(actors.map((a) => a.run(deadline)));
    // Everyone must end up having seen the whole stream of each of its conversations.
    for (const cid of conversationIds) {
      const r = await http<{ conversation: { lastSeq: number } }>(opts.url, "GET", `/v1/conversations/${cid}`, { token: readers.get(cid)! });
      if (r.status !== 200) throw new Error(`describing ${cid} failed: ${r.status}`);
      await Promise.all(actors.filter((a) => a.stream.conversationId === cid).map((a) => a.catchUp(r.body.conversation.lastSeq, deadline + 30_000)));
    }
  } finally {
    clearInterval(progress);
    await Promise.all(actors.map((a) => a.close()));
  }

  return {
    log: { sends: actors.flatMap((a) => a.sends), changes: actors.flatMap((a) => a.changes), streams: actors.map((a) => a.stream), conversations: [], incidents },
    conversationIds,
    readers,
    members: new Map(conversationIds.map((cid) => [cid, actors.filter((a) => a.stream.conversationId === cid).map((a) => ({ userId: a.userId, token: a.token }))])),
    stats: {
      durationMs: Date.now() - started,
      reconnects: actors.reduce((n, a) => n + a.reconnects, 0),
      slowPauses: actors.reduce((n, a) => n + a.slowPauses, 0),
      rateLimited: actors.reduce((n, a) => n + a.rateLimited, 0),
    },
  };
}
