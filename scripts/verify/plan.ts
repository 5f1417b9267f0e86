// What one actor of the workload asks for, in order: its budget of messages (unique clientMsgIds, bodies of
// varied size and script) and its share of changes per the mix, spread over the run. A change is chosen
// from what the member has seen (its own acked messages, every message, the deletes); now and then, on
// purpose, one with a documented refusal (a deleted target, another's message, a reaction already so).
// Owns that knowledge and the records it creates (sends, changes); the socket side is actor.ts.
import type { ChangeRecord, EntryRecord, SendRecord } from "./checker.ts";
import type { Mix } from "./workload.ts";

/** The small emoji set of the workload: reactions collide, so counts above 1 and take-backs happen. */
export const EMOJI = ["👍", "🎉", "😂", "🔥"];

/** A clientMsgId in flight: a message, or a change. */
export type Outgoing = SendRecord | ChangeRecord;
export const isChange = (r: Outgoing): r is ChangeRecord => "request" in r;

interface PlanOptions {
  conversationId: string;
  userId: string;
  /** Prefix of this actor's clientMsgIds. */
  tag: string;
  /** Messages to send. */
  budget: number;
  mix: Mix;
  /** The group's owner (may delete anyone's message). */
  isOwner: boolean;
  random: () => number;
  /** A record was created: it is in flight from now on (the actor resends it until answered). */
  track: (r: Outgoing) => void;
}

export class ActorPlan {
  readonly sends: SendRecord[] = [];
  readonly changes: ChangeRecord[] = [];
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
  private next = 0;
  private readonly budget: number;
  private readonly random: () => number;

  constructor(private readonly o: PlanOptions) {
    this.budget = o.budget;
    this.random = o.random;
    const m = o.mix;
    const changeWeight = m.edits + m.deletes + m.reactions;
    this.changeTarget = m.sends > 0 ? Math.round((o.budget * changeWeight) / m.sends) : 0;
  }

  /** Every message sent and every change made (or given up). */
  get done(): boolean {
    return this.next >= this.budget && this.changesIssued >= this.changeTarget;
  }

  /** Messages not sent yet. */
  get unsent(): number {
    return this.budget - this.next;
  }

  /** An entry this member received: what it knows of the conversation grows. */
  observe(m: EntryRecord): void {
    if (!m.change) {
      if (!this.senderOf.has(m.seq)) this.seen.push(m.seq);
      this.senderOf.set(m.seq, m.senderId);
      if (m.deleted) this.deletedSeen.add(m.seq);
    } else if (m.change.type === "delete") this.deletedSeen.add(m.change.target);
  }

  /** One of its messages was acked (first time, stored now): a target for its edits and deletes. */
  ownMessageAcked(seq: number): void {
    this.ownAcked.push(seq);
  }

  /** A clientMsgId answered for good (or abandoned): its reaction key is free again. */
  settled(r: Outgoing): void {
    if (isChange(r) && r.request.type === "react") this.reactBusy.delete(`${r.request.seq} ${r.request.emoji}`);
  }

  /** A change abandoned after it was sent: whether that reaction was stored is unknown now. */
  abandoned(r: Outgoing): void {
    if (isChange(r) && r.request.type === "react") this.myReactions.delete(`${r.request.seq} ${r.request.emoji}`);
  }

  /** An old clientMsgId to resend: a message, or a change (about as often as changes are made). */
  old(): Outgoing {
    const pool: Outgoing[] = this.changes.length > 0 && this.random() * (this.changeTarget + this.budget) < this.changeTarget ? this.changes : this.sends;
    return pool[Math.floor(this.random() * pool.length)]!;
  }

  /** The next fresh thing to send: a change when it is its turn and one can be made, else 1..n messages. */
  nextOutgoing(n: number): Outgoing[] {
    if (this.changeTurn()) {
      const c = this.makeChange();
      if (c) return [c];
      // Nothing to change yet (or all busy); once the messages are all sent, give up the rest of the changes.
      if (this.next >= this.budget) this.changeTarget = this.changesIssued;
    }
    return this.fresh(n);
  }

  /** Is it a change's turn? Changes are spread over the run in proportion to the messages sent. */
  private changeTurn(): boolean {
    if (this.changesIssued >= this.changeTarget) return false;
    return this.next >= this.budget || this.changesIssued * this.budget <= this.next * this.changeTarget;
  }

  private fresh(n: number): SendRecord[] {
    const out: SendRecord[] = [];
    for (let i = 0; i < n && this.next < this.budget; i++) {
      const clientMsgId = `${this.o.tag}-${this.next++}`;
      // Bodies vary in size and include non-ASCII, so that body integrity is checked too.
      const body = `${clientMsgId} ${"x".repeat(Math.floor(this.random() * 64))}${this.random() < 0.1 ? " héllo 👋 日本" : ""}`;
      const r: SendRecord = { conversationId: this.o.conversationId, senderId: this.o.userId, clientMsgId, body, attempts: 0, acks: [], abandoned: false };
      this.sends.push(r);
      this.o.track(r);
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
    const m = this.o.mix;
    const roll = this.random() * (m.edits + m.deletes + m.reactions);
    const clientMsgId = `${this.o.tag}-x${this.changesIssued}`;
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
      const others = this.o.isOwner ? this.random() < 0.5 : this.random() < 0.1;
      if (others) seq = pickLive(this.seen.filter((s) => this.senderOf.get(s) !== this.o.userId));
      if (seq === undefined) seq = pickLive(this.ownAcked);
      if (seq === undefined) return null;
      const own = this.senderOf.get(seq) === this.o.userId || this.ownAcked.includes(seq);
      if (this.deletedSeen.has(seq)) intent = own ? "own_deleted" : "others_deleted";
      else if (!own && !this.o.isOwner) intent = "forbidden";
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
      conversationId: this.o.conversationId,
      senderId: this.o.userId,
      senderIsOwner: this.o.isOwner,
      clientMsgId,
      request,
      intent,
      attempts: 0,
      acks: [],
      errors: [],
      abandoned: false,
    };
    this.changes.push(r);
    this.o.track(r);
    return r;
  }
}
