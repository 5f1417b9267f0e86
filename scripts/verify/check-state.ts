// Every message's final state, and nothing dead served: each message is what its change entries made of it
// (edit versions in order, one delete and nothing after it, reaction counts and `me` replayed from the
// reaction entries); no deleted or superseded body is served by history, by any member's read or by D1;
// every member reads the same entries in the same state; D1, the archive, holds every entry once, in its
// current state.
import { stateOf } from "./applier.ts";
import type { EntryRecord, MessageRecord } from "./records.ts";
import { compactRanges } from "./report.ts";
import { describe, key, sameStored, type ConversationCheck, type Fate } from "./check-common.ts";

/** Reports the bodies in `entries` (as read `where`) that must not be served any more. */
export type DeadScan = (where: string, entries: EntryRecord[]) => void;

/** Every message's current state is what its change entries made of it (15.1-15.3). */
export function checkStates(
  ctx: ConversationCheck,
  order: MessageRecord[],
  fates: Map<number, Fate>,
): { histories: Record<string, MessageRecord[]>; historyBySeq: Map<string, Map<number, MessageRecord>>; dead: Map<string, string> } {
  const { truth, sends, requests, streams, add, tally } = ctx;
  const members = new Set(streams.map((st) => st.userId));
  const histories = truth.memberHistories ?? {};
  const historyBySeq = new Map<string, Map<number, MessageRecord>>();
  for (const [userId, entries] of Object.entries(histories)) historyBySeq.set(userId, new Map(entries.map((e) => [e.seq, e])));
  if ([...members].some((u) => !historyBySeq.has(u))) tally.meChecked = false;
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
      if (version !== i + 2) add("change_order", `edit ${describe(e)} has version ${version}, but it is edit ${i + 1} of seq ${m.seq} in stream order (expected version ${i + 2})`);
      if (e.senderId !== m.senderId) add("unexpected_answer", `${describe(e)}: ${e.senderId} edited ${m.senderId}'s message`);
    });
    if (f.deletes.length > 1) add("change_order", `seq ${m.seq} was deleted ${f.deletes.length} times: ${f.deletes.map(describe).join("; ")}`);
    const del = f.deletes[0];
    if (del) {
      for (const e of [...f.edits, ...f.reactions]) {
        if (e.seq > del.seq) add("change_order", `${describe(e)} was stored after seq ${m.seq} was deleted (seq ${del.seq})`);
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
      if (del) add("deleted_body_served", `${describe(e)} still carries its body after seq ${m.seq} was deleted`);
      else if (i < f.edits.length - 1) add("deleted_body_served", `${describe(e)} still carries its body after a newer edit of seq ${m.seq}`);
    });

    if (m.deleted) {
      tally.tombstones++;
      if (!del) add("change_order", `seq ${m.seq} is a tombstone, but no delete entry targets it`);
      else if (m.deleted.by !== del.senderId) add("change_order", `seq ${m.seq} says deleted by ${m.deleted.by}, the delete entry (seq ${del.seq}) is ${del.senderId}'s`);
      if (m.body !== "") add("deleted_body_served", `deleted seq ${m.seq} is served with a body`);
      if (m.edited || (m.reactions?.length ?? 0) > 0) add("deleted_body_served", `deleted seq ${m.seq} still carries ${m.edited ? "edited" : "reactions"}`);
    } else {
      if (del) add("change_order", `seq ${m.seq} was deleted (seq ${del.seq}) but history serves it alive`);
      const last = f.edits[f.edits.length - 1];
      const expected = last ? editBody(last) : sent?.body;
      if (last) tally.edited++;
      if ((m.edited?.version ?? 1) !== f.edits.length + 1) add("change_order", `seq ${m.seq} is at version ${m.edited?.version ?? 1} after ${f.edits.length} edit(s)`);
      if (expected !== undefined && m.body !== expected) {
        add("body_mismatch", `${describe(m)}: body ${JSON.stringify(m.body.slice(0, 40))} is not ${last ? `its newest edit's (seq ${last.seq})` : "the sent body"} ${JSON.stringify(expected.slice(0, 40))}`);
      }
    }

    // Reactions: replay who has which emoji from the reaction entries; every count and every `me` follows.
    const who = new Map<string, Set<string>>();
    for (const e of f.reactions) {
      if (e.change?.type !== "reaction") continue;
      const set = who.get(e.change.emoji) ?? new Set<string>();
      who.set(e.change.emoji, set);
      if (e.change.on === set.has(e.senderId)) add("reaction_mismatch", `${describe(e)} stored ${e.change.on ? "a reaction the sender already had" : "taking back a reaction the sender did not have"}`);
      if (e.change.on) set.add(e.senderId);
      else set.delete(e.senderId);
      if (e.change.count !== set.size) add("reaction_mismatch", `${describe(e)} says count ${e.change.count} for ${e.change.emoji}; the reaction entries make it ${set.size}`);
    }
    const expectedReactions = m.deleted ? [] : [...who].filter(([, set]) => set.size > 0);
    if (expectedReactions.length > 0) tally.reacted++;
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
      if (wrong.length > 0) add("reaction_mismatch", `seq ${m.seq} as read by ${userId}: ${wrong.join("; ")}`);
    }
  }
  return { histories, historyBySeq, dead };
}

/** Nothing dead is served: no deleted (or superseded) body in any entry of any read. */
export function checkServed(
  ctx: ConversationCheck,
  order: MessageRecord[],
  histories: Record<string, MessageRecord[]>,
  historyBySeq: Map<string, Map<number, MessageRecord>>,
  dead: Map<string, string>,
): DeadScan {
  const { add } = ctx;
  const scanDead = (where: string, entries: EntryRecord[]) => {
    if (dead.size === 0) return;
    for (const e of entries) {
      for (const text of [e.body, e.body.startsWith("* ") ? e.body.slice(2) : undefined, e.change?.type === "edit" ? e.change.body : undefined]) {
        const whose = text !== undefined ? dead.get(text) : undefined;
        if (whose) add("deleted_body_served", `${where} serves the body of ${whose} at ${describe(e)}`);
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
      add("state_divergence", `${userId}'s history differs from the reader's at ${differ.length} seq(s): ${compactRanges(differ)} (${mine.size} entries vs ${order.length})`);
    }
  }
  return scanDead;
}

/** The archive (D1 and the R2 segments together) eventually holds every entry exactly once, in its current state. */
export function checkD1(ctx: ConversationCheck, bySeq: Map<number, MessageRecord>, order: MessageRecord[], scanDead: DeadScan): void {
  const { truth, add, tally } = ctx;
  if (truth.d1 === null) {
    tally.d1Checked = false;
    return;
  }
  tally.d1Rows += truth.d1.length;
  tally.coldRows += truth.coldRows ?? 0;
  const d1BySeq = new Map<number, MessageRecord>();
  const d1ByKey = new Map<string, number>();
  for (const row of truth.d1) {
    if (d1BySeq.has(row.seq)) add("d1_duplicate", `the archive (D1 and R2) holds seq ${row.seq} more than once`);
    d1BySeq.set(row.seq, row);
    const k = key(row.senderId, row.clientMsgId);
    d1ByKey.set(k, (d1ByKey.get(k) ?? 0) + 1);
  }
  for (const [k, n] of d1ByKey) {
    if (n > 1) add("d1_duplicate", `D1 holds ${k.replace("\u0000", "/")} ${n} times`);
  }
  const d1Missing: number[] = [];
  for (const m of order) {
    const row = d1BySeq.get(m.seq);
    if (!row) d1Missing.push(m.seq);
    else if (!sameStored(row, m)) add("d1_mismatch", `D1 has ${describe(row)} (${JSON.stringify(stateOf(row)).slice(0, 160)}) where the server has ${describe(m)} (${JSON.stringify(stateOf(m)).slice(0, 160)})`);
  }
  if (d1Missing.length > 0) add("d1_missing", `the archive (D1 and R2) lacks ${d1Missing.length} entries: seq ${compactRanges(d1Missing)}`);
  for (const seq of d1BySeq.keys()) {
    if (!bySeq.has(seq)) add("d1_mismatch", `D1 has seq ${seq}, which the server's history does not`);
  }
  scanDead("D1", truth.d1);
}
