// Fan-out to the members' user objects: their stored inbox (last message, unread counts, receipts on the
// user socket) and push. Owns `notified_seq` (how far the inboxes have been told) and `pushed_seq`.
//
// Coalesced: at most one run per NOTIFY_INTERVAL_MS, so its cost per message is a schedule check. What
// a run does depends on the size of the conversation:
// - Small (at most 100 members, `Members.isLarge`), fan-out on write: every member's inbox hears the new
//   position, by RPC (up to DIRECT_FANOUT_LIMIT targets) or through FANOUT_QUEUE.
// - Large, fan-out on read: a new message wakes no user object. Inboxes are told only what concerns them
//   (joins, their own cursors) and ask the conversation for its position when they are read or a user
//   socket connects (`position`). Members with no device connected are sent one update for a push,
//   then none until they have read up to it. Live events for online members are live.ts.
//
// The stream's entries are messages and change entries (edits, deletes, reactions; docs/protocol.md 15).
// Inboxes count messages, never change entries: summaries carry `lastCount` and targets `readCount` (the
// messages up to lastSeq and readSeq) and the unread mentions; the preview is the newest message that is not
// deleted, in its current state; a push is only ever for a new message.
import { previewText } from "../../protocol/preview";
import type { ReceiptCursor } from "../../protocol/user";
import type { ChatMessage } from "../../protocol/frames";
import { pacedSettled } from "../../lib/concurrency";
import { chunkBySize, sendAll } from "../../lib/queue-batches";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import { STORED_FANOUT_PACE, type ConversationSummary, type FanoutJob, type FanoutTarget } from "../shared/updates";
import { isLive, type Sockets } from "./connections";
import type { Cursors } from "./cursors";
import type { Job } from "./index";
import type { LiveFeed } from "./live";
import type { MemberRow, Members } from "./members";
import type { Meta } from "./meta";
import type { MessageStream } from "./stream";

/** Members hear "conversation advanced" at most once per this interval. */
const NOTIFY_INTERVAL_MS = 1_000;
/** At or below this many targets, this object calls the user objects itself; above, FANOUT_QUEUE does. */
const DIRECT_FANOUT_LIMIT = 50;
/** Most user objects one queue message updates (the consumer calls them side by side). */
const FANOUT_TARGETS_PER_MESSAGE = 100;

export class Fanout {
  readonly #env: Env;
  readonly #sql: SqlStorage;
  readonly #jobs: JobRunner<Job>;
  readonly #meta: Meta;
  readonly #members: Members;
  readonly #stream: MessageStream;
  readonly #cursors: Cursors;
  readonly #sockets: Sockets;
  readonly #live: LiveFeed;
  #lastNotifyAt = 0;

  constructor(
    env: Env,
    sql: SqlStorage,
    jobs: JobRunner<Job>,
    parts: { meta: Meta; members: Members; stream: MessageStream; cursors: Cursors; sockets: Sockets; live: LiveFeed },
  ) {
    this.#env = env;
    this.#sql = sql;
    this.#jobs = jobs;
    this.#meta = parts.meta;
    this.#members = parts.members;
    this.#stream = parts.stream;
    this.#cursors = parts.cursors;
    this.#sockets = parts.sockets;
    this.#live = parts.live;
    jobs.define("notify", () => this.#notify());
  }

  /** Something members should hear about changed. The first run after a quiet period goes out at once. */
  schedule(): void {
    if (this.#jobs.has("notify")) return;
    this.#jobs.ensure("notify", Math.max(Date.now() + 10, this.#lastNotifyAt + NOTIFY_INTERVAL_MS));
  }

  /**
   * Entries were committed (messages and change entries, oldest first): live events now (after this event's
   * commit), the stored inboxes at the next run. Call in the commit's event, right after it.
   */
  published(entries: ChatMessage[]): void {
    this.schedule();
    if (entries.length === 0) return;
    // The count after these entries, read now (memory, no SQL): later commits may land before the timer.
    const countAfter = this.#stream.lastCount;
    // A later event: the commit's own event stays exactly the hot path (test/hot-path-sql-budget.test.ts).
    setTimeout(() => this.#live.publish(this.#liveEvents(entries, countAfter)), 0);
  }

  /**
   * One live event per new message, and per edit or delete that changes the preview (of the newest message
   * that is not deleted). Reactions change nothing an inbox shows: the stored fan-out moves lastSeq past them.
   */
  #liveEvents(entries: ChatMessage[], countAfter: number): ConversationSummary[] {
    const counts: number[] = [];
    let n = countAfter;
    for (let i = entries.length - 1; i >= 0; i--) {
      counts[i] = n;
      if (!entries[i]!.change) n--;
    }
    const deleted = new Set(entries.flatMap((e) => (e.change?.type === "delete" ? [e.change.target] : [])));
    const changesPreview = entries.some((e) => e.change !== undefined && e.change.type !== "reaction");
    const newest = changesPreview ? this.#stream.newestMessage() : null;
    const lastSeq = entries[entries.length - 1]!.seq;
    const base = this.#base();
    const events: ConversationSummary[] = [];
    entries.forEach((e, i) => {
      const change = e.change;
      if (!change) {
        // A message deleted in the same commit is never shown as a preview, not even for a moment.
        if (!deleted.has(e.seq)) events.push({ ...base, lastSeq: e.seq, lastCount: counts[i], lastMessage: lastMessageOf(e) });
        return;
      }
      if (change.type === "reaction") return;
      // Only an edit of the preview, or a delete of it (or of a newer message), changes it. A newer message
      // committed since (newest.seq > lastSeq) has its own event, with the current preview.
      if (newest && (newest.seq > lastSeq || change.target < newest.seq)) return;
      events.push({ ...base, lastSeq: e.seq, lastCount: counts[i], lastMessage: newest ? lastMessageOf(newest) : null });
    });
    return events;
  }

  /** One member's view of the conversation, as the fan-out would send it (fan-out on read). */
  position(member: MemberRow): { summary: ConversationSummary; target: FanoutTarget } {
    return { summary: this.#summary([]), target: this.#targetOf(member, new Map()) };
  }

  /**
   * When the stream advanced, small conversations tell every member's inbox the new last seq and preview;
   * otherwise (and in large conversations) only members whose cursors or membership changed, plus, in
   * large ones, members to push. A failure throws and the whole run is retried: every field the user
   * objects apply only moves forward.
   */
  async #notify(): Promise<JobOutcome> {
    const cursors = this.#cursors;
    const conversationId = this.#meta.id;
    const lastSeq = this.#stream.lastSeq;
    const notified = this.#meta.notifiedSeq;
    const dirty = cursors.dirty();
    if (lastSeq <= notified && dirty.userIds.length === 0) return "done";
    const dirtyMembers = dirty.userIds.map((id) => this.#members.get(id)).filter((m): m is MemberRow => m !== null);
    const dirtyCursors: ReceiptCursor[] = dirtyMembers.map((m) => ({ userId: m.userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq }));
    const large = this.#members.isLarge();
    // Receipts reach the open conversation sockets coalesced: one frame per interval, not per message per member.
    // In large conversations each member hears only their own cursors (their other devices): every cursor to every
    // socket would grow with members squared (every client reports delivery of every message).
    if (dirtyCursors.length > 0) {
      if (!large) this.#sockets.broadcast({ type: "receipts", conversationId, cursors: dirtyCursors }, isLive);
      else {
        const own = new Map(dirtyCursors.map((c) => [c.userId, { type: "receipts" as const, conversationId, cursors: [c] }]));
        this.#sockets.broadcastEach((s) => (isLive(s) ? (own.get(s.userId) ?? null) : null));
      }
    }

    const summary = this.#summary(large ? [] : dirtyCursors);
    let targets: MemberRow[];
    let pushed: string[] = [];
    let pushedSeq = 0;
    if (!large) {
      const everyone = lastSeq > notified || dirtyCursors.length > 0;
      targets = everyone ? this.#members.list() : dirtyMembers;
    } else {
      // Only a new message pushes: the newest message is newer than what the inboxes were last told.
      const newest = summary.lastMessage;
      if (newest && newest.seq > notified && this.#env.PUSH_WEBHOOK_URL) {
        pushed = this.#toPush(newest.seq, newest.senderId);
        pushedSeq = newest.seq;
      }
      const dirtyIds = new Set(dirty.userIds);
      targets = [...dirtyMembers, ...pushed.filter((id) => !dirtyIds.has(id)).map((id) => this.#members.get(id)).filter((m): m is MemberRow => m !== null)];
    }
    const counts = new Map<number, number>();
    await this.#deliver(summary, targets.map((m) => this.#targetOf(m, counts)));

    this.#lastNotifyAt = Date.now();
    this.#meta.set("notified_seq", String(Math.max(notified, lastSeq)));
    if (pushed.length > 0) {
      // The message's seq, not lastSeq: a member who reads up to the message (not the reactions after it) can be pushed again.
      this.#sql.exec("UPDATE members SET pushed_seq = max(pushed_seq, ?) WHERE user_id IN (SELECT value FROM json_each(?))", pushedSeq, JSON.stringify(pushed));
    }
    cursors.clearDirty(dirty.upTo);
    const more = this.#stream.lastSeq > lastSeq || cursors.hasDirty();
    return more ? { at: this.#lastNotifyAt + NOTIFY_INTERVAL_MS } : "done";
  }

  /**
   * Large conversations: members who may need a push for the new message `seq`: it is unread for them, nothing
   * was pushed since they last read, they did not send it, and no device of theirs is here (a socket on this
   * conversation, or a user socket listening). Their user object decides (it knows about their other devices).
   */
  #toPush(seq: number, senderId: string): string[] {
    const here = new Set<string>();
    for (const [, state] of this.#sockets.entries()) here.add(state.userId);
    return this.#sql
      .exec<{ userId: string }>("SELECT user_id AS userId FROM members WHERE read_seq < ? AND pushed_seq <= read_seq", seq)
      .toArray()
      .map((r) => r.userId)
      .filter((id) => id !== senderId && !here.has(id) && !this.#live.isListening(id));
  }

  /** Where the stream is now, for the inboxes: its position in seqs and in messages, and the preview. */
  #summary(receipts: ReceiptCursor[]): ConversationSummary {
    const newest = this.#stream.newestMessage();
    return { ...this.#base(), lastSeq: this.#stream.lastSeq, lastCount: this.#stream.lastCount, lastMessage: newest ? lastMessageOf(newest) : null, receipts };
  }

  /** A member as the inboxes are told: cursors, the messages up to readSeq (and deleted after it), unread mentions. `counts` caches it per readSeq. */
  #targetOf(m: MemberRow, counts: Map<number, number>): FanoutTarget {
    let readCount = counts.get(m.readSeq);
    // Deleted messages after the read position are not unread: they count as read. (A member's own messages are
    // never after their read position: sending marks read.)
    if (readCount === undefined) counts.set(m.readSeq, (readCount = this.#stream.countAt(m.readSeq) + this.#stream.deletedAfter(m.readSeq)));
    return {
      userId: m.userId,
      deliveredSeq: m.deliveredSeq,
      readSeq: m.readSeq,
      joinedAt: m.joinedAt,
      readCount,
      mentions: this.#stream.unreadMentions(m.userId, m.readSeq),
    };
  }

  /** What every summary of this conversation carries besides the position. */
  #base(): Omit<ConversationSummary, "lastSeq" | "lastMessage"> {
    const type = this.#meta.type;
    return {
      conversationId: this.#meta.id,
      type,
      title: this.#meta.title,
      directMembers: type === "direct" ? this.#members.list().map((m) => ({ userId: m.userId, username: m.username })) : null,
      receipts: [],
      ...(this.#members.isLarge() ? { pull: true } : {}),
    };
  }

  async #deliver(summary: ConversationSummary, targets: FanoutTarget[]): Promise<void> {
    if (targets.length === 0) return;
    if (targets.length <= DIRECT_FANOUT_LIMIT) {
      const results = await pacedSettled(targets, STORED_FANOUT_PACE, (t) => userStub(this.#env, t.userId).conversationUpdate(summary, t));
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return;
    }
    // Sized by bytes against the Queues limits (lib/queue-batches.ts), never by a fixed count.
    const jobs = chunkBySize(targets, (chunk): FanoutJob => ({ kind: "conversation_update", summary, targets: chunk }), { maxItems: FANOUT_TARGETS_PER_MESSAGE });
    await sendAll(this.#env.FANOUT_QUEUE, jobs);
  }
}

/** A message (in its current state) as a preview: the edit's time, and whom it mentions (for the push). */
function lastMessageOf(m: ChatMessage): NonNullable<ConversationSummary["lastMessage"]> {
  return {
    seq: m.seq,
    senderId: m.senderId,
    preview: previewText(m.body, m.attachments),
    createdAt: m.createdAt,
    ...(m.edited ? { editedAt: m.edited.at } : {}),
    ...(m.mentions?.length ? { mentions: m.mentions } : {}),
    ...(m.mentionsAll ? { mentionsAll: true as const } : {}),
  };
}
