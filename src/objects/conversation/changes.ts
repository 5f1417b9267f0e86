// Messages that change (docs/protocol.md 15): edits, deletes and reactions, and the relations a new message
// carries (a reply's quote and its thread, mentions). Every change is an entry of the stream (stream.ts
// appendChange) and rewrites its target in place, wherever the target is stored:
//   hot tail      the row in this object's SQLite, rewritten in the change's own transaction;
//   archive       D1 or an R2 segment: through d1_rewrites (rewrites.ts), applied by the archive job; reads
//                 overlay it meanwhile.
// A target older than the hot tail is read from the archive first (`load`, an await before the change is
// queued: changes to old messages are rare, and the per-message hot path never waits for D1 or R2). The `reactions` and
// `mentions` tables hold who reacted and who is mentioned, for every message in every tier. An erasure (protocol 17,
// member-data.ts) uses the same delete and reaction rules, without the checks a member's request passes.
import { utf8Length, type ChangeRequest, type ChatMessage, type MessageChange, type OutgoingMessage, type ReactionCount, type ReplyQuote } from "../../protocol/frames";
import { previewText } from "../../protocol/preview";
import type { Attachments } from "./attachments";
import type { Members } from "./members";
import type { Meta } from "./meta";
import type { D1Rewrites } from "./rewrites";
import type { ArchivedTiers } from "./tiers";
import { columnsOf, wire, type AppendError, type AppendResult, type MessageStream, type Relations, type StoredMessage } from "./stream";

/** The limits of changes (ConversationObject.limits: read at use, so tests can lower them). */
export interface ChangeLimits {
  maxBodyBytes: number;
  /** 0: no limit. */
  editWindowSeconds: number;
  maxReactionsPerMessage: number;
}

/** Targets read from the archive kept in memory (each is the current state: every change to one updates it). */
const COLD_CACHE = 1_000;
/** A change whose target is older than the hot tail and not loaded yet (a race with pruning): retry at once. */
const NOT_LOADED_RETRY_MS = 50;

export class Changes implements Relations {
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #members: Members;
  readonly #stream: MessageStream;
  readonly #attachments: () => Attachments;
  readonly #archived: ArchivedTiers;
  readonly #limits: ChangeLimits;
  readonly rewrites: D1Rewrites;
  /** seq → current state of a target older than the hot tail (read from the archive, then kept current). */
  readonly #cold = new Map<number, StoredMessage>();

  constructor(parts: {
    sql: SqlStorage;
    meta: Meta;
    members: Members;
    stream: MessageStream;
    attachments: () => Attachments;
    archived: ArchivedTiers;
    rewrites: D1Rewrites;
    limits: ChangeLimits;
  }) {
    this.#sql = parts.sql;
    this.#meta = parts.meta;
    this.#members = parts.members;
    this.#stream = parts.stream;
    this.#attachments = parts.attachments;
    this.#archived = parts.archived;
    this.#limits = parts.limits;
    this.rewrites = parts.rewrites;
  }

  // ------------------------------------------------------------------ targets, in any tier

  /** The entry at `seq` as stored now: null if there is none, undefined if it is in the archive only and not loaded. */
  current(seq: number): StoredMessage | null | undefined {
    if (seq < this.#meta.retainedFrom || seq > this.#stream.lastSeq) return null;
    const hot = this.#stream.stored(seq);
    if (hot) return hot;
    const oldestHot = this.#stream.oldestHotSeq();
    if (oldestHot !== null && seq >= oldestHot) return null; // a hole cannot exist in the hot tail
    return this.#cold.get(seq);
  }

  /** Of `seqs`, those that must be loaded from the archive before a change or reply naming them can be applied. */
  needs(seqs: number[]): number[] {
    return seqs.filter((s) => this.current(s) === undefined);
  }

  /** Read targets older than the hot tail from the archive (and a reply's thread root), queued rewrites laid over them. */
  async load(seqs: number[]): Promise<void> {
    let wanted = this.needs(seqs);
    for (let round = 0; round < 2 && wanted.length > 0; round++) {
      const roots: number[] = [];
      for (const seq of wanted) {
        const [message] = await this.#archived.read(seq, seq);
        if (this.current(seq) !== undefined) continue; // loaded meanwhile, or now hot
        if (!message) continue; // not archived yet either: the change answers message_not_found or retries
        this.#remember(message);
        if (message.replyTo) roots.push(message.replyTo.seq);
      }
      wanted = this.needs(roots);
    }
  }

  #remember(message: StoredMessage): void {
    this.#cold.delete(message.seq);
    this.#cold.set(message.seq, message);
    if (this.#cold.size > COLD_CACHE) this.#cold.delete(this.#cold.keys().next().value!);
  }

  /** Store a target's new state in its tier, and queue it for the archive (always: an archive run may be writing its old state right now). */
  #save(message: StoredMessage): void {
    if (!this.#stream.rewrite(message)) this.#remember(message);
    this.rewrites.row(message.seq, columnsOf(message));
  }

  // ------------------------------------------------------------------ new messages: replies and mentions

  relate(senderId: string, item: OutgoingMessage, seq: number): Pick<ChatMessage, "replyTo" | "mentions" | "mentionsAll"> | Omit<AppendError, "clientMsgId"> {
    const out: Pick<ChatMessage, "replyTo" | "mentions" | "mentionsAll"> = {};
    if (item.replyTo !== undefined) {
      const parent = item.replyTo < seq ? this.current(item.replyTo) : null;
      if (parent === undefined) return notLoaded();
      if (!parent || parent.change) return { code: "message_not_found", message: `no message at seq ${item.replyTo} to reply to` };
      // Threads are one level deep: a reply to a reply joins its parent's thread.
      const root = parent.replyTo ? this.current(parent.replyTo.seq) : parent;
      if (root === undefined) return notLoaded();
      if (!root || root.change) return { code: "message_not_found", message: `no message at seq ${item.replyTo} to reply to` };
      if (parent.deleted || root.deleted) return { code: "message_deleted", message: "that message was deleted" };
      out.replyTo = quoteOf(root);
    }
    if (item.mentions?.length) {
      const stranger = item.mentions.find((id) => this.#members.get(id) === null);
      if (stranger !== undefined) return { code: "invalid_mention", message: `${stranger} is not a member of this conversation` };
      out.mentions = item.mentions;
    }
    if (item.mentionsAll) {
      if (this.#meta.type !== "group" || this.#members.get(senderId)?.role === "member") {
        return { code: "forbidden", message: "only a group's owner or admins can mention everyone" };
      }
      out.mentionsAll = true;
    }
    return out;
  }

  stored(message: ChatMessage): void {
    for (const userId of message.mentions ?? []) {
      if (userId !== message.senderId) this.#sql.exec("INSERT OR IGNORE INTO mentions (user_id, seq, sender_id) VALUES (?, ?, ?)", userId, message.seq, message.senderId);
    }
    if (message.mentionsAll) this.#sql.exec("INSERT OR IGNORE INTO mentions (user_id, seq, sender_id) VALUES ('*', ?, ?)", message.seq, message.senderId);
    if (message.replyTo) {
      const root = this.current(message.replyTo.seq);
      if (root) {
        root.replies = { count: (root.replies?.count ?? 0) + 1, lastAt: message.createdAt };
        this.#save(root);
      }
    }
  }

  // ------------------------------------------------------------------ changes

  /** Apply one change (call inside the stream's atomically()): an ack with the entry it stored, or an error. */
  apply(senderId: string, req: ChangeRequest, now: number): AppendResult {
    const existing = this.#stream.findByClientMsgId(senderId, req.clientMsgId);
    if (existing) return { ack: { ...existing, clientMsgId: req.clientMsgId, duplicate: true }, fresh: [] };
    const target = this.current(req.seq);
    if (target === undefined) return { error: { ...notLoaded(), clientMsgId: req.clientMsgId } };
    if (!target || target.change) return refuse(req, "message_not_found", `no message at seq ${req.seq}`);
    switch (req.type) {
      case "edit":
        return this.#edit(senderId, req, target, now);
      case "delete":
        return this.#delete(senderId, req, target, now);
      case "react":
        return this.#react(senderId, req, target, now);
    }
  }

  #edit(senderId: string, req: Extract<ChangeRequest, { type: "edit" }>, target: StoredMessage, now: number): AppendResult {
    if (target.senderId !== senderId) return refuse(req, "forbidden", "only the sender can edit a message");
    if (target.deleted) return refuse(req, "message_deleted", "that message was deleted");
    const window = this.#limits.editWindowSeconds;
    if (window > 0 && now - target.createdAt > window * 1000) return refuse(req, "edit_window_closed", `messages can be edited for ${window} seconds after they are sent`);
    if (utf8Length(req.body) > this.#limits.maxBodyBytes) return refuse(req, "body_too_large", `message body is limited to ${this.#limits.maxBodyBytes} bytes of UTF-8`);
    if (req.body === "" && !target.attachments?.length) return refuse(req, "validation_failed", "body: body must not be empty");
    const refused = this.#stream.admit(senderId, req.clientMsgId, now);
    if (refused) return { error: refused };

    const version = (target.edited?.version ?? 1) + 1;
    const entry = this.#stream.appendChange(senderId, req.clientMsgId, `* ${req.body}`, { type: "edit", target: target.seq, version, body: req.body }, now);
    // Earlier bodies are not served: the previous edit entries lose theirs.
    for (const e of target._?.edits ?? []) this.#redactEdit(e.seq, target.seq, e.version);
    target.body = req.body;
    target.edited = { at: now, version };
    target._ = { ...target._, edits: [...(target._?.edits ?? []), { seq: entry.seq, version }] };
    this.#save(target);
    if (target.replies) this.#requote(target.seq, quoteOf(target));
    return accepted(req, entry);
  }

  #delete(senderId: string, req: Extract<ChangeRequest, { type: "delete" }>, target: StoredMessage, now: number): AppendResult {
    if (target.deleted) {
      // Deleting a deleted message changes nothing: the original delete's ack.
      const by = target._?.deletedBy;
      return { ack: { clientMsgId: req.clientMsgId, seq: by?.seq ?? 0, id: by?.id ?? "", createdAt: by?.createdAt ?? target.deleted.at, duplicate: true }, fresh: [] };
    }
    if (target.senderId !== senderId) {
      const role = this.#members.get(senderId)?.role;
      if (this.#meta.type !== "group" || role === "member") return refuse(req, "forbidden", "only the sender, or a group's owner or admins, can delete a message");
    }
    // A delete frees space: it is not refused at the storage ceiling.
    const refused = this.#stream.admit(senderId, req.clientMsgId, now, false);
    if (refused) return { error: refused };

    const entry = this.#stream.appendChange(senderId, req.clientMsgId, "(deleted a message)", { type: "delete", target: target.seq }, now);
    this.#tombstone(target, senderId, entry, now);
    return accepted(req, entry);
  }

  /** `target` becomes a tombstone, deleted by `by` with `entry`: its body, attachments, mentions, reactions and edit history go from every tier. */
  #tombstone(target: StoredMessage, by: string, entry: StoredMessage, now: number): void {
    for (const e of target._?.edits ?? []) this.#redactEdit(e.seq, target.seq, e.version);
    const tombstone: StoredMessage = {
      seq: target.seq,
      id: target.id,
      senderId: target.senderId,
      clientMsgId: target.clientMsgId,
      body: "",
      createdAt: target.createdAt,
      deleted: { at: now, by },
      ...(target.replies ? { replies: target.replies } : {}),
      _: { deletedBy: { seq: entry.seq, id: entry.id, createdAt: now } },
    };
    this.#save(tombstone);
    this.#sql.exec("DELETE FROM reactions WHERE seq = ?", target.seq);
    this.#sql.exec("DELETE FROM mentions WHERE seq = ?", target.seq);
    this.#sql.exec("INSERT OR IGNORE INTO deleted_messages (seq) VALUES (?)", target.seq);
    if (target.attachments?.length) this.#attachments().messageDeleted(target.seq);
    if (target.replies) this.#requote(target.seq, { seq: target.seq, senderId: target.senderId, quote: "", deleted: true });
  }

  #react(senderId: string, req: Extract<ChangeRequest, { type: "react" }>, target: StoredMessage, now: number): AppendResult {
    if (target.deleted) return refuse(req, "message_deleted", "that message was deleted");
    const mine = this.#sql
      .exec<{ entrySeq: number }>("SELECT entry_seq AS entrySeq FROM reactions WHERE seq = ? AND emoji = ? AND user_id = ?", target.seq, req.emoji, senderId)
      .toArray()[0];
    if (req.on === (mine !== undefined)) {
      // Already so: nothing is stored; the ack names the entry that made it so (0 when none did).
      return { ack: { clientMsgId: req.clientMsgId, seq: mine?.entrySeq ?? 0, id: "", createdAt: now, duplicate: true }, fresh: [] };
    }
    const counts = target.reactions ?? [];
    if (req.on && !counts.some((r) => r.emoji === req.emoji) && counts.length >= this.#limits.maxReactionsPerMessage) {
      return refuse(req, "too_many_reactions", `a message can have at most ${this.#limits.maxReactionsPerMessage} different reactions`);
    }
    const refused = this.#stream.admit(senderId, req.clientMsgId, now, req.on);
    if (refused) return { error: refused };

    return accepted(req, this.#setReaction(senderId, req.clientMsgId, target, req.emoji, req.on, now));
  }

  /** Store `userId`'s reaction `emoji` on `target` as on or off, with its entry, and the new count on the target. */
  #setReaction(userId: string, clientMsgId: string, target: StoredMessage, emoji: string, on: boolean, now: number): StoredMessage {
    const entrySeq = this.#stream.lastSeq + 1;
    if (on) {
      this.#sql.exec("INSERT INTO reactions (seq, emoji, user_id, entry_seq, created_at) VALUES (?, ?, ?, ?, ?)", target.seq, emoji, userId, entrySeq, now);
    } else {
      this.#sql.exec("DELETE FROM reactions WHERE seq = ? AND emoji = ? AND user_id = ?", target.seq, emoji, userId);
    }
    const count = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM reactions WHERE seq = ? AND emoji = ?", target.seq, emoji).one().n;
    const change: MessageChange = { type: "reaction", target: target.seq, emoji, on, count };
    const entry = this.#stream.appendChange(userId, clientMsgId, `${on ? "reacted" : "took back"} ${emoji}`, change, now);
    const reactions = setCount(target.reactions ?? [], emoji, count);
    if (reactions.length > 0) target.reactions = reactions;
    else delete target.reactions;
    this.#save(target);
    return entry;
  }

  // ------------------------------------------------------------------ erasure (protocol 17)

  /** Archived messages an erasure step read: kept as loaded targets, unless one was loaded (and maybe changed) meanwhile. */
  adopt(messages: StoredMessage[]): void {
    for (const m of messages) if (this.current(m.seq) === undefined) this.#remember(m);
  }

  /**
   * Erasure: `target`, a message of `userId`, becomes a tombstone deleted by them, with a delete entry from them
   * (call inside atomically()). A delete's rules without its checks and rate limit: the account is going.
   */
  erase(userId: string, target: StoredMessage, now: number): StoredMessage {
    const entry = this.#stream.appendChange(userId, erasureId(this.#stream.lastSeq + 1), "(deleted a message)", { type: "delete", target: target.seq }, now);
    this.#tombstone(target, userId, entry, now);
    return entry;
  }

  /** Reactions of `userId` on messages lo..hi (an export), by seq. */
  reactionsIn(userId: string, lo: number, hi: number): { seq: number; emoji: string; createdAt: number }[] {
    return this.#sql
      .exec<{ seq: number; emoji: string; createdAt: number }>(
        "SELECT seq, emoji, created_at AS createdAt FROM reactions WHERE user_id = ? AND seq BETWEEN ? AND ? ORDER BY seq, emoji",
        userId,
        lo,
        hi,
      )
      .toArray();
  }

  /** The first `limit` reactions `userId` still has here (an erasure takes them back), by seq. */
  reactionsOfUser(userId: string, limit: number): { seq: number; emoji: string }[] {
    return this.#sql.exec<{ seq: number; emoji: string }>("SELECT seq, emoji FROM reactions WHERE user_id = ? ORDER BY seq, emoji LIMIT ?", userId, limit).toArray();
  }

  /** Erasure: a reaction row of `userId` left on something that is no message now (deleted): dropped, nothing to announce. */
  dropReaction(userId: string, seq: number, emoji: string): void {
    this.#sql.exec("DELETE FROM reactions WHERE seq = ? AND emoji = ? AND user_id = ?", seq, emoji, userId);
  }

  /** Erasure: up to `limit` more unread-mention rows naming `userId` go. Returns how many (0: none are left). */
  forgetMentionsOf(userId: string, limit: number): number {
    this.#sql.exec("DELETE FROM mentions WHERE user_id = ?1 AND seq IN (SELECT seq FROM mentions WHERE user_id = ?1 LIMIT ?2)", userId, limit);
    return this.#sql.exec<{ n: number }>("SELECT changes() AS n").one().n;
  }

  /** Erasure: `userId`'s reaction `emoji` on `target` is taken back, with its reaction entry (call inside atomically()). */
  unreact(userId: string, target: StoredMessage, emoji: string, now: number): StoredMessage {
    return this.#setReaction(userId, erasureId(this.#stream.lastSeq + 1), target, emoji, false, now);
  }

  /** An edit entry superseded by a newer edit or a delete: its body is no longer served. */
  #redactEdit(seq: number, target: number, version: number): void {
    const entry = this.#stream.stored(seq) ?? this.#cold.get(seq);
    const redacted: StoredMessage = entry
      ? { ...entry, body: "* (edited)", change: { type: "edit", target, version } }
      : // Not hot and not loaded: the columns are all a rewrite sets, and they are known.
        { seq, id: "", senderId: "", clientMsgId: "", createdAt: 0, body: "* (edited)", change: { type: "edit", target, version } };
    if (entry) this.#save(redacted);
    else this.rewrites.row(seq, columnsOf(redacted));
  }

  /** A thread parent's body changed: every reply's quote follows, in both tiers. */
  #requote(parent: number, quote: ReplyQuote): void {
    this.#stream.setQuotes(parent, quote);
    for (const [seq, m] of this.#cold) if (m.replyTo?.seq === parent && !m.deleted) this.#cold.set(seq, { ...m, replyTo: quote });
    this.rewrites.quote(parent, quote);
  }

  // ------------------------------------------------------------------ reads for one user

  /** Mark the reactions `userId` has on these messages (`me`). One query per call. */
  forViewer(messages: ChatMessage[], userId: string): ChatMessage[] {
    const reacted = messages.filter((m) => m.reactions?.length);
    if (reacted.length === 0) return messages;
    const mine = new Set(
      this.#sql
        .exec<{ seq: number; emoji: string }>(
          "SELECT seq, emoji FROM reactions WHERE user_id = ? AND seq BETWEEN ? AND ?",
          userId,
          reacted[0]!.seq,
          reacted[reacted.length - 1]!.seq,
        )
        .toArray()
        .map((r) => `${r.seq} ${r.emoji}`),
    );
    return messages.map((m) => (m.reactions?.length ? { ...m, reactions: m.reactions.map((r) => ({ ...r, me: mine.has(`${m.seq} ${r.emoji}`) })) } : m));
  }

  /** Who reacted to `seq`: per emoji (up to `limit` user ids each, by id), or one emoji's users after `after`. */
  reactionsOf(seq: number, query: { emoji?: string; after?: string; limit: number }): { emoji: string; count: number; userIds: string[]; nextAfter: string | null }[] {
    const emojis = query.emoji !== undefined ? [query.emoji] : (this.current(seq)?.reactions ?? []).map((r) => r.emoji);
    return emojis.map((emoji) => {
      const count = this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM reactions WHERE seq = ? AND emoji = ?", seq, emoji).one().n;
      const userIds = this.#sql
        .exec<{ userId: string }>(
          "SELECT user_id AS userId FROM reactions WHERE seq = ? AND emoji = ? AND user_id > ? ORDER BY user_id LIMIT ?",
          seq,
          emoji,
          query.after ?? "",
          query.limit,
        )
        .toArray()
        .map((r) => r.userId);
      return { emoji, count, userIds, nextAfter: userIds.length === query.limit ? userIds[userIds.length - 1]! : null };
    });
  }
}

/** The clientMsgId of an entry an erasure makes: outside the characters clients may use, so it never meets theirs. */
function erasureId(seq: number): string {
  return `erasure/${seq}`;
}

function notLoaded(): Omit<AppendError, "clientMsgId"> {
  return { code: "unavailable", message: "that message is being read from the archive; retry", retryAfterMs: NOT_LOADED_RETRY_MS };
}

function refuse(req: ChangeRequest, code: AppendError["code"], message: string): AppendResult {
  return { error: { code, message, clientMsgId: req.clientMsgId } };
}

function accepted(req: ChangeRequest, entry: StoredMessage): AppendResult {
  return { ack: { clientMsgId: req.clientMsgId, seq: entry.seq, id: entry.id, createdAt: entry.createdAt, duplicate: false }, fresh: [wire(entry)] };
}

/** The quote a reply carries of `parent` (protocol/preview.ts). */
export function quoteOf(parent: ChatMessage): ReplyQuote {
  return { seq: parent.seq, senderId: parent.senderId, quote: previewText(parent.body, parent.attachments) };
}

/** The reaction summary with `emoji` at `count` (removed at 0), most reacted first, ties in the order they came. */
function setCount(counts: ReactionCount[], emoji: string, count: number): ReactionCount[] {
  const next = counts.filter((r) => r.emoji !== emoji).map((r) => ({ emoji: r.emoji, count: r.count }));
  if (count > 0) {
    const at = counts.findIndex((r) => r.emoji === emoji);
    next.splice(at === -1 ? next.length : at, 0, { emoji, count });
  }
  return next.map((r, i) => ({ r, i })).sort((a, b) => b.r.count - a.r.count || a.i - b.i).map(({ r }) => r);
}
