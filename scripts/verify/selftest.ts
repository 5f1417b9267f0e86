// Proof that the checker can fail: a clean synthetic observation log must pass, and each doctored
// copy (one planted fault each) must be reported with the right kind of violation.
import { check, type MessageRecord, type ObservationLog, type ViolationKind } from "./checker.ts";

/** Two members, one conversation, `n` messages, all acked, all delivered, all archived. */
export function cleanLog(n = 30): ObservationLog {
  const cid = "g_selftest";
  const users = ["alice", "bob"];
  const history: MessageRecord[] = [];
  const sends: ObservationLog["sends"] = [];
  for (let seq = 1; seq <= n; seq++) {
    const senderId = users[seq % 2]!;
    const m: MessageRecord = { seq, id: `m_${seq}`, senderId, clientMsgId: `c${seq}`, body: `body ${seq}` };
    history.push(m);
    sends.push({ conversationId: cid, senderId, clientMsgId: m.clientMsgId, body: m.body, attempts: 1, acks: [{ seq, id: m.id, duplicate: false }], abandoned: false });
  }
  const half = Math.floor(n / 2);
  return {
    sends,
    streams: users.map((userId) => ({
      conversationId: cid,
      userId,
      // Each member reconnects once halfway, resuming with since.
      sessions: [
        { since: 0, welcome: { epoch: "E", lastSeq: 0, reset: false }, messages: history.slice(0, half).map((m) => ({ ...m })) },
        { since: half, welcome: { epoch: "E", lastSeq: half, reset: false }, messages: history.slice(half).map((m) => ({ ...m })) },
      ],
    })),
    conversations: [{ conversationId: cid, epoch: "E", lastSeq: n, history: history.map((m) => ({ ...m })), d1: history.map((m) => ({ ...m })) }],
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
