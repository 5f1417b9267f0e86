// The checker's verdict: the kinds of violation, the report (ok, violations, counts per kind, a summary of
// what was checked) and its printout (formatReport, compactRanges for long lists of seqs).

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
  /** Of d1Rows, how many were read from the cold tier's R2 segments. */
  coldRows: number;
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

export const ALL_KINDS: ViolationKind[] = [
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
    s.d1Checked
      ? `archive: ${s.d1Rows} rows read directly and compared (${s.d1Rows - s.coldRows} from D1, ${s.coldRows} from R2 segments)`
      : "archive: not read directly (only through the history API's pages older than the hot tail)",
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
