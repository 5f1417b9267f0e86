// The server's order and what it stored, against what the clients sent: history is exactly seq 1..lastSeq;
// every stored entry was sent (a message) or asked for (a change) by a client, once, as it was sent, and a
// change targets an earlier message; every acked message is stored once, where its ack said; every change
// is answered as the protocol says. Also builds what the later steps read: the server's order and each
// message's change entries (its Fate).
import type { MessageRecord } from "./records.ts";
import { CHANGE_TYPE, describe, key, sameStored, type ConversationCheck, type Fate } from "./check-common.ts";

/** The server's order: history must be exactly seq 1..lastSeq, each once. */
export function checkOrder(ctx: ConversationCheck): { bySeq: Map<number, MessageRecord>; order: MessageRecord[] } {
  const { truth, add, tally } = ctx;
  const bySeq = new Map<number, MessageRecord>();
  for (const m of truth.history) {
    const prior = bySeq.get(m.seq);
    if (prior) {
      if (!sameStored(prior, m)) add("history_gap", `history returned two different entries at seq ${m.seq}`);
      continue;
    }
    bySeq.set(m.seq, m);
  }
  for (let seq = 1; seq <= truth.lastSeq; seq++) {
    if (!bySeq.has(seq)) add("history_gap", `history has no entry at seq ${seq} (lastSeq ${truth.lastSeq})`);
  }
  for (const seq of bySeq.keys()) {
    if (seq < 1 || seq > truth.lastSeq) add("history_gap", `history has seq ${seq} outside 1..${truth.lastSeq}`);
  }
  const order = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  tally.stored += order.length;
  return { bySeq, order };
}

/** Every stored entry was sent by a client, once, as it was sent. */
export function checkStored(
  ctx: ConversationCheck,
  bySeq: Map<number, MessageRecord>,
  order: MessageRecord[],
): { storedByKey: Map<string, MessageRecord[]>; fates: Map<number, Fate> } {
  const { sends, requests, add, tally } = ctx;
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
      if (!sent) add("phantom", `${describe(m)} was never sent by any client`);
      continue;
    }
    tally.changeEntries[m.change.type]++;
    const req = requests.get(k);
    if (!req) add("phantom", `${describe(m)}: no client asked for this change`);
    else if (
      CHANGE_TYPE[req.request.type] !== m.change.type ||
      req.request.seq !== m.change.target ||
      (m.change.type === "edit" && req.request.type === "edit" && m.change.body !== undefined && m.change.body !== req.request.body) ||
      (m.change.type === "reaction" && req.request.type === "react" && (m.change.emoji !== req.request.emoji || m.change.on !== req.request.on))
    ) {
      add("body_mismatch", `${describe(m)}: stored change ${JSON.stringify(m.change)} differs from the request ${JSON.stringify(req.request)}`);
    }
    const target = bySeq.get(m.change.target);
    if (!target || target.change || m.change.target >= m.seq) {
      add("change_order", `${describe(m)} targets seq ${m.change.target}, which is not an earlier message`);
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
    tally.duplicated += list.length - 1;
    add(acked ? "duplicate" : "unacked_duplicate", `stored ${list.length} times: ${list.map(describe).join("; ")}`);
  }
  return { storedByKey, fates };
}

/** Every acked message is stored exactly once, where its ack said. */
export function checkAcks(ctx: ConversationCheck, bySeq: Map<number, MessageRecord>, storedByKey: Map<string, MessageRecord[]>): void {
  const { sends, add, tally } = ctx;
  for (const s of sends.values()) {
    if (s.acks.length === 0) continue;
    const first = s.acks[0]!;
    for (const a of s.acks.slice(1)) {
      if (a.seq !== first.seq || a.id !== first.id) {
        add("ack_mismatch", `${s.senderId}/${s.clientMsgId} acked as seq ${first.seq} (${first.id}) and as seq ${a.seq} (${a.id})`);
      }
    }
    const list = storedByKey.get(key(s.senderId, s.clientMsgId));
    if (!list) {
      tally.lost++;
      add("lost", `${s.senderId}/${s.clientMsgId} was acked as seq ${first.seq} but is not in history`);
      continue;
    }
    const at = bySeq.get(first.seq);
    if (!at || at.senderId !== s.senderId || at.clientMsgId !== s.clientMsgId || at.id !== first.id) {
      add("ack_mismatch", `${s.senderId}/${s.clientMsgId} acked as seq ${first.seq} (${first.id}) but history has ${at ? describe(at) : "nothing"} there`);
    }
  }
}

/** Every change is answered as the protocol says (15.1-15.3, 15.7), and an acked one is stored once. */
export function checkAnswers(ctx: ConversationCheck, bySeq: Map<number, MessageRecord>, storedByKey: Map<string, MessageRecord[]>): void {
  const { requests, add, tally } = ctx;
  for (const c of requests.values()) {
    const who = `${c.senderId}/${c.clientMsgId} (${c.request.type} of seq ${c.request.seq})`;
    const first = c.acks[0];
    if (first) {
      for (const a of c.acks.slice(1)) {
        if (a.seq !== first.seq || a.id !== first.id) add("ack_mismatch", `${who} acked as seq ${first.seq} (${first.id}) and as seq ${a.seq} (${a.id})`);
      }
    }
    const list = storedByKey.get(key(c.senderId, c.clientMsgId));
    const target = bySeq.get(c.request.seq);
    if (list) {
      tally.changesStored++;
      const entry = list[0]!;
      for (const a of c.acks) {
        if (a.seq !== entry.seq || a.id !== entry.id) add("ack_mismatch", `${who} acked as seq ${a.seq} (${a.id}) but history has it at ${describe(entry)}`);
      }
      if (c.errors.length > 0) add("unexpected_answer", `${who} was stored (${describe(entry)}) and also refused: ${c.errors.join(", ")}`);
      if (c.request.type === "delete" && target && target.senderId !== c.senderId && !c.senderIsOwner) {
        add("unexpected_answer", `${who}: a member deleted another member's message`);
      }
    } else {
      for (const a of c.acks) {
        if (!a.duplicate) {
          tally.lost++;
          add("lost", `${who} was acked as stored at seq ${a.seq} but is not in history`);
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
        if (!ok) add("ack_mismatch", `${who} acked duplicate at seq ${a.seq}, but history has ${at ? describe(at) : "nothing"} there`);
      }
    }
    for (const code of c.errors) {
      const legal =
        code === "message_deleted"
          ? c.request.type !== "delete" && target?.deleted !== undefined
          : code === "forbidden"
            ? c.request.type === "delete" && !c.senderIsOwner && target !== undefined && target.senderId !== c.senderId
            : false;
      if (!legal) add("unexpected_answer", `${who} refused with ${code}${target ? ` (target ${target.deleted ? "deleted" : "alive"}, sent by ${target.senderId})` : " (no such target)"}`);
    }
  }
}
