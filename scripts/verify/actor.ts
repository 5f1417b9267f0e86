// One client's membership in one conversation for the workload: its socket (connecting with `since` = the
// last seq seen, the frames it receives, resuming after a drop), what it sends (message and change
// frames, resends of everything unacked), and its run loop, where the faults are injected: disconnects,
// lost acks, abandoned sends, duplicate resends, slow consumers, waits under rate limits. What it asks for
// is its ActorPlan's (plan.ts); everything it observes goes into its MemberStream and records.
import WebSocket from "ws";
import type { AckRecord, ChangeRecord, EntryRecord, IncidentRecord, MemberStream, MessageRecord, SendRecord, SessionRecord } from "./checker.ts";
import { mintUser, sleep, type User } from "./net.ts";
import { ActorPlan, isChange, type Outgoing } from "./plan.ts";
import type { WorkloadOptions } from "./workload.ts";

/** Error codes after which the same clientMsgId is sent again after a wait (protocol 3.2, 10). */
const RETRYABLE = new Set(["rate_limited", "unavailable", "internal_error"]);

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
export class Actor {
  readonly stream: MemberStream;
  readonly sends: SendRecord[];
  readonly changes: ChangeRecord[];
  /** Unacked, still to be (re)sent until acked (or, for a change, refused for good). */
  private readonly pending = new Map<string, Outgoing>();
  private readonly byId = new Map<string, Outgoing>();
  private readonly plan: ActorPlan;
  private ws: WebSocket | null = null;
  private session: SessionRecord | null = null;
  private lastSeen = 0;
  private epoch: string | null = null;
  private live = false;
  private wake: (() => void) | null = null;
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
    budget: number,
    private readonly random: () => number,
    private readonly incidents: IncidentRecord[],
    tag: string,
    isOwner: boolean,
  ) {
    this.stream = { conversationId, userId: user.id, sessions: [] };
    this.plan = new ActorPlan({
      conversationId,
      userId: user.id,
      tag,
      budget,
      mix: opts.mix,
      isOwner,
      random,
      track: (r) => {
        this.byId.set(r.clientMsgId, r);
        this.pending.set(r.clientMsgId, r);
      },
    });
    this.sends = this.plan.sends;
    this.changes = this.plan.changes;
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
          if (!isChange(s) && !frame.duplicate) this.plan.ownMessageAcked(frame.seq);
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
    this.plan.settled(r);
  }

  private receive(session: SessionRecord, m: EntryRecord) {
    session.messages.push(pick(m));
    this.plan.observe(m);
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
        this.incident("timeout", `gave up with ${this.pending.size} unacked and ${this.plan.unsent} unsent messages`);
        return;
      }
      if (this.plan.done && this.pending.size === 0) return;
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
      } else if (roll < (p += f.lostAck) && !this.plan.done) {
        // Send, then drop once the frame is on the wire, before its ack can be read: the server
        // stores it and acks into a dead socket. The resend after reconnect must not duplicate it.
        await this.transmit(this.plan.nextOutgoing(1 + Math.floor(this.random() * 3)));
        await this.drop(true);
        await this.reconnect();
      } else if (roll < (p += f.abandon) && !this.plan.done) {
        // Same, but the message (or change) is never resent: it may be stored, but at most once.
        const [r] = this.plan.nextOutgoing(1);
        await this.transmit(r ? [r] : []);
        if (r) {
          this.settle(r);
          r.abandoned = true;
          // Whether that reaction was stored is unknown now.
          this.plan.abandoned(r);
        }
        await this.drop(true);
        await this.reconnect();
      } else if (roll < (p += f.duplicate) && this.sends.length > 0) {
        // A resend of an old clientMsgId: a message, or a change (about as often as changes are made).
        const old = this.plan.old();
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
      } else if (this.pending.size < this.opts.window && !this.plan.done) {
        void this.transmit(this.plan.nextOutgoing(this.random() < 0.3 ? 1 + Math.floor(this.random() * 10) : 1));
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
