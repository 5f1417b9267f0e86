// The checker of `npm run verify`: a pure function from what the workload observed to a list of
// violations. It knows nothing about sockets or servers, so it can be fed doctored logs (see
// selftest.ts) to prove that it fails when it should: a checker that cannot fail is worthless.

/** One chat message as a client or the history API saw it. */
export interface MessageRecord {
  seq: number;
  id: string;
  senderId: string;
  clientMsgId: string;
  body: string;
}

/** An ack as the sender received it. */
export interface AckRecord {
  seq: number;
  id: string;
  duplicate: boolean;
}

/** One message the workload generated (one clientMsgId), over all its send attempts. */
export interface SendRecord {
  conversationId: string;
  senderId: string;
  clientMsgId: string;
  body: string;
  /** Frames that carried it (first send + resends). */
  attempts: number;
  /** Every ack received for it, in arrival order. All must name the same seq and id. */
  acks: AckRecord[];
  /** Sent, then its ack was deliberately lost and it was never retried: it may be stored at most once. */
  abandoned: boolean;
}

/** One socket connection of a member: what it asked for and every chat message it received, in order. */
export interface SessionRecord {
  since: number | null;
  welcome: { epoch: string; lastSeq: number; reset: boolean } | null;
  messages: MessageRecord[];
}

/** Everything one member received in one conversation, over all its reconnects. */
export interface MemberStream {
  conversationId: string;
  userId: string;
  sessions: SessionRecord[];
}

/** The server's word on a conversation after the run. */
export interface ConversationTruth {
  conversationId: string;
  epoch: string;
  lastSeq: number;
  /** Every message read back through the history API (hot tail + D1 pages), any order. */
  history: MessageRecord[];
  /** Rows read from D1 directly; null when D1 could not be read directly (then only the API saw it). */
  d1: MessageRecord[] | null;
}

/** Things the workload itself saw go wrong (unexpected error frames, terminal closes, timeouts). */
export interface IncidentRecord {
  kind: "unexpected_error" | "unexpected_close" | "timeout";
  conversationId: string;
  userId: string;
  detail: string;
}

export interface ObservationLog {
  sends: SendRecord[];
  streams: MemberStream[];
  conversations: ConversationTruth[];
  incidents: IncidentRecord[];
}

export type ViolationKind =
  | "lost" // acked, but not in the server's history
  | "ack_mismatch" // two acks for one clientMsgId disagree, or the ack disagrees with history
  | "duplicate" // an acked message stored more than once
  | "unacked_duplicate" // a message never acked stored more than once
  | "phantom" // a message in history that no client sent
  | "body_mismatch" // stored body differs from the sent body
  | "history_gap" // history seqs are not exactly 1..lastSeq
  | "stream_gap" // a member never received some seq
  | "stream_duplicate" // a member received the same seq twice
  | "stream_reorder" // a member received a seq after a higher one
  | "stream_divergence" // a member saw a different message at some seq than the server's order
  | "unexpected_reset" // the server told a resuming client its cursor was invalid
  | "d1_missing"
  | "d1_duplicate"
  | "d1_mismatch"
  | "incident";

export interface Violation {
  kind: ViolationKind;
  conversationId: string;
  detail: string;
}

export interface Summary {
  conversations: number;
  members: number;
  /** Distinct messages generated (clientMsgIds). */
  sent: number;
  /** Frames carrying messages, resends included. */
  attempts: number;
  acked: number;
  /** Acks that said "already stored" (resends recognised by their clientMsgId). */
  duplicateAcks: number;
  unacked: number;
  abandoned: number;
  stored: number;
  lost: number;
  duplicated: number;
  reordered: number;
  gaps: number;
  divergent: number;
  d1Checked: boolean;
  d1Rows: number;
}

export interface Report {
  ok: boolean;
  summary: Summary;
  violations: Violation[];
  /** Count per kind (every kind present, zeros included), for tests and the printout. */
  counts: Record<ViolationKind, number>;
}

const ALL_KINDS: ViolationKind[] = [
  "lost",
  "ack_mismatch",
  "duplicate",
  "unacked_duplicate",
  "phantom",
  "body_mismatch",
  "history_gap",
  "stream_gap",
  "stream_duplicate",
  "stream_reorder",
  "stream_divergence",
  "unexpected_reset",
  "d1_missing",
  "d1_duplicate",
  "d1_mismatch",
  "incident",
];

const key = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

function sameMessage(a: MessageRecord, b: MessageRecord): boolean {
  return a.seq === b.seq && a.id === b.id && a.senderId === b.senderId && a.clientMsgId === b.clientMsgId && a.body === b.body;
}

function describe(m: MessageRecord): string {
  return `seq ${m.seq} id ${m.id} from ${m.senderId}/${m.clientMsgId}`;
}

export function check(log: ObservationLog): Report {
  const violations: Violation[] = [];
  const add = (kind: ViolationKind, conversationId: string, detail: string) => violations.push({ kind, conversationId, detail });
  let lost = 0;
  let duplicated = 0;
  let reordered = 0;
  let gaps = 0;
  let divergent = 0;
  let stored = 0;
  let d1Rows = 0;
  let d1Checked = log.conversations.length > 0;

  const sendsByConversation = new Map<string, Map<string, SendRecord>>();
  for (const s of log.sends) {
    let m = sendsByConversation.get(s.conversationId);
    if (!m) sendsByConversation.set(s.conversationId, (m = new Map()));
    m.set(key(s.senderId, s.clientMsgId), s);
  }

  for (const truth of log.conversations) {
    const cid = truth.conversationId;
    const sends = sendsByConversation.get(cid) ?? new Map<string, SendRecord>();

    // ---- the server's order: history must be exactly seq 1..lastSeq, each once.
    const bySeq = new Map<number, MessageRecord>();
    for (const m of truth.history) {
      const prior = bySeq.get(m.seq);
      if (prior) {
        if (!sameMessage(prior, m)) add("history_gap", cid, `history returned two different messages at seq ${m.seq}`);
        continue;
      }
      bySeq.set(m.seq, m);
    }
    for (let seq = 1; seq <= truth.lastSeq; seq++) {
      if (!bySeq.has(seq)) add("history_gap", cid, `history has no message at seq ${seq} (lastSeq ${truth.lastSeq})`);
    }
    for (const seq of bySeq.keys()) {
      if (seq < 1 || seq > truth.lastSeq) add("history_gap", cid, `history has seq ${seq} outside 1..${truth.lastSeq}`);
    }
    const order = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    stored += order.length;

    // ---- every stored message was sent by a client, once, with the body it sent.
    const storedByKey = new Map<string, MessageRecord[]>();
    for (const m of order) {
      const k = key(m.senderId, m.clientMsgId);
      const list = storedByKey.get(k);
      if (list) list.push(m);
      else storedByKey.set(k, [m]);
      const sent = sends.get(k);
      if (!sent) add("phantom", cid, `${describe(m)} was never sent by any client`);
      else if (sent.body !== m.body) add("body_mismatch", cid, `${describe(m)}: stored body differs from the sent body`);
    }
    for (const [k, list] of storedByKey) {
      if (list.length < 2) continue;
      const sent = sends.get(k);
      const acked = sent !== undefined && sent.acks.length > 0;
      duplicated += list.length - 1;
      add(acked ? "duplicate" : "unacked_duplicate", cid, `stored ${list.length} times: ${list.map(describe).join("; ")}`);
    }

    // ---- every acked message is stored exactly once, where its ack said.
    for (const s of sends.values()) {
      if (s.acks.length === 0) continue;
      const first = s.acks[0]!;
      for (const a of s.acks.slice(1)) {
        if (a.seq !== first.seq || a.id !== first.id) {
          add("ack_mismatch", cid, `${s.senderId}/${s.clientMsgId} acked as seq ${first.seq} (${first.id}) and as seq ${a.seq} (${a.id})`);
        }
      }
      const list = storedByKey.get(key(s.senderId, s.clientMsgId));
      if (!list) {
        lost++;
        add("lost", cid, `${s.senderId}/${s.clientMsgId} was acked as seq ${first.seq} but is not in history`);
        continue;
      }
      const at = bySeq.get(first.seq);
      if (!at || at.senderId !== s.senderId || at.clientMsgId !== s.clientMsgId || at.id !== first.id) {
        add("ack_mismatch", cid, `${s.senderId}/${s.clientMsgId} acked as seq ${first.seq} (${first.id}) but history has ${at ? describe(at) : "nothing"} there`);
      }
    }

    // ---- every member saw exactly the server's order, with no gap and no duplicate.
    for (const stream of log.streams.filter((st) => st.conversationId === cid)) {
      const who = `member ${stream.userId}`;
      const seen = new Set<number>();
      let maxSeen = 0;
      for (const session of stream.sessions) {
        if (session.welcome) {
          if (session.welcome.epoch !== truth.epoch) add("unexpected_reset", cid, `${who} was told epoch ${session.welcome.epoch}, the stream's is ${truth.epoch}`);
          if (session.welcome.reset && session.since !== null) add("unexpected_reset", cid, `${who} resumed with since=${session.since} and was told to reset`);
        }
        for (const m of session.messages) {
          if (seen.has(m.seq)) {
            duplicated++;
            add("stream_duplicate", cid, `${who} received seq ${m.seq} twice`);
          } else if (m.seq < maxSeen) {
            reordered++;
            add("stream_reorder", cid, `${who} received seq ${m.seq} after seq ${maxSeen}`);
          }
          seen.add(m.seq);
          maxSeen = Math.max(maxSeen, m.seq);
          const server = bySeq.get(m.seq);
          if (!server || !sameMessage(server, m)) {
            divergent++;
            add("stream_divergence", cid, `${who} saw ${describe(m)} but the server has ${server ? describe(server) : "nothing"} at that seq`);
          }
        }
      }
      const missing: number[] = [];
      for (let seq = 1; seq <= truth.lastSeq; seq++) if (!seen.has(seq)) missing.push(seq);
      if (missing.length > 0) {
        gaps += missing.length;
        add("stream_gap", cid, `${who} never received ${missing.length} message(s): seq ${compactRanges(missing)}`);
      }
    }

    // ---- D1, the archive, eventually holds every message exactly once.
    if (truth.d1 === null) {
      d1Checked = false;
      continue;
    }
    d1Rows += truth.d1.length;
    const d1BySeq = new Map<number, MessageRecord>();
    const d1ByKey = new Map<string, number>();
    for (const row of truth.d1) {
      if (d1BySeq.has(row.seq)) add("d1_duplicate", cid, `D1 holds seq ${row.seq} more than once`);
      d1BySeq.set(row.seq, row);
      const k = key(row.senderId, row.clientMsgId);
      d1ByKey.set(k, (d1ByKey.get(k) ?? 0) + 1);
    }
    for (const [k, n] of d1ByKey) {
      if (n > 1) add("d1_duplicate", cid, `D1 holds ${k.replace("\u0000", "/")} ${n} times`);
    }
    const d1Missing: number[] = [];
    for (const m of order) {
      const row = d1BySeq.get(m.seq);
      if (!row) d1Missing.push(m.seq);
      else if (!sameMessage(row, m)) add("d1_mismatch", cid, `D1 has ${describe(row)} where the server has ${describe(m)}`);
    }
    if (d1Missing.length > 0) add("d1_missing", cid, `D1 lacks ${d1Missing.length} message(s): seq ${compactRanges(d1Missing)}`);
    for (const seq of d1BySeq.keys()) {
      if (!bySeq.has(seq)) add("d1_mismatch", cid, `D1 has seq ${seq}, which the server's history does not`);
    }
  }

  for (const i of log.incidents) add("incident", i.conversationId, `${i.kind} (${i.userId}): ${i.detail}`);

  const acked = log.sends.filter((s) => s.acks.length > 0).length;
  const counts = Object.fromEntries(ALL_KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>;
  for (const v of violations) counts[v.kind]++;
  return {
    ok: violations.length === 0,
    violations,
    counts,
    summary: {
      conversations: log.conversations.length,
      members: log.streams.length,
      sent: log.sends.length,
      attempts: log.sends.reduce((n, s) => n + s.attempts, 0),
      acked,
      duplicateAcks: log.sends.reduce((n, s) => n + s.acks.filter((a) => a.duplicate).length, 0),
      unacked: log.sends.length - acked,
      abandoned: log.sends.filter((s) => s.abandoned).length,
      stored,
      lost,
      duplicated,
      reordered,
      gaps,
      divergent,
      d1Checked,
      d1Rows,
    },
  };
}

/** [1,2,3,7,9,10] -> "1-3, 7, 9-10" (capped, so a huge gap stays one readable line). */
export function compactRanges(seqs: number[], max = 12): string {
  const sorted = [...seqs].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.length > max ? `${parts.slice(0, max).join(", ")}, ... (${parts.length - max} more ranges)` : parts.join(", ");
}

export function formatReport(report: Report, maxViolations = 40): string {
  const s = report.summary;
  const lines = [
    `conversations ${s.conversations}, member streams ${s.members}`,
    `messages: sent ${s.sent} (in ${s.attempts} send attempts), acked ${s.acked} (+${s.duplicateAcks} duplicate acks for resends), unacked ${s.unacked} (${s.abandoned} abandoned on purpose), stored ${s.stored}`,
    `lost ${s.lost}, duplicated ${s.duplicated}, reordered ${s.reordered}, gaps ${s.gaps}, divergent ${s.divergent}`,
    s.d1Checked ? `D1: ${s.d1Rows} rows read directly and compared` : "D1: not read directly (only through the history API's pages older than the hot tail)",
  ];
  if (report.ok) lines.push("OK: no violations");
  else {
    const kinds = Object.entries(report.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
    lines.push(`FAILED: ${report.violations.length} violation(s): ${kinds.join(", ")}`);
    for (const v of report.violations.slice(0, maxViolations)) lines.push(`  [${v.kind}] ${v.conversationId}: ${v.detail}`);
    if (report.violations.length > maxViolations) lines.push(`  ... and ${report.violations.length - maxViolations} more`);
  }
  return lines.join("\n");
}
