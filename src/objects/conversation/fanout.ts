// Fan-out to the members' user objects (inbox, unread counts, receipts on the user socket, push), and
// coalesced receipts to this conversation's sockets. Coalesced: at most one run per NOTIFY_INTERVAL_MS,
// so its cost is nothing per message (a schedule check) and, per interval, one RPC per member for small
// conversations or one queue message per FANOUT_TARGETS_PER_MESSAGE members for large ones. Owns
// `notified_seq` (how far the inboxes have been told).
import type { ReceiptCursor } from "../../protocol/user";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import type { ConversationSummary, FanoutJob, FanoutTarget } from "../shared/updates";
import { isLive, type Sockets } from "./connections";
import { RECEIPT_PUSH_LIMIT, type Cursors } from "./cursors";
import type { Job } from "./index";
import type { MemberRow, Members } from "./members";
import type { Meta } from "./meta";
import type { MessageStream } from "./stream";

/** Members hear "conversation advanced" at most once per this interval. */
const NOTIFY_INTERVAL_MS = 1_000;
/** At or below this many targets, this object calls the user objects itself; above, FANOUT_QUEUE does. */
const DIRECT_FANOUT_LIMIT = 50;
const FANOUT_TARGETS_PER_MESSAGE = 100;

export class Fanout {
  readonly #env: Env;
  readonly #jobs: JobRunner<Job>;
  readonly #meta: Meta;
  readonly #members: Members;
  readonly #stream: MessageStream;
  readonly #cursors: Cursors;
  readonly #sockets: Sockets;
  #lastNotifyAt = 0;

  constructor(
    env: Env,
    jobs: JobRunner<Job>,
    parts: { meta: Meta; members: Members; stream: MessageStream; cursors: Cursors; sockets: Sockets },
  ) {
    this.#env = env;
    this.#jobs = jobs;
    this.#meta = parts.meta;
    this.#members = parts.members;
    this.#stream = parts.stream;
    this.#cursors = parts.cursors;
    this.#sockets = parts.sockets;
    jobs.define("notify", () => this.#notify());
  }

  /** Something members should hear about changed. The first run after a quiet period goes out at once. */
  schedule(): void {
    if (this.#jobs.has("notify")) return;
    this.#jobs.ensure("notify", Math.max(Date.now() + 10, this.#lastNotifyAt + NOTIFY_INTERVAL_MS));
  }

  /**
   * When the stream advanced, every member's inbox hears the new last seq and preview; otherwise only
   * members whose cursors changed (plus everyone, in conversations small enough to push receipts).
   * A failure throws and the whole run is retried: every field the user objects apply only moves forward.
   */
  async #notify(): Promise<JobOutcome> {
    const cursors = this.#cursors;
    const conversationId = this.#meta.id;
    const lastSeq = this.#stream.lastSeq;
    const notified = this.#meta.notifiedSeq;
    const dirty = cursors.dirty();
    const memberCount = this.#members.count();
    if (lastSeq <= notified && dirty.userIds.length === 0) return "done";
    const dirtyCursors: ReceiptCursor[] = [];
    for (const userId of dirty.userIds) {
      const m = this.#members.get(userId);
      if (m) dirtyCursors.push({ userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq });
    }
    // Receipts reach the open conversation sockets coalesced: one frame per interval, not per message per member.
    if (dirtyCursors.length > 0) this.#sockets.broadcast({ type: "receipts", conversationId, cursors: dirtyCursors }, isLive);

    const small = memberCount <= RECEIPT_PUSH_LIMIT;
    const everyone = lastSeq > notified || (small && dirtyCursors.length > 0);
    const targets: FanoutTarget[] = (
      everyone ? this.#members.list() : dirty.userIds.map((id) => this.#members.get(id)).filter((m): m is MemberRow => m !== null)
    ).map((m) => ({ userId: m.userId, deliveredSeq: m.deliveredSeq, readSeq: m.readSeq, joinedAt: m.joinedAt }));
    const newest = this.#stream.newest();
    const type = this.#meta.type;
    const summary: ConversationSummary = {
      conversationId,
      type,
      title: this.#meta.title,
      directMembers: type === "direct" ? this.#members.list().map((m) => ({ userId: m.userId, username: m.username })) : null,
      lastSeq,
      lastMessage: newest ? { seq: newest.seq, senderId: newest.senderId, preview: previewOf(newest.body), createdAt: newest.createdAt } : null,
      receipts: small ? dirtyCursors : [],
    };
    await this.#deliver(summary, targets);

    this.#lastNotifyAt = Date.now();
    this.#meta.set("notified_seq", String(Math.max(notified, lastSeq)));
    cursors.clearDirty(dirty.upTo);
    const more = this.#stream.lastSeq > lastSeq || cursors.hasDirty();
    return more ? { at: this.#lastNotifyAt + NOTIFY_INTERVAL_MS } : "done";
  }

  async #deliver(summary: ConversationSummary, targets: FanoutTarget[]): Promise<void> {
    if (targets.length <= DIRECT_FANOUT_LIMIT) {
      const results = await Promise.allSettled(targets.map((t) => userStub(this.#env, t.userId).conversationUpdate(summary, t)));
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return;
    }
    const messages: { body: FanoutJob }[] = [];
    for (let i = 0; i < targets.length; i += FANOUT_TARGETS_PER_MESSAGE) {
      messages.push({ body: { kind: "conversation_update", summary, targets: targets.slice(i, i + FANOUT_TARGETS_PER_MESSAGE) } });
    }
    for (let i = 0; i < messages.length; i += 100) await this.#env.FANOUT_QUEUE.sendBatch(messages.slice(i, i + 100));
  }
}

/** The first 140 characters on one line; cut on code points so an emoji is never split in half. */
function previewOf(body: string): string {
  const chars = Array.from(body.replace(/\s+/g, " ").trim());
  return chars.length > 140 ? `${chars.slice(0, 139).join("")}…` : chars.join("");
}
