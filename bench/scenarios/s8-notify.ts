// Scenario 8: live notifications. Recipients are connected ONLY on their user socket (GET /v1/me/ws,
// docs/protocol.md 12.1); one member sends to the conversation over its conversation socket, and we
// time how long each other member waits for an `inbox_update` that covers the message:
//   latency(recipient, message n) = arrival of the first inbox_update of that conversation whose
//   max(entry.lastSeq, entry.lastMessage.seq) >= seq(n), minus the send time of n.
// So one update that covers several messages (coalescing) counts for each of them, and a server that
// pushes one update per message is measured by the same rule. The body starts with the send time
// (performance.now() of this process), and every update's `lastMessage.preview` is checked against
// the body of the message with that seq. A message a recipient has not heard of `deadlineMs` after it
// was sent is `missed` (reported, not a failure); a malformed frame or a preview/sender that does not
// match its seq fails verification.
import { performance } from "node:perf_hooks";
import { BenchSocket, bearerProtocols, closeAll, conversationWsUrl, createDirect, createGroup, frameType, makeBody, openSockets, uniqueTag, userWsUrl } from "../lib/client.ts";
import { log } from "../lib/env.ts";
import type { NotifyParams } from "../lib/params.ts";
import { relayUrl } from "../lib/relays.ts";
import { Latency, round, type LatencySummary } from "../lib/stats.ts";
import { SYSTEMS, type BenchContext, type SystemName } from "../lib/systems.ts";
import { settle, sleepUntil } from "../lib/wait.ts";

export interface NotifyBlock {
  gapMs: number;
  /** Counted messages in this block. */
  messages: number;
  /** Per (recipient, message) heard within the deadline. */
  latency: LatencySummary;
  heard: number;
  /** recipients x messages. */
  expected: number;
  /** (recipient, message) pairs not covered by any inbox_update within the deadline. */
  missed: number;
  /**
   * Distinct inbox_update frames that were the first to cover some message, per (recipient, message):
   * 1 when every message gets its own update, ~0.15 when one update per second covers 150 ms gaps.
   */
  updatesPerMessage: number;
  /** Per message in send order, the median over recipients (ms; null if nobody heard it): shows the coalescing windows. */
  perMessageP50: (number | null)[];
}

export interface NotifyCase {
  members: number;
  recipients: number;
  connectMs: number;
  /** By gap, e.g. "150 ms" (keys are not numbers, so they keep the order they ran in). */
  blocks: Record<string, NotifyBlock>;
  /** inbox_update frames that are not JSON or lack the fields read here. Fails verification. */
  malformed: number;
  malformedSample?: string;
  /** inbox_update frames whose lastMessage (preview, senderId) is not the message with that seq. Fails verification. */
  mismatched: number;
  /** Sent messages never acked (seq unknown). Fails verification. */
  unacked: number;
  /** Recipient sockets that were closed under us before the end of the case. */
  recipientsClosed: number;
  error?: string;
}

/** By case: "direct", "20 members", ... */
export type NotifyResult = Record<string, Record<SystemName, NotifyCase>>;

export const caseKey = (c: string) => (c === "direct" ? "direct" : `${c} members`);
export const gapKey = (gapMs: number) => `${gapMs} ms`;

interface NotifyRoom {
  conversationId: string;
  senderId: string;
  senderUrl: string;
  recipientUrls: string[];
  recipientProtocols?: string[][];
}

let relayRooms = 0;

async function makeRoom(ctx: BenchContext, system: SystemName, members: number, direct: boolean): Promise<NotifyRoom> {
  if (system === "edgechat") {
    if (members > ctx.users.length) throw new Error(`need ${members} users, have ${ctx.users.length}`);
    const users = ctx.users.slice(0, members);
    const id = direct ? await createDirect(ctx.edge.url, users[0]!, users[1]!) : await createGroup(ctx.edge.url, users[0]!, users, "s8");
    return {
      conversationId: id,
      senderId: users[0]!.id,
      // No `since`: the sender's socket goes live at once (the direct conversation may already hold scenario 1's history).
      senderUrl: conversationWsUrl(ctx.edge.wsUrl, id, users[0]!.token),
      recipientUrls: users.slice(1).map(() => userWsUrl(ctx.edge.wsUrl)),
      recipientProtocols: users.slice(1).map((u) => bearerProtocols(u.token)),
    };
  }
  // Relay users are named after their room so one room's users never hear another room's messages.
  const server = system === "plain-relay" ? ctx.plain : ctx.durable;
  const room = `n${++relayRooms}`;
  const ids = Array.from({ length: members }, (_, i) => `${room}u${i}`);
  return {
    conversationId: room,
    senderId: ids[0]!,
    senderUrl: `${relayUrl(server.wsUrl, room, ids[0]!)}&members=${ids.join(",")}`,
    recipientUrls: ids.slice(1).map((u) => `${server.wsUrl}/?user=${u}&inbox=1`),
  };
}

/** edgechat's preview rule (docs/protocol.md 12.2, InboxEntry.lastMessage.preview). */
export function previewOf(body: string): string {
  const t = body.replace(/\s+/g, " ").trim();
  return t.length <= 140 ? t : `${t.slice(0, 139)}\u2026`;
}

interface Update {
  conversationId: string;
  covers: number;
  last: { seq: number; senderId: string; preview: string } | null;
}

/** The fields of an inbox_update this scenario reads; null if any is missing or mistyped. */
function parseUpdate(data: Buffer): Update | null {
  let f: unknown;
  try {
    f = JSON.parse(data.toString("utf8"));
  } catch {
    return null;
  }
  const o = f as { totalUnread?: unknown; entry?: { conversationId?: unknown; lastSeq?: unknown; unread?: unknown; lastMessage?: unknown } };
  const e = o.entry;
  if (!e || typeof e !== "object" || typeof o.totalUnread !== "number") return null;
  if (typeof e.conversationId !== "string" || typeof e.lastSeq !== "number" || typeof e.unread !== "number") return null;
  const lm = e.lastMessage as { seq?: unknown; senderId?: unknown; preview?: unknown; createdAt?: unknown } | null | undefined;
  if (lm === undefined) return null;
  if (lm !== null && (typeof lm.seq !== "number" || typeof lm.senderId !== "string" || typeof lm.preview !== "string" || typeof lm.createdAt !== "number")) return null;
  const last = lm === null ? null : { seq: lm.seq as number, senderId: lm.senderId as string, preview: lm.preview as string };
  return { conversationId: e.conversationId, covers: Math.max(e.lastSeq, last?.seq ?? 0), last };
}

/** lastSeq out of an inbox_update without parsing it (on arrival, to know when everyone has heard). */
function quickLastSeq(data: Buffer): number {
  const i = data.indexOf('"lastSeq":');
  return i < 0 ? -1 : parseInt(data.toString("latin1", i + 10, i + 30), 10);
}

export async function notifyCase(room: NotifyRoom, members: number, p: NotifyParams, bodyBytes: number): Promise<NotifyCase> {
  const r = room.recipientUrls.length;
  const total = p.warmup + p.gaps.reduce((a, g) => a + g.messages, 0);
  const sentAt = new Float64Array(total);
  const bodies: string[] = new Array(total);
  const seqOf = new Float64Array(total).fill(-1);
  const blockOf = new Int32Array(total).fill(-1);
  const arrivals: { at: number; data: Buffer }[][] = Array.from({ length: r }, () => []);
  const heardSeq = new Float64Array(r).fill(-1);
  const needle = Buffer.from(`"conversationId":${JSON.stringify(room.conversationId)}`);

  const t0 = performance.now();
  const recipients = await openSockets(
    room.recipientUrls,
    64,
    (i) => (data, at) => {
      arrivals[i]!.push({ at, data });
      if (frameType(data) === "inbox_update" && data.includes(needle)) {
        const s = quickLastSeq(data);
        if (s > heardSeq[i]!) heardSeq[i] = s;
      }
    },
    "hello",
    room.recipientProtocols ? (i) => room.recipientProtocols![i] : undefined,
  );
  let sender: BenchSocket;
  try {
    [sender] = (await openSockets([room.senderUrl], 1)) as [BenchSocket];
  } catch (err) {
    await closeAll(recipients);
    throw err;
  }
  const connectMs = performance.now() - t0;
  // A direct conversation is reused each time the scenario runs: fresh clientMsgIds, or they are duplicates.
  const idPrefix = `n${uniqueTag()}-`;
  sender.onFrame = (data) => {
    if (frameType(data) !== "ack") return;
    const f = JSON.parse(data.toString("utf8")) as { clientMsgId: string; seq: number; duplicate?: boolean };
    if (!f.clientMsgId.startsWith(idPrefix) || f.duplicate) return;
    seqOf[Number(f.clientMsgId.slice(idPrefix.length))] = f.seq;
  };

  let recipientsClosed = 0;
  let k = 0;
  let lastSendAt = performance.now();
  const send = (block: number) => {
    const body = makeBody(0, k, bodyBytes);
    bodies[k] = body;
    sentAt[k] = Number(body.slice(0, body.indexOf("|")));
    blockOf[k] = block;
    sender.send(JSON.stringify({ type: "send", clientMsgId: `${idPrefix}${k}`, body }));
    lastSendAt = performance.now();
    k++;
  };
  // Until every recipient has heard of the last message sent (or its deadline passed).
  const drain = () => {
    const last = k - 1;
    return settle(() => seqOf[last]! >= 0 && heardSeq.every((s) => s >= seqOf[last]!), Math.max(0, lastSendAt + p.deadlineMs - performance.now()));
  };
  try {
    for (let i = 0; i < p.warmup; i++) send(-1);
    if (p.warmup) await drain();
    for (let b = 0; b < p.gaps.length; b++) {
      const g = p.gaps[b]!;
      await sleepUntil(lastSendAt + p.quietMs);
      const start = performance.now();
      for (let i = 0; i < g.messages; i++) {
        await sleepUntil(start + i * g.gapMs);
        send(b);
      }
      await drain();
    }
    // Acks of messages the recipients never heard of may still be on their way.
    await settle(() => seqOf.every((s) => s >= 0), 2_000);
  } finally {
    recipientsClosed = recipients.filter((s) => s.ws.readyState !== 1).length;
    await closeAll([sender, ...recipients]);
  }

  // Afterwards: parse, check and time every update.
  const nOfSeq = new Map<number, number>();
  for (let n = 0; n < total; n++) if (seqOf[n]! >= 0) nOfSeq.set(seqOf[n]!, n);
  const lat = p.gaps.map(() => new Latency());
  const heard = p.gaps.map(() => 0);
  const missed = p.gaps.map(() => 0);
  const covering = p.gaps.map(() => 0);
  const perMessage: number[][] = Array.from({ length: total }, () => []);
  let malformed = 0;
  let malformedSample: string | undefined;
  let mismatched = 0;
  const counted: number[] = [];
  for (let n = 0; n < total; n++) if (blockOf[n]! >= 0 && seqOf[n]! >= 0) counted.push(n);
  for (let i = 0; i < r; i++) {
    const ups: { at: number; covers: number }[] = [];
    for (const a of arrivals[i]!) {
      if (frameType(a.data) !== "inbox_update") continue;
      const u = parseUpdate(a.data);
      if (!u) {
        malformed++;
        malformedSample ??= a.data.toString("utf8").slice(0, 300);
        continue;
      }
      if (u.conversationId !== room.conversationId) continue;
      if (u.last) {
        const n = nOfSeq.get(u.last.seq);
        if (n !== undefined && (u.last.preview !== previewOf(bodies[n]!) || u.last.senderId !== room.senderId)) mismatched++;
      }
      ups.push({ at: a.at, covers: u.covers });
    }
    // Messages in seq order; the first covering update only moves forward.
    let j = 0;
    let max = -1;
    let lastCover = -1;
    for (const n of counted) {
      const b = blockOf[n]!;
      while (max < seqOf[n]! && j < ups.length) max = Math.max(max, ups[j++]!.covers);
      const ms = max >= seqOf[n]! ? ups[j - 1]!.at - sentAt[n]! : Infinity;
      if (ms > p.deadlineMs) {
        missed[b]!++;
        continue;
      }
      lat[b]!.record(ms);
      perMessage[n]!.push(ms);
      heard[b]!++;
      if (j - 1 !== lastCover) {
        covering[b]!++;
        lastCover = j - 1;
      }
    }
  }
  const blocks: Record<string, NotifyBlock> = {};
  p.gaps.forEach((g, b) => {
    blocks[gapKey(g.gapMs)] = {
      gapMs: g.gapMs,
      messages: g.messages,
      latency: lat[b]!.summary(),
      heard: heard[b]!,
      expected: r * g.messages,
      // Unacked messages have no seq: they are neither heard nor missed here, and fail verification.
      missed: missed[b]!,
      updatesPerMessage: round(covering[b]! / Math.max(1, r * g.messages), 3),
      perMessageP50: counted.filter((n) => blockOf[n] === b).map((n) => median(perMessage[n]!)),
    };
  });
  return {
    members,
    recipients: r,
    connectMs: Math.round(connectMs),
    blocks,
    malformed,
    ...(malformedSample ? { malformedSample } : {}),
    mismatched,
    unacked: total - Array.from(seqOf).filter((s) => s >= 0).length,
    recipientsClosed,
  };
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return round(s[Math.floor((s.length - 1) / 2)]!, 1);
}

export async function runNotify(ctx: BenchContext): Promise<NotifyResult> {
  const p = ctx.params.s8;
  const out: NotifyResult = {};
  for (const c of p.cases) {
    const direct = c === "direct";
    const members = direct ? 2 : Number(c);
    const key = caseKey(c);
    out[key] = {} as Record<SystemName, NotifyCase>;
    for (const name of SYSTEMS) {
      let res: NotifyCase;
      try {
        const room = await makeRoom(ctx, name, members, direct);
        res = await notifyCase(room, members, p, ctx.params.bodyBytes);
        for (const [gap, b] of Object.entries(res.blocks))
          log(`s8 ${key} ${name} @${gap}: p50 ${b.latency.p50} ms p99 ${b.latency.p99} ms max ${b.latency.max} ms, heard ${b.heard}/${b.expected}, missed ${b.missed}, updates/msg ${b.updatesPerMessage}`);
      } catch (err) {
        const empty = new Latency().summary();
        const blocks: Record<string, NotifyBlock> = {};
        for (const g of p.gaps) blocks[gapKey(g.gapMs)] = { gapMs: g.gapMs, messages: g.messages, latency: empty, heard: 0, expected: (members - 1) * g.messages, missed: 0, updatesPerMessage: 0, perMessageP50: [] };
        res = { members, recipients: members - 1, connectMs: 0, blocks, malformed: 0, mismatched: 0, unacked: 0, recipientsClosed: 0, error: err instanceof Error ? err.message : String(err) };
        log(`s8 ${key} ${name} failed: ${res.error}`);
      }
      out[key]![name] = res;
    }
  }
  return out;
}
