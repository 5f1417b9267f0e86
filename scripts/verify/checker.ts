// The checker of `npm run verify`: a pure function from what the workload observed to a list of
// violations. It knows nothing about sockets or servers, so it can be fed doctored logs (see
// selftest.ts) to prove that it fails when it should: a checker that cannot fail is worthless.
//
// This file is check(): for each conversation it runs the steps below in this order, then adds up the
// summary. The steps are the modules' (what they share: check-common.ts):
//   check-stored.ts   the server's order, what it stored against what was sent, acks and change answers
//   check-state.ts    each message's final state from its change entries, nothing dead served, D1
//   check-streams.ts  each member's stream: exactly the server's order, applied to history's state
// The log's types are records.ts and the report's report.ts; both are exported from here as well.
import { checkAcks, checkAnswers, checkOrder, checkStored } from "./check-stored.ts";
import { checkD1, checkServed, checkStates } from "./check-state.ts";
import { checkStreams } from "./check-streams.ts";
import { key, type ConversationCheck, type Tally } from "./check-common.ts";
import type { ChangeRecord, ObservationLog, SendRecord } from "./records.ts";
import { ALL_KINDS, type Report, type Violation, type ViolationKind } from "./report.ts";

export type {
  AckRecord,
  ChangeRecord,
  ChangeRecordOp,
  ChangeRequestRecord,
  ConversationTruth,
  EntryRecord,
  IncidentRecord,
  MemberStream,
  MessageRecord,
  MessageState,
  ObservationLog,
  ReactionState,
  SendRecord,
  SessionRecord,
} from "./records.ts";
export { compactRanges, formatReport, type Report, type Summary, type Violation, type ViolationKind } from "./report.ts";
export { sameStored } from "./check-common.ts";

export function check(log: ObservationLog): Report {
  const violations: Violation[] = [];
  const tally: Tally = {
    stored: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    gaps: 0,
    divergent: 0,
    d1Rows: 0,
    coldRows: 0,
    d1Checked: log.conversations.length > 0,
    statesCompared: 0,
    tombstones: 0,
    edited: 0,
    reacted: 0,
    meChecked: log.conversations.length > 0,
    changesStored: 0,
    changeEntries: { edit: 0, delete: 0, reaction: 0 },
  };
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
    const ctx: ConversationCheck = {
      truth,
      sends: sendsByConversation.get(cid) ?? new Map<string, SendRecord>(),
      requests: changesByConversation.get(cid) ?? new Map<string, ChangeRecord>(),
      streams: log.streams.filter((st) => st.conversationId === cid),
      add: (kind: ViolationKind, detail: string) => void violations.push({ kind, conversationId: cid, detail }),
      tally,
    };
    const { bySeq, order } = checkOrder(ctx);
    const { storedByKey, fates } = checkStored(ctx, bySeq, order);
    const { histories, historyBySeq, dead } = checkStates(ctx, order, fates);
    const scanDead = checkServed(ctx, order, histories, historyBySeq, dead);
    checkAcks(ctx, bySeq, storedByKey);
    checkAnswers(ctx, bySeq, storedByKey);
    checkStreams(ctx, bySeq, order, historyBySeq);
    checkD1(ctx, bySeq, order, scanDead);
  }

  for (const i of log.incidents) violations.push({ kind: "incident", conversationId: i.conversationId, detail: `${i.kind} (${i.userId}): ${i.detail}` });

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
      stored: tally.stored,
      lost: tally.lost,
      duplicated: tally.duplicated,
      reordered: tally.reordered,
      gaps: tally.gaps,
      divergent: tally.divergent,
      d1Checked: tally.d1Checked,
      d1Rows: tally.d1Rows,
      coldRows: tally.coldRows,
      changes: {
        edit: changes.filter((c) => c.request.type === "edit").length,
        delete: changes.filter((c) => c.request.type === "delete").length,
        react: changes.filter((c) => c.request.type === "react").length,
      },
      changeEntries: tally.changeEntries,
      changesApplied: tally.changesStored,
      changeDuplicateAcks: changes.reduce((n, c) => n + c.acks.filter((a) => a.duplicate).length, 0),
      changeErrors,
      statesCompared: tally.statesCompared,
      tombstones: tally.tombstones,
      edited: tally.edited,
      reacted: tally.reacted,
      meChecked: tally.meChecked,
    },
  };
}
