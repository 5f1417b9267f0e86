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
import WebSocket from "ws";
import type { AckRecord, ChangeRecord, EntryRecord, IncidentRecord, MemberStream, MessageRecord, ObservationLog, SendRecord, SessionRecord } from "./checker.ts";

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

/** The small emoji set of the workload: reactions collide, so counts above 1 and take-backs happen. */
export const EMOJI = ["👍", "🎉", "😂", "🔥"];

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

/** A clientMsgId in flight: a message, or a change. */
type Outgoing = SendRecord | ChangeRecord;
const isChange = (r: Outgoing): r is ChangeRecord => "request" in r;
/** Error codes after which the same clientMsgId is sent again after a wait (protocol 3.2, 10). */
const RETRYABLE = new Set(["rate_limited", "unavailable", "internal_error"]);

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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function http<T>(base: string, method: string, path: string, init: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${base}${path}`, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
      const text = await res.text();
      // Transient trouble (rate limits, a restarting object) is retried; anything else is the caller's to judge.
      if ((res.status === 429 || res.status === 503) && attempt < 20) {
        await sleep(Number(res.headers.get("Retry-After") ?? "0.2") * 1000 || 200);
        continue;
      }
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(200 * (attempt + 1));
    }
  }
}

interface User {
  id: string;
  username: string;
  token: string;
}

async function mintUser(opts: WorkloadOptions, id: string): Promise<User> {
  const r = await http<{ user: { id: string; username: string }; accessToken: string }>(opts.url, "POST", "/v1/admin/tokens", {
    token: opts.adminSecret,
    body: { userId: id, username: id },
  });
  if (r.status !== 200) throw new Error(`minting ${id} failed: ${r.status} ${JSON.stringify(r.body)}`);
  // The run puts its own users in groups with each other: let it, whatever the deployment's default (protocol 13.1).
  const settings = await http(opts.url, "PATCH", "/v1/me/settings", { token: r.body.accessToken, body: { groupAdds: "anyone" } });
  if (settings.status !== 200) throw new Error(`settings of ${id} failed: ${settings.status} ${JSON.stringify(settings.body)}`);
  return { id: r.body.user.id, username: r.body.user.username, token: r.body.accessToken };
}

type ServerFrame =
  | { type: "welcome"; epoch: string; lastSeq: number; reset: boolean }
  | { type: "backlog"; messages: EntryRecord[] }
  | { type: "caught_up"; seq: number }
  | { type: "message"; message: EntryRecord }
  | { type: "ack"; clientMsgId: string; seq: number; id: string; duplicate: boolean }
  | { type: "error"; code: string; message: string; clientMsgId?: string; retryAfterMs?: number }
  | { type: "members_changed" }
  | { type: "pong" };

/** Close codes after which reconnecting with the same token is pointless (see src/protocol/errors.ts). */
const TERMINAL = new Set([4400, 4401, 4403, 4426]);
const TOKEN_EXPIRED = 4440;

/** The fields of an entry the checker compares (drops attachments, replies and the like). */
export function pick(m: EntryRecord): MessageRecord {
  const out: MessageRecord = { seq: m.seq, id: m.id, senderId: m.senderId, clientMsgId: m.clientMsgId, body: m.body };
  if (m.createdAt !== undefined) out.createdAt = m.createdAt;
  if (m.edited) out.edited = { at: m.edited.at, version: m.edited.version };
  if (m.deleted) out.deleted = { at: m.deleted.at, by: m.deleted.by };
  if (m.reactions?.length) out.reactions = m.reactions.map((r) => ({ emoji: r.emoji, count: r.count, ...(r.me !== undefined ? { me: r.me } : {}) }));
  if (m.change) out.change = structuredClone(m.change);
  return out;
}

/** One client's membership in one conversation: a socket, its stream, its sends. */
class Actor {
  readonly stream: MemberStream;
  readonly sends: SendRecord[] = [];
  readonly changes: ChangeRecord[] = [];
  /** Unacked, still to be (re)sent until acked (or, for a change, refused for good). */
  private readonly pending = new Map<string, Outgoing>();
  private readonly byId = new Map<string, Outgoing>();
  /** What this member knows of the conversation, for choosing changes: its own acked messages, every message seen, deletes seen. */
  private readonly ownAcked: number[] = [];
  private readonly seen: number[] = [];
  private readonly senderOf = new Map<number, string>();
  private readonly deletedSeen = new Set<number>();
  /** `${seq} ${emoji}` → whether this member last asked to have it; keys with a reaction in flight. */
  private readonly myReactions = new Map<string, boolean>();
  private readonly reactBusy = new Set<string>();
  private changesIssued = 0;
  private changeTarget: number;
  private ws: WebSocket | null = null;
  private session: SessionRecord | null = null;
  private lastSeen = 0;
  private epoch: string | null = null;
  private live = false;
  private wake: (() => void) | null = null;
  private next = 0;
  private blockedUntil = 0;
  /** clientMsgIds refused with rate_limited, to resend once the server's retryAfterMs has passed. */
  private readonly limited = new Set<string>();
  stopped = false;
  acked = 0;
  reconnects = 0;
  slowPauses = 0;
  rateLimited = 0;

  constructor(
    private readonly opts: WorkloadOptions,
    private user: User,
    private readonly conversationId: string,
    private readonly budget: number,
    private readonly random: () => number,
    private readonly incidents: IncidentRecord[],
    private readonly tag: string,
    private readonly isOwner: boolean,
  ) {
    this.stream = { conversationId, userId: user.id, sessions: [] };
    const m = opts.mix;
    const changeWeight = m.edits + m.deletes + m.reactions;
    this.changeTarget = m.sends > 0 ? Math.round((budget * changeWeight) / m.sends) : 0;
  }

  get userId(): string {
    return this.user.id;
  }

  get token(): string {
    return this.user.token;
  }

  private incident(kind: IncidentRecord["kind"], detail: string) {
    this.incidents.push({ kind, conversationId: this.conversationId, userId: this.user.id, detail });
  }

  private notify() {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private waitEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Open a socket resuming from lastSeen; resolves once the backlog is through (caught_up). */
  async connect(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      const params = new URLSearchParams({ v: "2", token: this.user.token, since: String(this.lastSeen) });
      if (this.epoch) params.set("epoch", this.epoch);
      const ws = new WebSocket(`${this.opts.url.replace(/^http/, "ws")}/v1/conversations/${this.conversationId}/ws?${params}`);
      const session: SessionRecord = { since: this.lastSeen, welcome: null, messages: [] };
      this.live = false;
      const outcome = await new Promise<"live" | { code: number; reason: string }>((resolve) => {
        let settled = false;
        const settle = (v: "live" | { code: number; reason: string }) => {
          if (!settled) {
            settled = true;
            resolve(v);
          }
        };
        ws.on("message", (data) => {
          if (this.ws !== ws && this.ws !== null) return;
          const frame = JSON.parse(data.toString()) as ServerFrame;
          if (frame.type === "caught_up") {
            this.live = true;
            settle("live");
          }
          this.onFrame(session, frame);
        });
        ws.on("close", (code, reason) => {
          if (this.ws === ws) {
            this.ws = null;
            this.live = false;
          }
          settle({ code, reason: reason.toString() });
          this.notify();
        });
        ws.on("error", () => {
          // A 'close' always follows.
        });
        this.ws = ws;
        this.session = session;
        this.stream.sessions.push(session);
      });
      if (outcome === "live") return;
      if (TERMINAL.has(outcome.code)) {
        this.incident("unexpected_close", `socket closed with terminal code ${outcome.code} (${outcome.reason})`);
        this.stopped = true;
        return;
      }
      if (outcome.code === TOKEN_EXPIRED) this.user = { ...this.user, token: (await mintUser(this.opts, this.user.id)).token };
      await sleep(Math.min(2000, 20 * 2 ** Math.min(attempt, 6)));
    }
  }

  private onFrame(session: SessionRecord, frame: ServerFrame) {
    switch (frame.type) {
      case "welcome":
        session.welcome = { epoch: frame.epoch, lastSeq: frame.lastSeq, reset: frame.reset };
        if (frame.reset) {
          // The server says our cursor is invalid; the checker flags it. Restart from the top.
          this.lastSeen = 0;
        }
        this.epoch = frame.epoch;
        break;
      case "backlog":
        for (const m of frame.messages) this.receive(session, m);
        break;
      case "message":
        this.receive(session, frame.message);
        break;
      case "ack": {
        const s = this.byId.get(frame.clientMsgId);
        if (!s) {
          this.incident("unexpected_error", `ack for unknown clientMsgId ${frame.clientMsgId}`);
          break;
        }
        const ack: AckRecord = { seq: frame.seq, id: frame.id, duplicate: frame.duplicate };
        if (s.acks.length === 0) {
          this.acked++;
          if (!isChange(s) && !frame.duplicate) this.ownAcked.push(frame.seq);
        }
        s.acks.push(ack);
        this.settle(s);
        this.notify();
        break;
      }
      case "error": {
        const r = frame.clientMsgId !== undefined ? this.byId.get(frame.clientMsgId) : undefined;
        if (frame.code === "rate_limited" || RETRYABLE.has(frame.code) || frame.retryAfterMs !== undefined) {
          // Not stored: it stays pending, and is resent (alone with the others refused) after the wait.
          if (frame.code === "rate_limited") this.rateLimited++;
          if (frame.clientMsgId) this.limited.add(frame.clientMsgId);
          this.blockedUntil = Math.max(this.blockedUntil, Date.now() + (frame.retryAfterMs ?? 500));
        } else if (r && isChange(r)) {
          // A final answer to a change (message_deleted, forbidden, ...): the checker judges whether it is the documented one.
          r.errors.push(frame.code);
          this.settle(r);
        } else this.incident("unexpected_error", `error frame ${frame.code}: ${frame.message}`);
        this.notify();
        break;
      }
      default:
        break;
    }
  }

  /** A clientMsgId answered for good: no longer pending; a reaction key is free again. */
  private settle(r: Outgoing) {
    this.pending.delete(r.clientMsgId);
    if (isChange(r) && r.request.type === "react") this.reactBusy.delete(`${r.request.seq} ${r.request.emoji}`);
  }

  private receive(session: SessionRecord, m: EntryRecord) {
    session.messages.push(pick(m));
    if (!m.change) {
      if (!this.senderOf.has(m.seq)) this.seen.push(m.seq);
      this.senderOf.set(m.seq, m.senderId);
      if (m.deleted) this.deletedSeen.add(m.seq);
    } else if (m.change.type === "delete") this.deletedSeen.add(m.change.target);
    if (m.seq > this.lastSeen) this.lastSeen = m.seq;
    this.notify();
  }

  /** Send records (single `send` or `send_batch` frames); resolves when the bytes are handed to the OS. */
  private transmit(all: Outgoing[]): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || all.length === 0) return Promise.resolve();
    for (const r of all) r.attempts++;
    const frames: string[] = [];
    const records: SendRecord[] = [];
    for (const r of all) {
      if (!isChange(r)) records.push(r);
      else if (r.request.type === "edit") frames.push(JSON.stringify({ type: "edit", clientMsgId: r.clientMsgId, seq: r.request.seq, body: r.request.body }));
      else if (r.request.type === "delete") frames.push(JSON.stringify({ type: "delete", clientMsgId: r.clientMsgId, seq: r.request.seq }));
      else frames.push(JSON.stringify({ type: "react", clientMsgId: r.clientMsgId, seq: r.request.seq, emoji: r.request.emoji, on: r.request.on }));
    }
    if (records.length === 0) {
      // changes only
    } else if (records.length === 1 && this.random() < 0.5) {
      const r = records[0]!;
      frames.push(JSON.stringify({ type: "send", clientMsgId: r.clientMsgId, body: r.body }));
    } else {
      for (let i = 0; i < records.length; i += 50) {
        const chunk = records.slice(i, i + 50);
        frames.push(JSON.stringify({ type: "send_batch", messages: chunk.map((r) => ({ clientMsgId: r.clientMsgId, body: r.body })) }));
      }
    }
    return Promise.all(frames.map((f) => new Promise<void>((resolve) => ws.send(f, () => resolve())))).then(() => {});
  }

  private fresh(n: number): SendRecord[] {
    const out: SendRecord[] = [];
    for (let i = 0; i < n && this.next < this.budget; i++) {
      const clientMsgId = `${this.tag}-${this.next++}`;
      // Bodies vary in size and include non-ASCII, so that body integrity is checked too.
      const body = `${clientMsgId} ${"x".repeat(Math.floor(this.random() * 64))}${this.random() < 0.1 ? " héllo 👋 日本" : ""}`;
      const r: SendRecord = { conversationId: this.conversationId, senderId: this.user.id, clientMsgId, body, attempts: 0, acks: [], abandoned: false };
      this.sends.push(r);
      this.byId.set(clientMsgId, r);
      this.pending.set(clientMsgId, r);
      out.push(r);
    }
    return out;
  }

  /** A target from `list`: half the time one of the newest (hot tail), else any (often archived in D1). */
  private choose(list: number[]): number | undefined {
    if (list.length === 0) return undefined;
    const from = this.random() < 0.5 ? Math.max(0, list.length - 20) : 0;
    return list[from + Math.floor(this.random() * (list.length - from))];
  }

  /** A new change (edit, delete or reaction) per the mix, or null when there is nothing suitable to change yet. */
  private makeChange(): ChangeRecord | null {
    const m = this.opts.mix;
    const roll = this.random() * (m.edits + m.deletes + m.reactions);
    const clientMsgId = `${this.tag}-x${this.changesIssued}`;
    let request: ChangeRecord["request"];
    let intent: ChangeRecord["intent"] = "fresh";
    // Mostly live targets; a message known to be deleted only now and then, on purpose (a documented answer).
    const pickLive = (list: number[]) => {
      for (let i = 0; i < 4; i++) {
        const seq = this.choose(list);
        if (seq === undefined) return undefined;
        if (!this.deletedSeen.has(seq) || this.random() < 0.1) return seq;
      }
      return undefined;
    };
    if (roll < m.edits) {
      const seq = pickLive(this.ownAcked);
      if (seq === undefined) return null;
      if (this.deletedSeen.has(seq)) intent = "own_deleted";
      const body = `${clientMsgId} edit of ${seq} ${"y".repeat(Math.floor(this.random() * 48))}${this.random() < 0.1 ? " édité ✏️" : ""}`;
      request = { type: "edit", seq, body };
    } else if (roll < m.edits + m.deletes) {
      let seq: number | undefined;
      const others = this.isOwner ? this.random() < 0.5 : this.random() < 0.1;
      if (others) seq = pickLive(this.seen.filter((s) => this.senderOf.get(s) !== this.user.id));
      if (seq === undefined) seq = pickLive(this.ownAcked);
      if (seq === undefined) return null;
      const own = this.senderOf.get(seq) === this.user.id || this.ownAcked.includes(seq);
      if (this.deletedSeen.has(seq)) intent = own ? "own_deleted" : "others_deleted";
      else if (!own && !this.isOwner) intent = "forbidden";
      request = { type: "delete", seq };
    } else {
      const seq = pickLive(this.seen);
      if (seq === undefined) return null;
      const emoji = EMOJI[Math.floor(this.random() * EMOJI.length)]!;
      const k = `${seq} ${emoji}`;
      // One reaction per (message, emoji) in flight: a reaction that stores nothing has no idempotency key, so
      // two in flight could be answered in either order (see the report).
      if (this.reactBusy.has(k)) return null;
      const have = this.myReactions.get(k) ?? false;
      const on = this.random() < 0.15 ? have : !have;
      if (this.deletedSeen.has(seq)) intent = "others_deleted";
      else if (on === have) intent = "already";
      this.myReactions.set(k, on);
      this.reactBusy.add(k);
      request = { type: "react", seq, emoji, on };
    }
    this.changesIssued++;
    const r: ChangeRecord = {
      conversationId: this.conversationId,
      senderId: this.user.id,
      senderIsOwner: this.isOwner,
      clientMsgId,
      request,
      intent,
      attempts: 0,
      acks: [],
      errors: [],
      abandoned: false,
    };
    this.changes.push(r);
    this.byId.set(clientMsgId, r);
    this.pending.set(clientMsgId, r);
    return r;
  }

  /** Is it a change's turn? Changes are spread over the run in proportion to the messages sent. */
  private changeTurn(): boolean {
    if (this.changesIssued >= this.changeTarget) return false;
    return this.next >= this.budget || this.changesIssued * this.budget <= this.next * this.changeTarget;
  }

  /** The next fresh thing to send: a change when it is its turn and one can be made, else 1..n messages. */
  private nextOutgoing(n: number): Outgoing[] {
    if (this.changeTurn()) {
      const c = this.makeChange();
      if (c) return [c];
      // Nothing to change yet (or all busy); once the messages are all sent, give up the rest of the changes.
      if (this.next >= this.budget) this.changeTarget = this.changesIssued;
    }
    return this.fresh(n);
  }

  private get done(): boolean {
    return this.next >= this.budget && this.changesIssued >= this.changeTarget;
  }

  /** Drop the socket: abrupt (no close handshake; frames in flight are lost) or clean. */
  private async drop(abrupt: boolean) {
    const ws = this.ws;
    if (!ws) return;
    const closed = new Promise<void>((r) => ws.once("close", () => r()));
    if (ws.readyState === WebSocket.CLOSED) return;
    if (abrupt) ws.terminate();
    else ws.close(1000, "verify: planned disconnect");
    await Promise.race([closed, sleep(5000)]);
    this.ws = null;
  }

  private async reconnect() {
    this.reconnects++;
    await this.connect();
    // After a reconnect, everything unacked is resent: the server must ack each exactly once.
    void this.transmit([...this.pending.values()]);
  }

  async run(deadline: number): Promise<void> {
    const f = this.opts.faults;
    await this.connect();
    let lastProgress = Date.now();
    while (!this.stopped) {
      if (Date.now() > deadline) {
        this.incident("timeout", `gave up with ${this.pending.size} unacked and ${this.budget - this.next} unsent messages`);
        return;
      }
      if (this.done && this.pending.size === 0) return;
      if (!this.ws || !this.live) {
        await this.reconnect();
        continue;
      }
      if (Date.now() < this.blockedUntil || this.limited.size > 0) {
        // Rate limited: send nothing new until the wait is over, then resend what was refused one
        // message per wait (resending them all at once would only be refused again).
        await sleep(Math.max(0, this.blockedUntil - Date.now()));
        const [id] = this.limited;
        if (id !== undefined) {
          this.limited.delete(id);
          const r = this.pending.get(id);
          if (r) void this.transmit([r]);
        }
        await this.waitEvent(50);
        continue;
      }
      const roll = this.random();
      let p = 0;
      if (roll < (p += f.disconnect)) {
        await this.drop(this.random() < 0.5);
        await this.reconnect();
      } else if (roll < (p += f.lostAck) && !this.done) {
        // Send, then drop once the frame is on the wire, before its ack can be read: the server
        // stores it and acks into a dead socket. The resend after reconnect must not duplicate it.
        await this.transmit(this.nextOutgoing(1 + Math.floor(this.random() * 3)));
        await this.drop(true);
        await this.reconnect();
      } else if (roll < (p += f.abandon) && !this.done) {
        // Same, but the message (or change) is never resent: it may be stored, but at most once.
        const [r] = this.nextOutgoing(1);
        await this.transmit(r ? [r] : []);
        if (r) {
          this.settle(r);
          r.abandoned = true;
          // Whether that reaction was stored is unknown now.
          if (isChange(r) && r.request.type === "react") this.myReactions.delete(`${r.request.seq} ${r.request.emoji}`);
        }
        await this.drop(true);
        await this.reconnect();
      } else if (roll < (p += f.duplicate) && this.sends.length > 0) {
        // A resend of an old clientMsgId: a message, or a change (about as often as changes are made).
        const pool: Outgoing[] = this.changes.length > 0 && this.random() * (this.changeTarget + this.budget) < this.changeTarget ? this.changes : this.sends;
        const old = pool[Math.floor(this.random() * pool.length)]!;
        // Not a reaction that stored nothing: it has no idempotency key, so a resend after a later reaction of
        // ours to the same message and emoji would be a new request (see the report).
        const unkeyed = isChange(old) && old.request.type === "react" && old.acks.length > 0 && old.acks.every((a) => a.duplicate);
        if (!old.abandoned && !unkeyed) void this.transmit([old]);
      } else if (roll < (p += f.slowConsumer)) {
        // Stop reading for a while: the server's sends back up in its buffers and TCP.
        this.slowPauses++;
        this.ws.pause();
        await sleep(100 + Math.floor(this.random() * 700));
        this.ws?.resume();
      } else if (this.pending.size < this.opts.window && !this.done) {
        void this.transmit(this.nextOutgoing(this.random() < 0.3 ? 1 + Math.floor(this.random() * 10) : 1));
      } else {
        const before = this.acked;
        await this.waitEvent(1500);
        if (this.acked > before) lastProgress = Date.now();
        else if (Date.now() - lastProgress > 3000 && this.pending.size > 0) {
          // No ack for a while on a socket that looks open: resend what is pending (idempotent).
          void this.transmit([...this.pending.values()]);
          lastProgress = Date.now();
        }
      }
    }
  }

  /** After the workload: be live and have seen every seq up to `lastSeq`. */
  async catchUp(lastSeq: number, deadline: number): Promise<void> {
    while (!this.stopped && this.lastSeen < lastSeq) {
      if (Date.now() > deadline) {
        this.incident("timeout", `final catch-up stopped at seq ${this.lastSeen} of ${lastSeq}`);
        return;
      }
      if (!this.ws || !this.live) await this.reconnect();
      else await this.waitEvent(1000);
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.drop(false);
  }
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
