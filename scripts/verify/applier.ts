// How a client applies a conversation's stream of entries (docs/protocol.md 15.6), written from the doc for the
// checker: a member's final state is what this makes of everything it received, over all its sessions, in the
// order it received it. Every step SETS state, so an entry applied twice, or an older change applied to a message
// read later in its current state (a backlog or history page), leaves the same result.
import type { EntryRecord, MessageState, ReactionState } from "./checker.ts";

export class StreamApplier {
  /** seq → the state of each message (never change entries). */
  readonly messages = new Map<number, MessageState>();

  constructor(readonly me: string) {}

  apply(entry: EntryRecord): void {
    const change = entry.change;
    if (!change) {
      // A message: as received (a live frame: as sent; a backlog: its current state, `me` for this reader).
      this.messages.set(entry.seq, stateOf(entry));
      return;
    }
    const target = this.messages.get(change.target);
    if (!target) return; // not held: nothing to apply it to (the next read of the target has its current state)
    if (change.type === "delete") {
      target.body = "";
      target.deleted = { at: entry.createdAt ?? 0, by: entry.senderId };
      target.edited = undefined;
      target.reactions = [];
      return;
    }
    if (target.deleted) return;
    if (change.type === "edit") {
      // An entry without a body was superseded (a newer edit follows, or a delete): nothing to set.
      if (change.body !== undefined && change.version > (target.edited?.version ?? 1)) {
        target.body = change.body;
        target.edited = { at: entry.createdAt ?? 0, version: change.version };
      }
      return;
    }
    const had = target.reactions.find((r) => r.emoji === change.emoji);
    const rest = target.reactions.filter((r) => r.emoji !== change.emoji);
    if (change.count > 0) rest.push({ emoji: change.emoji, count: change.count, me: entry.senderId === this.me ? change.on : (had?.me ?? false) });
    target.reactions = rest;
  }
}

/** The comparable state of a message as read (history page, backlog, live frame). */
export function stateOf(m: EntryRecord): MessageState {
  return {
    seq: m.seq,
    id: m.id,
    senderId: m.senderId,
    body: m.body,
    edited: m.edited ? { at: m.edited.at, version: m.edited.version } : undefined,
    deleted: m.deleted ? { at: m.deleted.at, by: m.deleted.by } : undefined,
    reactions: (m.reactions ?? []).map((r) => ({ emoji: r.emoji, count: r.count, me: r.me === true })),
  };
}

const sorted = (rs: ReactionState[]) => [...rs].sort((a, b) => (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));

/**
 * Where two states of one message differ (empty when they agree): body, edited (version and time), deleted (by
 * and time), reactions (emoji and count as a set; `me` too when `withMe`).
 */
export function stateDiff(a: MessageState, b: MessageState, withMe: boolean): string[] {
  const out: string[] = [];
  if (a.id !== b.id || a.senderId !== b.senderId) out.push(`identity ${a.id}/${a.senderId} vs ${b.id}/${b.senderId}`);
  if (a.body !== b.body) out.push(`body ${JSON.stringify(a.body.slice(0, 40))} vs ${JSON.stringify(b.body.slice(0, 40))}`);
  if ((a.edited?.version ?? 1) !== (b.edited?.version ?? 1) || (a.edited?.at ?? 0) !== (b.edited?.at ?? 0)) {
    out.push(`edited ${JSON.stringify(a.edited ?? null)} vs ${JSON.stringify(b.edited ?? null)}`);
  }
  if (!!a.deleted !== !!b.deleted || a.deleted?.by !== b.deleted?.by || a.deleted?.at !== b.deleted?.at) {
    out.push(`deleted ${JSON.stringify(a.deleted ?? null)} vs ${JSON.stringify(b.deleted ?? null)}`);
  }
  const show = (rs: ReactionState[]) => sorted(rs).map((r) => `${r.emoji}${r.count}${withMe && r.me ? "*" : ""}`).join(" ") || "none";
  if (show(a.reactions) !== show(b.reactions)) out.push(`reactions ${show(a.reactions)} vs ${show(b.reactions)}`);
  return out;
}
