// Messages that change (docs/protocol.md 15.6): how the change entries of the stream are applied to the
// messages a client holds, so that `convo.messages` always shows each message in its current state.
//
// Every rule here *sets* state from the entry (never adds to it), so applying an entry twice, or to a
// target that was read later in its current state, changes nothing: the backlog may carry a message in
// its current state followed by the older entries that led there. The one count a client has to keep
// itself is a thread parent's `replies`, because a reply carries no count: see ChangeApplier.countReply.
import { PREVIEW_MAX_CHARS, previewText } from "../../src/protocol/preview";
import type { ChatMessage, MessageChange, ReactionCount } from "../../src/protocol/frames";

/** A stream entry that changes an earlier message instead of being one. */
export type ChangeEntry = ChatMessage & { change: MessageChange };

export function isChangeEntry(m: ChatMessage): m is ChangeEntry {
  return m.change !== undefined;
}

/** Longest reply quote, in characters (15.4). */
export const QUOTE_MAX_CHARS = PREVIEW_MAX_CHARS;

/** The quote a reply shows of its parent (15.4), by the server's rule (src/protocol/preview.ts). A client uses it to follow the parent's edits. */
export function quoteOf(body: string, attachments?: ReadonlyArray<{ name: string }>): string {
  return previewText(body, attachments);
}

/** What a deleted message keeps (15.2): who sent it, when, and its replies count. */
export function tombstone(m: ChatMessage, at: number, by: string): ChatMessage {
  const t: ChatMessage = { seq: m.seq, id: m.id, senderId: m.senderId, clientMsgId: m.clientMsgId, body: "", createdAt: m.createdAt, deleted: { at, by } };
  if (m.replies) t.replies = m.replies;
  return t;
}

/**
 * The target after one change entry, or the very same object when the entry changes nothing (already
 * applied, superseded, or aimed at a deleted message: a tombstone never comes back).
 */
export function applyChange(target: ChatMessage, entry: ChangeEntry, me: string): ChatMessage {
  const c = entry.change;
  if (target.deleted) return target;
  switch (c.type) {
    case "edit": {
      // Without `body` the entry is superseded: a newer edit (or the delete) follows in the stream.
      if (c.body === undefined || c.version <= (target.edited?.version ?? 1)) return target;
      return { ...target, body: c.body, edited: { at: entry.createdAt, version: c.version } };
    }
    case "delete":
      return tombstone(target, entry.createdAt, entry.senderId);
    case "reaction": {
      const reactions = setReaction(target.reactions ?? [], c.emoji, c.count, entry.senderId === me ? c.on : undefined);
      if (sameReactions(reactions, target.reactions ?? [])) return target;
      const next: ChatMessage = { ...target, reactions };
      if (reactions.length === 0) delete next.reactions;
      return next;
    }
  }
}

/**
 * `emoji` at `count` (gone at 0), `me` set when the entry is this user's own (undefined: leave it as it was), most
 * reacted first; equal counts keep the order they had (a new emoji comes after the others it ties with).
 */
export function setReaction(reactions: ReactionCount[], emoji: string, count: number, me: boolean | undefined): ReactionCount[] {
  const i = reactions.findIndex((r) => r.emoji === emoji);
  const next = reactions.slice();
  if (count <= 0) {
    if (i >= 0) next.splice(i, 1);
    return next;
  }
  const r: ReactionCount = { emoji, count };
  // As reads for one user carry it (history, backlog): `me` on every reaction, true on the ones this user has.
  r.me = me ?? (i >= 0 && reactions[i]!.me === true);
  if (i >= 0) next[i] = r;
  else next.push(r);
  // Array.prototype.sort is stable: ties stay in first-reacted order as far as this client knows it.
  return next.sort((a, b) => b.count - a.count);
}

function sameReactions(a: ReactionCount[], b: ReactionCount[]): boolean {
  return a.length === b.length && a.every((r, i) => r.emoji === b[i]!.emoji && r.count === b[i]!.count && r.me === b[i]!.me);
}

/** Index of the message with this seq in an ascending list, or -1. */
export function indexOfSeq(messages: readonly ChatMessage[], seq: number): number {
  let lo = 0;
  let hi = messages.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = messages[mid]!.seq;
    if (s === seq) return mid;
    if (s < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * Applies the stream to a list of held messages (ascending by seq, change entries left out), replacing
 * changed messages by new objects in place. Each method returns the messages it replaced, in seq order.
 */
export class ChangeApplier {
  /**
   * Replies this client counted itself, per parent: the `lastAt` it set and the reply seqs counted at that
   * time. Lets two replies stored in the same millisecond (one batch) both count, and one already in the
   * parent's count as read from the server not count twice.
   */
  readonly #counted = new Map<number, { lastAt: number; seqs: Set<number> }>();

  constructor(private readonly me: string) {}

  /** Apply a change entry of the stream to its target and to the quotes of replies to it, when held. */
  apply(messages: ChatMessage[], entry: ChangeEntry): ChatMessage[] {
    const updated: ChatMessage[] = [];
    const target = entry.change.target;
    const i = indexOfSeq(messages, target);
    let parent: ChatMessage | undefined;
    if (i >= 0) {
      const before = messages[i]!;
      const after = applyChange(before, entry, this.me);
      if (after !== before) {
        messages[i] = after;
        updated.push(after);
      }
      parent = after;
    }
    if (entry.change.type === "reaction") return updated;
    // Replies quote their parent: follow its edit or delete. Replies come after the parent, so start there.
    const quote = this.#quoteAfter(entry, parent);
    if (quote === undefined) return updated;
    for (let j = i >= 0 ? i + 1 : firstAbove(messages, target); j < messages.length; j++) {
      const m = messages[j]!;
      if (m.replyTo?.seq !== target || m.replyTo.deleted) continue;
      const replyTo = quote === null ? { seq: target, senderId: m.replyTo.senderId, quote: "", deleted: true as const } : { ...m.replyTo, quote };
      if (replyTo.quote === m.replyTo.quote && !replyTo.deleted) continue;
      messages[j] = { ...m, replyTo };
      updated.push(messages[j]!);
    }
    return updated.sort((a, b) => a.seq - b.seq);
  }

  /** The quote replies to the entry's target should show: a string, null for deleted, undefined for no change. */
  #quoteAfter(entry: ChangeEntry, parent: ChatMessage | undefined): string | null | undefined {
    const c = entry.change;
    if (c.type === "delete") return null;
    if (c.type !== "edit") return undefined;
    if (parent) return parent.deleted ? null : quoteOf(parent.body, parent.attachments);
    // The parent is not held: the entry's body is its newest (superseded entries have none).
    return c.body === undefined || c.body === "" ? undefined : quoteOf(c.body);
  }

  /**
   * A new message of the stream that replies to a held parent: count it in the parent's `replies` unless
   * the parent's count (as read from the server) already includes it. A parent read from the server says
   * when its newest reply was sent (`lastAt`); a reply sent after that is new to it. Returns the parent
   * when it changed.
   */
  countReply(messages: ChatMessage[], reply: ChatMessage): ChatMessage[] {
    const parentSeq = reply.replyTo?.seq;
    if (parentSeq === undefined || reply.change) return [];
    const i = indexOfSeq(messages, parentSeq);
    if (i < 0) return [];
    const parent = messages[i]!;
    const known = parent.replies;
    const mine = this.#counted.get(parentSeq);
    let count: boolean;
    if (!known || reply.createdAt > known.lastAt) count = true;
    else if (reply.createdAt < known.lastAt) count = false;
    // Same millisecond as the newest reply counted: new only if this client counted that one itself.
    else count = mine !== undefined && mine.lastAt === known.lastAt && !mine.seqs.has(reply.seq) && reply.seq > Math.max(...mine.seqs);
    if (!count) return [];
    const lastAt = Math.max(reply.createdAt, known?.lastAt ?? 0);
    if (mine?.lastAt === lastAt) mine.seqs.add(reply.seq);
    else this.#counted.set(parentSeq, { lastAt, seqs: new Set([reply.seq]) });
    const next = { ...parent, replies: { count: (known?.count ?? 0) + 1, lastAt } };
    messages[i] = next;
    return [next];
  }

  /**
   * A fresher copy of a held message was read from the server (e.g. a thread's parent): take it. Entries
   * still on their way apply to it as to any message read in its current state.
   */
  replace(messages: ChatMessage[], fresh: ChatMessage): ChatMessage[] {
    const i = indexOfSeq(messages, fresh.seq);
    if (i < 0 || fresh.change) return [];
    const held = messages[i]!;
    // A tombstone never comes back, and an older body never replaces a newer one.
    if (held.deleted && !fresh.deleted) return [];
    if (!fresh.deleted && (fresh.edited?.version ?? 1) < (held.edited?.version ?? 1)) return [];
    if (JSON.stringify(held) === JSON.stringify(fresh)) return [];
    this.#counted.delete(fresh.seq);
    messages[i] = fresh;
    return [fresh];
  }

  /** Forget what was counted (the held messages were replaced by a fresh page). */
  reset(): void {
    this.#counted.clear();
  }
}

function firstAbove(messages: readonly ChatMessage[], seq: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (messages[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
