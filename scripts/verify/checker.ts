// The checker of `npm run verify`: a pure function from what the workload observed to a list of
// violations. It knows nothing about sockets or servers, so it can be fed doctored logs (see
// selftest.ts) to prove that it fails when it should: a checker that cannot fail is worthless.
import { StreamApplier, stateDiff, stateOf } from "./applier.ts";

/** What a change entry does (docs/protocol.md 15): the `change` field of an entry. */
export type ChangeRecordOp =
  | { type: "edit"; target: number; version: number; body?: string }
  | { type: "delete"; target: number }
  | { type: "reaction"; target: number; emoji: string; on: boolean; count: number };

/** One entry of a conversation's stream (a message, or a change entry) as a client, history or D1 saw it. */
export interface EntryRecord {
  seq: number;
  id: string;
  senderId: string;
  clientMsgId: string;
  body: string;
  createdAt?: number;
  edited?: { at: number; version: number };
  deleted?: { at: number; by: string };
  reactions?: { emoji: string; count: number; me?: boolean }[];
  change?: ChangeRecordOp;
}
/** The name the checker had before entries could be changes. */
export type MessageRecord = EntryRecord;

export interface ReactionState {
  emoji: string;
  count: number;
  me: boolean;
}

/** The comparable final state of one message (applier.ts). */
export interface MessageState {
  seq: number;
  id: string;
  senderId: string;
  body: string;
  edited: { at: number; version: number } | undefined;
  deleted: { at: number; by: string } | undefined;
  reactions: ReactionState[];
}

/** What a member asked to change, over all its attempts. */
export type ChangeRequestRecord =
  | { type: "edit"; seq: number; body: string }
  | { type: "delete"; seq: number }
  | { type: "react"; seq: number; emoji: string; on: boolean };

/** One change the workload generated (one clientMsgId), over all its attempts. */
export interface ChangeRecord {
  conversationId: string;
  senderId: string;
  /** The sender is the group's owner (may delete anyone's message). */
  senderIsOwner: boolean;
  clientMsgId: string;
  request: ChangeRequestRecord;
  /** Why the workload chose it: "fresh" (should be stored), or a case with a documented answer. */
  intent: "fresh" | "own_deleted" | "others_deleted" | "forbidden" | "already";
  attempts: number;
  acks: AckRecord[];
  /** Final error codes received for it (retryable ones like rate_limited are not recorded). */
  errors: string[];
  abandoned: boolean;
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
  /**
   * Every entry as each member read it through the history API (with `me` for that member), by user id.
   * The member whose read is `history` may be absent here. Members without a read are compared to `history`
   * without `me`.
   */
  memberHistories?: Record<string, MessageRecord[]>;
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
  /** Edits, deletes and reactions the workload asked for (protocol 15). */
  changes: ChangeRecord[];
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
  | "state_divergence" // a member's final state of a message (its stream applied per 15.6) differs from history
  | "change_order" // history's change entries are impossible: edit versions out of order, a change after a delete, a live message with a dead target's state
  | "reaction_mismatch" // a reaction count or `me` disagrees with who reacted, replayed from the reaction entries
  | "deleted_body_served" // a deleted message's body (or one of its edits) is still served by history or D1
  | "unexpected_answer" // a change answered with an error the protocol does not give in that case, or stored when it must be refused
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
  /** Changes the workload asked for, by kind. */
  changes: { edit: number; delete: number; react: number };
  /** Change entries in history, by kind (what was stored). */
  changeEntries: { edit: number; delete: number; reaction: number };
  /** Change requests stored (found in history by their clientMsgId). */
  changesApplied: number;
  /** Change requests answered `duplicate: true` (resends, deletes of deleted messages, reactions already so). */
  changeDuplicateAcks: number;
  /** Documented errors received for changes, by code (message_deleted, forbidden): expected, not failures. */
  changeErrors: Record<string, number>;
  /** Messages compared, member by member, between the applied stream and history. */
  statesCompared: number;
  /** Of those, deleted / edited / with reactions in history. */
  tombstones: number;
  edited: number;
  reacted: number;
  /** Whether `me` was compared (each member read its own history). */
  meChecked: boolean;
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
  "state_divergence",
  "change_order",
  "reaction_mismatch",
  "deleted_body_served",
  "unexpected_answer",
  "incident",
];

const key = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

function sameChange(a: ChangeRecordOp | undefined, b: ChangeRecordOp | undefined, withBody: boolean): boolean {
  if (!a || !b) return !a && !b;
  if (a.type !== b.type || a.target !== b.target) return false;
  if (a.type === "edit" && b.type === "edit") return a.version === b.version && (!withBody || a.body === b.body);
  if (a.type === "reaction" && b.type === "reaction") return a.emoji === b.emoji && a.on === b.on && a.count === b.count;
  return true;
}

/** The same entry: identity, and what a change does (an edit entry's body aside: it is dropped once superseded). */
function sameEntry(a: EntryRecord, b: EntryRecord): boolean {
  return a.seq === b.seq && a.id === b.id && a.senderId === b.senderId && a.clientMsgId === b.clientMsgId && sameChange(a.change, b.change, false);
}

/** The same entry in the same stored state: body, change, edited, deleted, reaction counts (`me` aside). */
export function sameStored(a: EntryRecord, b: EntryRecord): boolean {
  return sameEntry(a, b) && a.body === b.body && sameChange(a.change, b.change, true) && stateDiff(stateOf(a), stateOf(b), false).length === 0;
}

function describe(m: MessageRecord): string {
  return `seq ${m.seq} id ${m.id} from ${m.senderId}/${m.clientMsgId}${m.change ? ` (${m.change.type} of ${m.change.target})` : ""}`;
}

const CHANGE_TYPE = { edit: "edit", delete: "delete", react: "reaction" } as const;

/** What happened to one message, replayed from the change entries of history. */
interface Fate {
  edits: EntryRecord[];
  deletes: EntryRecord[];
  reactions: EntryRecord[];
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
  let statesCompared = 0;
  let tombstones = 0;
  let editedCount = 0;
  let reacted = 0;
  let meChecked = log.conversations.length > 0;
  let changesStored = 0;
  const changeEntries = { edit: 0, delete: 0, reaction: 0 };
  const changes = log.changes ?? [];

  const sendsByConversation = new Map<string, Map<string, SendRecord>>();
  for (const s of log.sends) {
    let m = sendsByConversation.get(s.conversationId);
    if (!m) sendsByConversation.set(s.conversationId, (m = new Map()));
    m.set(key(s.senderId, s.clientMsgId), s);
  }
  const changesByConversation = new Map<string, Map<string, ChangeRecord>>();
  for (const c of changes) {
    let m = changesByConversation.get(c.conversationId);
    if (!m) changesByConversation.set(c.conversationId, (m = new Map()));
    m.set(key(c.senderId, c.clientMsgId), c);
  }

  for (const truth of log.conversations) {
    const cid = truth.conversationId;
    const sends = sendsByConversation.get(cid) ?? new Map<string, SendRecord>();
    const requests = changesByConversation.get(cid) ?? new Map<string, ChangeRecord>();

    // ---- the server's order: history must be exactly seq 1..lastSeq, each once.
    const bySeq = new Map<number, MessageRecord>();
    for (const m of truth.history) {
      const prior = bySeq.get(m.seq);
      if (prior) {
        if (!sameStored(prior, m)) add("history_gap", cid, `history returned two different entries at seq ${m.seq}`);
        continue;
      }
      bySeq.set(m.seq, m);
    }
    for (let seq = 1; seq <= truth.lastSeq; seq++) {
      if (!bySeq.has(seq)) add("history_gap", cid, `history has no entry at seq ${seq} (lastSeq ${truth.lastSeq})`);
    }
    for (const seq of bySeq.keys()) {
      if (seq < 1 || seq > truth.lastSeq) add("history_gap", cid, `history has seq ${seq} outside 1..${truth.lastSeq}`);
    }
    const order = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    stored += order.length;

    // ---- every stored entry was sent by a client, once, as it was sent.
    const storedByKey = new Map<string, MessageRecord[]>();
    const fates = new Map<number, Fate>();
    const fate = (seq: number) => {
      let f = fates.get(seq);
      if (!f) fates.set(seq, (f = { edits: [], deletes: [], reactions: [] }));
      return f;
    };
    for (const m of order) {
      const k = key(m.senderId, m.clientMsgId);
      const list = storedByKey.get(k);
      if (list) list.push(m);
      else storedByKey.set(k, [m]);
      if (!m.change) {
        const sent = sends.get(k);
        if (!sent) add("phantom", cid, `${describe(m)} was never sent by any client`);
        continue;
      }
      changeEntries[m.change.type]++;
      const req = requests.get(k);
      if (!req) add("phantom", cid, `${describe(m)}: no client asked for this change`);
      else if (
        CHANGE_TYPE[req.request.type] !== m.change.type ||
        req.request.seq !== m.change.target ||
        (m.change.type === "edit" && req.request.type === "edit" && m.change.body !== undefined && m.change.body !== req.request.body) ||
        (m.change.type === "reaction" && req.request.type === "react" && (m.change.emoji !== req.request.emoji || m.change.on !== req.request.on))
      ) {
        add("body_mismatch", cid, `${describe(m)}: stored change ${JSON.stringify(m.change)} differs from the request ${JSON.stringify(req.request)}`);
      }
      const target = bySeq.get(m.change.target);
      if (!target || target.change || m.change.target >= m.seq) {
        add("change_order", cid, `${describe(m)} targets seq ${m.change.target}, which is not an earlier message`);
        continue;
      }
      const f = fate(m.change.target);
      if (m.change.type === "edit") f.edits.push(m);
      else if (m.change.type === "delete") f.deletes.push(m);
      else f.reactions.push(m);
    }
    for (const [k, list] of storedByKey) {
      if (list.length < 2) continue;
      const record = sends.get(k) ?? requests.get(k);
      const acked = record !== undefined && record.acks.length > 0;
      duplicated += list.length - 1;
      add(acked ? "duplicate" : "unacked_duplicate", cid, `stored ${list.length} times: ${list.map(describe).join("; ")}`);
    }

    // ---- every message's current state is what its change entries made of it (15.1-15.3).
    const members = new Set(log.streams.filter((st) => st.conversationId === cid).map((st) => st.userId));
    const histories = truth.memberHistories ?? {};
    const historyBySeq = new Map<string, Map<number, MessageRecord>>();
    for (const [userId, entries] of Object.entries(histories)) historyBySeq.set(userId, new Map(entries.map((e) => [e.seq, e])));
    if ([...members].some((u) => !historyBySeq.has(u))) meChecked = false;
    /** Bodies that must not be served any more: deleted messages' bodies and edits, superseded bodies. */
    const dead = new Map<string, string>();
    for (const m of order) {
      if (m.change) continue;
      const f = fates.get(m.seq) ?? { edits: [], deletes: [], reactions: [] };
      const sent = sends.get(key(m.senderId, m.clientMsgId));
      const editBody = (e: EntryRecord) => {
        const req = requests.get(key(e.senderId, e.clientMsgId))?.request;
        return req?.type === "edit" ? req.body : undefined;
      };
      f.edits.forEach((e, i) => {
        const version = e.change?.type === "edit" ? e.change.version : -1;
        if (version !== i + 2) add("change_order", cid, `edit ${describe(e)} has version ${version}, but it is edit ${i + 1} of seq ${m.seq} in stream order (expected version ${i + 2})`);
        if (e.senderId !== m.senderId) add("unexpected_answer", cid, `${describe(e)}: ${e.senderId} edited ${m.senderId}'s message`);
      });
      if (f.deletes.length > 1) add("change_order", cid, `seq ${m.seq} was deleted ${f.deletes.length} times: ${f.deletes.map(describe).join("; ")}`);
      const del = f.deletes[0];
      if (del) {
        for (const e of [...f.edits, ...f.reactions]) {
          if (e.seq > del.seq) add("change_order", cid, `${describe(e)} was stored after seq ${m.seq} was deleted (seq ${del.seq})`);
        }
        if (sent) dead.set(sent.body, `the deleted message at seq ${m.seq}`);
        for (const e of f.edits) {
          const b = editBody(e);
          if (b !== undefined) dead.set(b, `an edit of the deleted message at seq ${m.seq}`);
        }
      } else if (f.edits.length > 0) {
        if (sent) dead.set(sent.body, `the original body of seq ${m.seq}, edited since`);
        for (const e of f.edits.slice(0, -1)) {
          const b = editBody(e);
          if (b !== undefined) dead.set(b, `a superseded edit of seq ${m.seq}`);
        }
      }
      // Edit entries carry a body only while they are the newest edit of a live message.
      f.edits.forEach((e, i) => {
        if (e.change?.type !== "edit" || e.change.body === undefined) return;
        if (del) add("deleted_body_served", cid, `${describe(e)} still carries its body after seq ${m.seq} was deleted`);
        else if (i < f.edits.length - 1) add("deleted_body_served", cid, `${describe(e)} still carries its body after a newer edit of seq ${m.seq}`);
      });

      if (m.deleted) {
        tombstones++;
        if (!del) add("change_order", cid, `seq ${m.seq} is a tombstone, but no delete entry targets it`);
        else if (m.deleted.by !== del.senderId) add("change_order", cid, `seq ${m.seq} says deleted by ${m.deleted.by}, the delete entry (seq ${del.seq}) is ${del.senderId}'s`);
        if (m.body !== "") add("deleted_body_served", cid, `deleted seq ${m.seq} is served with a body`);
        if (m.edited || (m.reactions?.length ?? 0) > 0) add("deleted_body_served", cid, `deleted seq ${m.seq} still carries ${m.edited ? "edited" : "reactions"}`);
      } else {
        if (del) add("change_order", cid, `seq ${m.seq} was deleted (seq ${del.seq}) but history serves it alive`);
        const last = f.edits[f.edits.length - 1];
        const expected = last ? editBody(last) : sent?.body;
        if (last) editedCount++;
        if ((m.edited?.version ?? 1) !== f.edits.length + 1) add("change_order", cid, `seq ${m.seq} is at version ${m.edited?.version ?? 1} after ${f.edits.length} edit(s)`);
        if (expected !== undefined && m.body !== expected) {
          add("body_mismatch", cid, `${describe(m)}: body ${JSON.stringify(m.body.slice(0, 40))} is not ${last ? `its newest edit's (seq ${last.seq})` : "the sent body"} ${JSON.stringify(expected.slice(0, 40))}`);
        }
      }

      // Reactions: replay who has which emoji from the reaction entries; every count and every `me` follows.
      const who = new Map<string, Set<string>>();
      for (const e of f.reactions) {
        if (e.change?.type !== "reaction") continue;
        const set = who.get(e.change.emoji) ?? new Set<string>();
        who.set(e.change.emoji, set);
        if (e.change.on === set.has(e.senderId)) add("reaction_mismatch", cid, `${describe(e)} stored ${e.change.on ? "a reaction the sender already had" : "taking back a reaction the sender did not have"}`);
        if (e.change.on) set.add(e.senderId);
        else set.delete(e.senderId);
        if (e.change.count !== set.size) add("reaction_mismatch", cid, `${describe(e)} says count ${e.change.count} for ${e.change.emoji}; the reaction entries make it ${set.size}`);
      }
      const expectedReactions = m.deleted ? [] : [...who].filter(([, set]) => set.size > 0);
      if (expectedReactions.length > 0) reacted++;
      const reads: [string, MessageRecord | undefined][] = historyBySeq.size > 0 ? [...historyBySeq].map(([u, h]) => [u, h.get(m.seq)]) : [["(reader)", m]];
      for (const [userId, read] of reads) {
        if (!read) continue; // a member's read that lacks the seq is reported below, as a divergent history
        const have = new Map((read.reactions ?? []).map((r) => [r.emoji, r]));
        const wrong: string[] = [];
        for (const [emoji, set] of expectedReactions) {
          const r = have.get(emoji);
          if (!r || r.count !== set.size) wrong.push(`${emoji} count ${r?.count ?? 0}, expected ${set.size}`);
          else if (historyBySeq.size > 0 && (r.me === true) !== set.has(userId)) wrong.push(`${emoji} me ${r.me === true} for ${userId}, expected ${set.has(userId)}`);
          have.delete(emoji);
        }
        for (const r of have.values()) wrong.push(`${r.emoji} count ${r.count}, expected none`);
        if (wrong.length > 0) add("reaction_mismatch", cid, `seq ${m.seq} as read by ${userId}: ${wrong.join("; ")}`);
      }
    }

    // ---- nothing dead is served: no deleted (or superseded) body in any entry of any read.
    const scanDead = (where: string, entries: EntryRecord[]) => {
      if (dead.size === 0) return;
      for (const e of entries) {
        for (const text of [e.body, e.body.startsWith("* ") ? e.body.slice(2) : undefined, e.change?.type === "edit" ? e.change.body : undefined]) {
          const whose = text !== undefined ? dead.get(text) : undefined;
          if (whose) add("deleted_body_served", cid, `${where} serves the body of ${whose} at ${describe(e)}`);
        }
      }
    };
    scanDead("history", order);
    for (const [userId, entries] of Object.entries(histories)) {
      scanDead(`${userId}'s history`, entries);
      // Every member reads the same entries in the same state (`me` aside).
      const mine = historyBySeq.get(userId)!;
      const differ: number[] = [];
      for (const m of order) {
        const e = mine.get(m.seq);
        if (!e || !sameStored(e, m)) differ.push(m.seq);
      }
      if (differ.length > 0 || mine.size !== order.length) {
        add("state_divergence", cid, `${userId}'s history differs from the reader's at ${differ.length} seq(s): ${compactRanges(differ)} (${mine.size} entries vs ${order.length})`);
      }
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

    // ---- every change is answered as the protocol says (15.1-15.3, 15.7), and an acked one is stored once.
    for (const c of requests.values()) {
      const who = `${c.senderId}/${c.clientMsgId} (${c.request.type} of seq ${c.request.seq})`;
      const first = c.acks[0];
      if (first) {
        for (const a of c.acks.slice(1)) {
          if (a.seq !== first.seq || a.id !== first.id) add("ack_mismatch", cid, `${who} acked as seq ${first.seq} (${first.id}) and as seq ${a.seq} (${a.id})`);
        }
      }
      const list = storedByKey.get(key(c.senderId, c.clientMsgId));
      const target = bySeq.get(c.request.seq);
      if (list) {
        changesStored++;
        const entry = list[0]!;
        for (const a of c.acks) {
          if (a.seq !== entry.seq || a.id !== entry.id) add("ack_mismatch", cid, `${who} acked as seq ${a.seq} (${a.id}) but history has it at ${describe(entry)}`);
        }
        if (c.errors.length > 0) add("unexpected_answer", cid, `${who} was stored (${describe(entry)}) and also refused: ${c.errors.join(", ")}`);
        if (c.request.type === "delete" && target && target.senderId !== c.senderId && !c.senderIsOwner) {
          add("unexpected_answer", cid, `${who}: a member deleted another member's message`);
        }
      } else {
        for (const a of c.acks) {
          if (!a.duplicate) {
            lost++;
            add("lost", cid, `${who} was acked as stored at seq ${a.seq} but is not in history`);
            continue;
          }
          // Stored nothing: the ack names the entry that made the state so (15.2, 15.3), or 0 for a reaction never made.
          const at = bySeq.get(a.seq);
          const ok =
            c.request.type === "delete"
              ? at?.change?.type === "delete" && at.change.target === c.request.seq && at.id === a.id
              : c.request.type === "react"
                ? a.seq === 0
                  ? !c.request.on
                  : at?.change?.type === "reaction" && at.change.target === c.request.seq && at.change.emoji === c.request.emoji && at.change.on === c.request.on && at.senderId === c.senderId
                : false;
          if (!ok) add("ack_mismatch", cid, `${who} acked duplicate at seq ${a.seq}, but history has ${at ? describe(at) : "nothing"} there`);
        }
      }
      for (const code of c.errors) {
        const legal =
          code === "message_deleted"
            ? c.request.type !== "delete" && target?.deleted !== undefined
            : code === "forbidden"
              ? c.request.type === "delete" && !c.senderIsOwner && target !== undefined && target.senderId !== c.senderId
              : false;
        if (!legal) add("unexpected_answer", cid, `${who} refused with ${code}${target ? ` (target ${target.deleted ? "deleted" : "alive"}, sent by ${target.senderId})` : " (no such target)"}`);
      }
    }

    // ---- every member saw exactly the server's order, with no gap and no duplicate; and applying what it
    // received (15.6) gives the state history serves.
    for (const stream of log.streams.filter((st) => st.conversationId === cid)) {
      const who = `member ${stream.userId}`;
      const seen = new Set<number>();
      let maxSeen = 0;
      const applier = new StreamApplier(stream.userId);
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
          const req = m.change ? requests.get(key(m.senderId, m.clientMsgId))?.request : undefined;
          const badBody = m.change?.type === "edit" && m.change.body !== undefined && req?.type === "edit" && req.body !== m.change.body;
          if (!server || !sameEntry(server, m) || badBody) {
            divergent++;
            add("stream_divergence", cid, `${who} saw ${describe(m)}${badBody ? " with another edit body" : ""} but the server has ${server ? describe(server) : "nothing"} at that seq`);
          }
          applier.apply(m);
        }
      }
      const missing: number[] = [];
      for (let seq = 1; seq <= truth.lastSeq; seq++) if (!seen.has(seq)) missing.push(seq);
      if (missing.length > 0) {
        gaps += missing.length;
        add("stream_gap", cid, `${who} never received ${missing.length} entries: seq ${compactRanges(missing)}`);
      }
      const own = historyBySeq.get(stream.userId);
      const wrong: string[] = [];
      for (const m of order) {
        if (m.change) continue;
        const applied = applier.messages.get(m.seq);
        if (!applied) continue; // never received: a stream gap, reported above
        statesCompared++;
        const reference = own?.get(m.seq) ?? m;
        const diff = stateDiff(applied, stateOf(reference), own !== undefined);
        if (diff.length > 0) wrong.push(`seq ${m.seq}: ${diff.join(", ")} (applied vs history)`);
      }
      if (wrong.length > 0) {
        add("state_divergence", cid, `${who}, applying its stream, ends with ${wrong.length} message(s) in another state than history${own ? " (its own read)" : ""}: ${wrong.slice(0, 3).join("; ")}${wrong.length > 3 ? "; ..." : ""}`);
      }
    }

    // ---- D1, the archive, eventually holds every entry exactly once, in its current state.
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
      else if (!sameStored(row, m)) add("d1_mismatch", cid, `D1 has ${describe(row)} (${JSON.stringify(stateOf(row)).slice(0, 160)}) where the server has ${describe(m)} (${JSON.stringify(stateOf(m)).slice(0, 160)})`);
    }
    if (d1Missing.length > 0) add("d1_missing", cid, `D1 lacks ${d1Missing.length} entries: seq ${compactRanges(d1Missing)}`);
    for (const seq of d1BySeq.keys()) {
      if (!bySeq.has(seq)) add("d1_mismatch", cid, `D1 has seq ${seq}, which the server's history does not`);
    }
    scanDead("D1", truth.d1);
  }

  for (const i of log.incidents) add("incident", i.conversationId, `${i.kind} (${i.userId}): ${i.detail}`);

  const acked = log.sends.filter((s) => s.acks.length > 0).length;
  const counts = Object.fromEntries(ALL_KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>;
  for (const v of violations) counts[v.kind]++;
  const changeErrors: Record<string, number> = {};
  for (const c of changes) for (const e of c.errors) changeErrors[e] = (changeErrors[e] ?? 0) + 1;
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
      changes: {
        edit: changes.filter((c) => c.request.type === "edit").length,
        delete: changes.filter((c) => c.request.type === "delete").length,
        react: changes.filter((c) => c.request.type === "react").length,
      },
      changeEntries,
      changesApplied: changesStored,
      changeDuplicateAcks: changes.reduce((n, c) => n + c.acks.filter((a) => a.duplicate).length, 0),
      changeErrors,
      statesCompared,
      tombstones,
      edited: editedCount,
      reacted,
      meChecked,
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
    `messages: sent ${s.sent} (in ${s.attempts} send attempts), acked ${s.acked} (+${s.duplicateAcks} duplicate acks for resends), unacked ${s.unacked} (${s.abandoned} abandoned on purpose), entries stored ${s.stored}`,
    `changes: asked ${s.changes.edit} edits, ${s.changes.delete} deletes, ${s.changes.react} reactions; stored ${s.changesApplied} (entries: ${s.changeEntries.edit} edit, ${s.changeEntries.delete} delete, ${s.changeEntries.reaction} reaction), ${s.changeDuplicateAcks} duplicate acks, documented refusals: ${Object.entries(s.changeErrors).map(([k, n]) => `${k} ${n}`).join(", ") || "none"}`,
    `final state: ${s.statesCompared} message states compared member by member (${s.tombstones} deleted, ${s.edited} edited, ${s.reacted} with reactions in history; me ${s.meChecked ? "compared, each member read its own history" : "not compared"})`,
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
