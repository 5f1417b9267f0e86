// What the checker's steps share (checker.ts runs them): the context of one conversation's checks (its
// records, where violations go, the counts the summary adds up), how two reads of an entry are compared
// (sameEntry, sameStored) and named in a violation (describe), and the key of a sender's clientMsgId.
import { stateDiff, stateOf } from "./applier.ts";
import type { ChangeRecord, ChangeRecordOp, ConversationTruth, EntryRecord, MemberStream, MessageRecord, SendRecord } from "./records.ts";
import type { Summary, ViolationKind } from "./report.ts";

/** The counts the summary is made of, added up over every conversation (report.ts Summary). */
export type Tally = Pick<
  Summary,
  "stored" | "lost" | "duplicated" | "reordered" | "gaps" | "divergent" | "d1Rows" | "coldRows" | "d1Checked" | "statesCompared" | "tombstones" | "edited" | "reacted" | "meChecked" | "changeEntries"
> & {
  changesStored: number;
};

/** One conversation under check: the server's word on it, what was sent to it and received from it. */
export interface ConversationCheck {
  truth: ConversationTruth;
  /** The messages sent to it, by key(sender, clientMsgId). */
  sends: Map<string, SendRecord>;
  /** The changes asked of it, by key(sender, clientMsgId). */
  requests: Map<string, ChangeRecord>;
  /** Every member's stream of it. */
  streams: MemberStream[];
  /** Report a violation in this conversation. */
  add: (kind: ViolationKind, detail: string) => void;
  tally: Tally;
}

/** What happened to one message, replayed from the change entries of history. */
export interface Fate {
  edits: EntryRecord[];
  deletes: EntryRecord[];
  reactions: EntryRecord[];
}

export const key = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

function sameChange(a: ChangeRecordOp | undefined, b: ChangeRecordOp | undefined, withBody: boolean): boolean {
  if (!a || !b) return !a && !b;
  if (a.type !== b.type || a.target !== b.target) return false;
  if (a.type === "edit" && b.type === "edit") return a.version === b.version && (!withBody || a.body === b.body);
  if (a.type === "reaction" && b.type === "reaction") return a.emoji === b.emoji && a.on === b.on && a.count === b.count;
  return true;
}

/** The same entry: identity, and what a change does (an edit entry's body aside: it is dropped once superseded). */
export function sameEntry(a: EntryRecord, b: EntryRecord): boolean {
  return a.seq === b.seq && a.id === b.id && a.senderId === b.senderId && a.clientMsgId === b.clientMsgId && sameChange(a.change, b.change, false);
}

/** The same entry in the same stored state: body, change, edited, deleted, reaction counts (`me` aside). */
export function sameStored(a: EntryRecord, b: EntryRecord): boolean {
  return sameEntry(a, b) && a.body === b.body && sameChange(a.change, b.change, true) && stateDiff(stateOf(a), stateOf(b), false).length === 0;
}

export function describe(m: MessageRecord): string {
  return `seq ${m.seq} id ${m.id} from ${m.senderId}/${m.clientMsgId}${m.change ? ` (${m.change.type} of ${m.change.target})` : ""}`;
}

/** The change entry type each kind of request makes. */
export const CHANGE_TYPE = { edit: "edit", delete: "delete", react: "reaction" } as const;
