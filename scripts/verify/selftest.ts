// Proof that the checker can fail: a clean synthetic observation log must pass, and each doctored
// copy (one planted fault each) must be reported with the right kind of violation.
import { check, type ChangeRecord, type EntryRecord, type ObservationLog, type SendRecord, type ViolationKind } from "./checker.ts";

/** A conversation as the server keeps it, to build consistent logs: entries in their current state. */
class Model {
  readonly entries: EntryRecord[] = [];
  /** (seq, emoji) → who has it. */
  readonly who = new Map<string, Set<string>>();
  /** What the sockets received live: each entry as it was appended. */
  readonly live: EntryRecord[] = [];
  readonly sends: SendRecord[] = [];
  readonly changes: ChangeRecord[] = [];
  constructor(
    readonly cid: string,
    readonly owner: string,
  ) {}

  #append(e: Omit<EntryRecord, "seq" | "id" | "createdAt">): EntryRecord {
    const seq = this.entries.length + 1;
    const entry: EntryRecord = { ...e, seq, id: `m_${seq}`, createdAt: 1000 + seq };
    this.entries.push(entry);
    this.live.push(structuredClone(entry));
    return entry;
  }

  #ack(entry: EntryRecord, duplicate = false) {
    return { seq: entry.seq, id: entry.id, duplicate };
  }

  send(senderId: string): EntryRecord {
    const clientMsgId = `c${this.sends.length + 1}`;
    const body = `[${clientMsgId}] body ${this.sends.length + 1}`;
    const e = this.#append({ senderId, clientMsgId, body });
    this.sends.push({ conversationId: this.cid, senderId, clientMsgId, body, attempts: 1, acks: [this.#ack(e)], abandoned: false });
    return e;
  }

  #record(senderId: string, request: ChangeRecord["request"], intent: ChangeRecord["intent"] = "fresh"): ChangeRecord {
    const r: ChangeRecord = { conversationId: this.cid, senderId, senderIsOwner: senderId === this.owner, clientMsgId: `x${this.changes.length + 1}`, request, intent, attempts: 1, acks: [], errors: [], abandoned: false };
    this.changes.push(r);
    return r;
  }

  edit(senderId: string, seq: number, body: string): void {
    const r = this.#record(senderId, { type: "edit", seq, body });
    const t = this.entries[seq - 1]!;
    const version = (t.edited?.version ?? 1) + 1;
    for (const e of this.entries) if (e.change?.type === "edit" && e.change.target === seq) this.#redact(e);
    const e = this.#append({ senderId, clientMsgId: r.clientMsgId, body: `* ${body}`, change: { type: "edit", target: seq, version, body } });
    t.body = body;
    t.edited = { at: e.createdAt!, version };
    r.acks.push(this.#ack(e));
  }

  #redact(e: EntryRecord) {
    if (e.change?.type !== "edit") return;
    e.body = "* (edited)";
    e.change = { type: "edit", target: e.change.target, version: e.change.version };
  }

  delete(senderId: string, seq: number): void {
    const r = this.#record(senderId, { type: "delete", seq });
    for (const e of this.entries) if (e.change?.type === "edit" && e.change.target === seq) this.#redact(e);
    const e = this.#append({ senderId, clientMsgId: r.clientMsgId, body: "(deleted a message)", change: { type: "delete", target: seq } });
    const t = this.entries[seq - 1]!;
    this.entries[seq - 1] = { seq, id: t.id, senderId: t.senderId, clientMsgId: t.clientMsgId, body: "", createdAt: t.createdAt, deleted: { at: e.createdAt!, by: senderId } };
    for (const k of [...this.who.keys()]) if (k.startsWith(`${seq} `)) this.who.delete(k);
    r.acks.push(this.#ack(e));
  }

  react(senderId: string, seq: number, emoji: string, on: boolean): void {
    const r = this.#record(senderId, { type: "react", seq, emoji, on });
    const set = this.who.get(`${seq} ${emoji}`) ?? new Set<string>();
    this.who.set(`${seq} ${emoji}`, set);
    if (on) set.add(senderId);
    else set.delete(senderId);
    const e = this.#append({ senderId, clientMsgId: r.clientMsgId, body: `${on ? "reacted" : "took back"} ${emoji}`, change: { type: "reaction", target: seq, emoji, on, count: set.size } });
    const t = this.entries[seq - 1]!;
    const rest = (t.reactions ?? []).filter((x) => x.emoji !== emoji);
    if (set.size > 0) rest.push({ emoji, count: set.size });
    if (rest.length) t.reactions = rest;
    else delete t.reactions;
    r.acks.push(this.#ack(e));
  }

  /** A change answered without storing anything: a documented error, or a duplicate ack naming an entry. */
  answered(senderId: string, request: ChangeRecord["request"], intent: ChangeRecord["intent"], answer: { error: string } | { duplicateOf: number }): void {
    const r = this.#record(senderId, request, intent);
    if ("error" in answer) r.errors.push(answer.error);
    else r.acks.push({ seq: answer.duplicateOf, id: answer.duplicateOf ? `m_${answer.duplicateOf}` : "", duplicate: true });
  }

  /** Every entry in its current state, as `reader` reads it (`me` on its reactions), or without `me`. */
  read(reader?: string): EntryRecord[] {
    return this.entries.map((e) => {
      const c = structuredClone(e);
      if (c.reactions && reader) c.reactions = c.reactions.map((r) => ({ ...r, me: this.who.get(`${c.seq} ${r.emoji}`)?.has(reader) ?? false }));
      return c;
    });
  }
}

/**
 * Two members (alice owns the group), one conversation of 30 entries: 18 messages and 12 changes (edits, a
 * superseded edit, deletes by the sender and by the owner, reactions on and off), plus 6 changes answered
 * without storing (documented errors, duplicate acks); all acked, all delivered, all archived. Each member
 * receives the first half live and the rest as a backlog read at the end (messages in their current state,
 * followed by the older changes that led there: 15.6).
 */
export function cleanLog(): ObservationLog {
  const users = ["alice", "bob"];
  const m = new Model("g_selftest", "alice");
  for (let i = 1; i <= 12; i++) m.send(users[i % 2]!); // odd seqs bob, even seqs alice
  m.edit("bob", 1, "[x-a] first edit of 1"); // 13
  m.react("alice", 1, "👍", true); // 14
  m.react("bob", 1, "👍", true); // 15
  m.edit("bob", 1, "[x-b] second edit of 1"); // 16: seq 13 loses its body
  m.delete("alice", 2); // 17: her own
  m.react("bob", 3, "🎉", true); // 18
  m.react("bob", 3, "🎉", false); // 19
  m.react("alice", 3, "👍", true); // 20
  m.edit("bob", 7, "[x-c] edit of 7"); // 21
  m.delete("alice", 7); // 22: the owner deletes bob's (and its edit entry loses its body)
  for (let i = 0; i < 4; i++) m.send(users[i % 2]!); // 23-26
  m.react("bob", 1, "👍", false); // 27
  m.edit("bob", 9, "[x-d] edit of 9"); // 28
  m.send("alice"); // 29
  m.send("bob"); // 30
  m.answered("alice", { type: "edit", seq: 2, body: "[x-e] too late" }, "own_deleted", { error: "message_deleted" });
  m.answered("bob", { type: "react", seq: 7, emoji: "👍", on: true }, "others_deleted", { error: "message_deleted" });
  m.answered("bob", { type: "delete", seq: 4 }, "forbidden", { error: "forbidden" });
  m.answered("bob", { type: "delete", seq: 2 }, "others_deleted", { duplicateOf: 17 });
  m.answered("alice", { type: "react", seq: 3, emoji: "👍", on: true }, "already", { duplicateOf: 20 });
  m.answered("alice", { type: "react", seq: 1, emoji: "🎉", on: false }, "already", { duplicateOf: 0 });

  const half = 15;
  const history = m.read("alice");
  return {
    sends: m.sends,
    changes: m.changes,
    streams: users.map((userId) => ({
      conversationId: m.cid,
      userId,
      sessions: [
        { since: 0, welcome: { epoch: "E", lastSeq: 0, reset: false }, messages: m.live.slice(0, half).map((e) => structuredClone(e)) },
        { since: half, welcome: { epoch: "E", lastSeq: half, reset: false }, messages: m.read(userId).slice(half) },
      ],
    })),
    conversations: [
      {
        conversationId: m.cid,
        epoch: "E",
        lastSeq: m.entries.length,
        history,
        d1: m.read(),
        memberHistories: Object.fromEntries(users.map((u) => [u, m.read(u)])),
      },
    ],
    incidents: [],
  };
}

export interface Plant {
  name: string;
  expect: ViolationKind;
  doctor(log: ObservationLog): void;
}

const conv = (log: ObservationLog) => log.conversations[0]!;
const bobLast = (log: ObservationLog) => log.streams[1]!.sessions[1]!.messages;
/** The same doctoring in every read of the server's state: history, each member's read and D1 (the server's own mistake). */
const everyRead = (log: ObservationLog, f: (e: EntryRecord) => void) => {
  const c = conv(log);
  const reads = [c.history, ...(c.d1 ? [c.d1] : []), ...Object.values(c.memberHistories ?? {})];
  for (const r of reads) r.forEach(f);
};

export const PLANTS: Plant[] = [
  {
    name: "a member receives one message twice (backlog overlaps live)",
    expect: "stream_duplicate",
    doctor: (log) => {
      const msgs = bobLast(log);
      msgs.splice(3, 0, { ...msgs[2]! });
    },
  },
  {
    name: "a member misses a message (gap between backlog and live)",
    expect: "stream_gap",
    doctor: (log) => void bobLast(log).splice(4, 1),
  },
  {
    name: "a member receives two messages swapped",
    expect: "stream_reorder",
    doctor: (log) => {
      const msgs = bobLast(log);
      [msgs[5], msgs[6]] = [msgs[6]!, msgs[5]!];
    },
  },
  {
    name: "a member sees another message at a seq than the server (divergent order)",
    expect: "stream_divergence",
    doctor: (log) => {
      const msgs = bobLast(log);
      msgs[1] = { ...msgs[1]!, id: "m_other", body: "not what the others saw" };
    },
  },
  {
    name: "an acked message is missing from the server",
    expect: "lost",
    doctor: (log) => {
      const c = conv(log);
      const victim = c.history.splice(9, 1)[0]!;
      // Renumber so that the loss is not also a history gap: it must still be caught as lost.
      for (const m of c.history) if (m.seq > victim.seq) m.seq--;
      c.lastSeq--;
      c.d1 = c.history.map((m) => ({ ...m }));
      log.streams = [];
    },
  },
  {
    name: "an acked message is stored twice",
    expect: "duplicate",
    doctor: (log) => {
      const c = conv(log);
      const copy = { ...c.history[3]!, seq: c.lastSeq + 1, id: "m_dup" };
      c.history.push(copy);
      c.d1!.push({ ...copy });
      c.lastSeq++;
      log.streams = [];
    },
  },
  {
    name: "a message whose ack was lost is stored twice",
    expect: "unacked_duplicate",
    doctor: (log) => {
      const c = conv(log);
      const s = log.sends[7]!;
      s.acks = [];
      s.abandoned = true;
      const copy = { ...c.history[7]!, seq: c.lastSeq + 1, id: "m_dup2" };
      c.history.push(copy);
      c.d1!.push({ ...copy });
      c.lastSeq++;
      log.streams = [];
    },
  },
  {
    name: "two acks for one clientMsgId name different seqs",
    expect: "ack_mismatch",
    doctor: (log) => void log.sends[2]!.acks.push({ seq: 99, id: "m_99", duplicate: true }),
  },
  {
    name: "the server stores a message nobody sent",
    expect: "phantom",
    doctor: (log) => {
      const c = conv(log);
      const m = { seq: c.lastSeq + 1, id: "m_ghost", senderId: "mallory", clientMsgId: "x", body: "boo" };
      c.history.push(m);
      c.d1!.push({ ...m });
      c.lastSeq++;
      log.streams = [];
    },
  },
  {
    name: "a stored body differs from the sent one",
    expect: "body_mismatch",
    doctor: (log) => void (log.sends[4]!.body = "changed in flight"),
  },
  {
    name: "history skips a seq",
    expect: "history_gap",
    doctor: (log) => void conv(log).history.splice(12, 1),
  },
  {
    name: "D1 never received a message",
    expect: "d1_missing",
    doctor: (log) => void conv(log).d1!.splice(0, 1),
  },
  {
    name: "D1 holds a message twice",
    expect: "d1_duplicate",
    doctor: (log) => void conv(log).d1!.push({ ...conv(log).d1![5]! }),
  },
  {
    name: "D1 holds a different message than the object at a seq",
    expect: "d1_mismatch",
    doctor: (log) => void (conv(log).d1![8]!.body = "rewritten in the archive"),
  },
  // ---- messages that change (protocol 15)
  {
    name: "the server applies two edits out of order (history serves the older body at the newer version)",
    expect: "state_divergence",
    doctor: (log) => everyRead(log, (e) => void (e.seq === 1 && (e.body = "[x-a] first edit of 1"))),
  },
  {
    name: "edit versions go backwards in the stream (edit entries swapped)",
    expect: "change_order",
    doctor: (log) => {
      const swap = (e: EntryRecord) => {
        if (e.change?.type === "edit" && e.change.target === 1) e.change.version = e.seq === 13 ? 3 : 2;
      };
      everyRead(log, swap);
      for (const st of log.streams) for (const ses of st.sessions) ses.messages.forEach(swap);
    },
  },
  {
    name: "a member misses a delete (its stream lacks the delete entry, the message stays alive for it)",
    expect: "state_divergence",
    doctor: (log) => void bobLast(log).splice(bobLast(log).findIndex((e) => e.seq === 22), 1),
  },
  {
    name: "history lost a delete (the delete entry is there, the message is served alive)",
    expect: "change_order",
    doctor: (log) =>
      everyRead(log, (e) => {
        if (e.seq !== 7) return;
        delete e.deleted;
        e.body = "[c7] body 7";
      }),
  },
  {
    name: "a reaction entry's count disagrees with who reacted",
    expect: "reaction_mismatch",
    doctor: (log) => {
      const bump = (e: EntryRecord) => {
        if (e.seq === 15 && e.change?.type === "reaction") e.change.count = 3;
      };
      everyRead(log, bump);
      for (const st of log.streams) for (const ses of st.sessions) ses.messages.forEach(bump);
    },
  },
  {
    name: "history's reaction count of a message disagrees with the reaction entries (and with every member)",
    expect: "reaction_mismatch",
    doctor: (log) =>
      everyRead(log, (e) => {
        if (e.seq === 1) e.reactions = e.reactions!.map((r) => ({ ...r, count: r.count + 1 }));
      }),
  },
  {
    name: "a member's history says `me` on a reaction it does not have",
    expect: "reaction_mismatch",
    doctor: (log) => {
      const m = conv(log).memberHistories!.bob!.find((e) => e.seq === 3)!;
      m.reactions = m.reactions!.map((r) => ({ ...r, me: true }));
    },
  },
  {
    name: "history serves a deleted message's body",
    expect: "deleted_body_served",
    doctor: (log) => everyRead(log, (e) => void (e.seq === 2 && (e.body = "[c2] body 2"))),
  },
  {
    name: "history serves an edit of a deleted message (the edit entry keeps its body)",
    expect: "deleted_body_served",
    doctor: (log) =>
      everyRead(log, (e) => {
        if (e.seq !== 21) return;
        e.body = "* [x-c] edit of 7";
        e.change = { type: "edit", target: 7, version: 2, body: "[x-c] edit of 7" };
      }),
  },
  {
    name: "D1 still holds a deleted message's body",
    expect: "deleted_body_served",
    doctor: (log) => void (conv(log).d1!.find((e) => e.seq === 7)!.body = "[c7] body 7"),
  },
  {
    name: "a member's stream carries an edit with another body than was sent",
    expect: "stream_divergence",
    doctor: (log) => {
      const e = log.streams[1]!.sessions[0]!.messages.find((x) => x.seq === 13)!;
      e.change = { type: "edit", target: 1, version: 2, body: "[x-z] not what bob sent" };
    },
  },
  {
    name: "a member deletes another's message and the server stores it",
    expect: "unexpected_answer",
    doctor: (log) => {
      const r = log.changes.find((c) => c.request.type === "delete" && c.request.seq === 7)!;
      r.senderIsOwner = false;
    },
  },
  {
    name: "a reaction to a live message is refused as message_deleted",
    expect: "unexpected_answer",
    doctor: (log) => void log.changes.push({ ...structuredClone(log.changes.find((c) => c.intent === "others_deleted" && c.request.type === "react")!), clientMsgId: "x99", request: { type: "react", seq: 5, emoji: "👍", on: true } }),
  },
  {
    name: "a duplicate delete ack names an entry that is not that message's delete",
    expect: "ack_mismatch",
    doctor: (log) => void (log.changes.find((c) => c.request.type === "delete" && c.intent === "others_deleted")!.acks[0]!.seq = 22),
  },
  {
    name: "a resuming client is told to reset",
    expect: "unexpected_reset",
    doctor: (log) => void (log.streams[0]!.sessions[1]!.welcome!.reset = true),
  },
];

export interface SelfTestResult {
  ok: boolean;
  lines: string[];
}

/** Runs the clean log and every plant; ok only if the clean log passes and every plant is caught. */
export function selfTest(): SelfTestResult {
  const lines: string[] = [];
  let ok = true;
  const clean = check(cleanLog());
  if (!clean.ok) {
    ok = false;
    lines.push(`FAIL clean log reported ${clean.violations.length} violation(s): ${clean.violations[0]?.detail}`);
  } else lines.push("ok   clean log: no violations");
  for (const plant of PLANTS) {
    const log = cleanLog();
    plant.doctor(log);
    const report = check(log);
    const caught = report.counts[plant.expect] > 0;
    if (!caught || report.ok) ok = false;
    lines.push(`${caught ? "ok  " : "FAIL"} ${plant.name}: expected ${plant.expect}, got ${Object.entries(report.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ") || "nothing"}`);
  }
  return { ok, lines };
}
