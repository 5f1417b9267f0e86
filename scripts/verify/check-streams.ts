// Every member's stream: each member received exactly the server's order (no gap, no duplicate, no
// reorder, the same entry at each seq, a resume never told to reset), and applying what it received
// (docs/protocol.md 15.6, applier.ts) ends in the state history serves, `me` included when the member read
// its own history.
import { StreamApplier, stateDiff, stateOf } from "./applier.ts";
import type { MessageRecord } from "./records.ts";
import { compactRanges } from "./report.ts";
import { describe, key, sameEntry, type ConversationCheck } from "./check-common.ts";

/**
 * Every member saw exactly the server's order, with no gap and no duplicate; and applying what it received
 * (15.6) gives the state history serves.
 */
export function checkStreams(
  ctx: ConversationCheck,
  bySeq: Map<number, MessageRecord>,
  order: MessageRecord[],
  historyBySeq: Map<string, Map<number, MessageRecord>>,
): void {
  const { truth, requests, streams, add, tally } = ctx;
  for (const stream of streams) {
    const who = `member ${stream.userId}`;
    const seen = new Set<number>();
    let maxSeen = 0;
    const applier = new StreamApplier(stream.userId);
    for (const session of stream.sessions) {
      if (session.welcome) {
        if (session.welcome.epoch !== truth.epoch) add("unexpected_reset", `${who} was told epoch ${session.welcome.epoch}, the stream's is ${truth.epoch}`);
        if (session.welcome.reset && session.since !== null) add("unexpected_reset", `${who} resumed with since=${session.since} and was told to reset`);
      }
      for (const m of session.messages) {
        if (seen.has(m.seq)) {
          tally.duplicated++;
          add("stream_duplicate", `${who} received seq ${m.seq} twice`);
        } else if (m.seq < maxSeen) {
          tally.reordered++;
          add("stream_reorder", `${who} received seq ${m.seq} after seq ${maxSeen}`);
        }
        seen.add(m.seq);
        maxSeen = Math.max(maxSeen, m.seq);
        const server = bySeq.get(m.seq);
        const req = m.change ? requests.get(key(m.senderId, m.clientMsgId))?.request : undefined;
        const badBody = m.change?.type === "edit" && m.change.body !== undefined && req?.type === "edit" && req.body !== m.change.body;
        if (!server || !sameEntry(server, m) || badBody) {
          tally.divergent++;
          add("stream_divergence", `${who} saw ${describe(m)}${badBody ? " with another edit body" : ""} but the server has ${server ? describe(server) : "nothing"} at that seq`);
        }
        applier.apply(m);
      }
    }
    const missing: number[] = [];
    for (let seq = 1; seq <= truth.lastSeq; seq++) if (!seen.has(seq)) missing.push(seq);
    if (missing.length > 0) {
      tally.gaps += missing.length;
      add("stream_gap", `${who} never received ${missing.length} entries: seq ${compactRanges(missing)}`);
    }
    const own = historyBySeq.get(stream.userId);
    const wrong: string[] = [];
    for (const m of order) {
      if (m.change) continue;
      const applied = applier.messages.get(m.seq);
      if (!applied) continue; // never received: a stream gap, reported above
      tally.statesCompared++;
      const reference = own?.get(m.seq) ?? m;
      const diff = stateDiff(applied, stateOf(reference), own !== undefined);
      if (diff.length > 0) wrong.push(`seq ${m.seq}: ${diff.join(", ")} (applied vs history)`);
    }
    if (wrong.length > 0) {
      add("state_divergence", `${who}, applying its stream, ends with ${wrong.length} message(s) in another state than history${own ? " (its own read)" : ""}: ${wrong.slice(0, 3).join("; ")}${wrong.length > 3 ? "; ..." : ""}`);
    }
  }
}
