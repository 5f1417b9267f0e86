// One member's data, for the admin jobs of docs/protocol.md 17 that the user's own object runs
// (src/objects/user/admin-jobs.ts), and what happens when a member goes (removed, left, or erased):
//   export   a page of what one user wrote here: their messages in their current state, read from every tier in
//            seq order (history.ts), and their reactions; a bounded scan per call, and a cursor to continue.
//   erasure  bounded steps with a cursor the caller keeps: leave (the membership), messages (each becomes a
//            tombstone with a delete entry from them: the delete rules of changes.ts), reactions (taken back with
//            reaction entries), the rest (their uploads, mentions of them), then settle: the archive job has
//            carried every rewrite into D1 and the R2 segments, and the attachments job has deleted their files.
// Nothing is stored here: the caller holds the cursor, so a crash or a deploy only repeats a step, and every
// step is idempotent (a tombstone is not erased again; a reaction taken back is not there any more).
import type { ChatMessage } from "../../protocol/frames";
import type { ConversationType, Role } from "../../protocol/api";
import { AppError } from "../../lib/errors";
import { CloseCode } from "../../protocol/errors";
import type { JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import type { Attachments } from "./attachments";
import type { Changes } from "./changes";
import type { CommitPath } from "./commit";
import type { Sockets } from "./connections";
import type { History } from "./history";
import type { Job } from "./index";
import type { LiveFeed } from "./live";
import { publicMember, type MemberRow, type Members } from "./members";
import type { Meta } from "./meta";
import type { MemberNews } from "./member-news";
import type { DirectoryOutbox } from "./outbox";
import type { D1Rewrites } from "./rewrites";
import type { ColdSegments } from "./segments";
import type { MessageStream, StoredMessage } from "./stream";
import type { ArchivedTiers } from "./tiers";

/** Seqs one call reads, whichever tiers hold them (a cold segment holds up to 1,000). */
const SCAN_SEQS = 1_000;
/** An export page stops after about this many bytes of messages. */
const EXPORT_PAGE_BYTES = 1024 * 1024;
/** Messages made tombstones per erasure step (each is a delete entry broadcast to the live sockets). */
const ERASE_PER_STEP = 200;
/** Reactions taken back per erasure step (their targets may have to be read from the archive first). */
const UNREACT_PER_STEP = 50;
/** Uploads marked for deletion, and mention rows dropped, per erasure step. */
const REST_PER_STEP = 500;
/** Archive and attachment job runs one settle step waits for. */
const SETTLE_ROUNDS = 10;
/** A settle step that could not finish (D1 or R2 failing, or more work queued): ask again this much later. */
const SETTLE_RETRY_MS = 1_000;

/** Where an export page comes from (on the first page, `after` = 0). */
export interface ExportConversation {
  id: string;
  type: ConversationType;
  title: string | null;
  createdAt: number;
  createdBy: string;
  /** The user's membership now; null when they are not a member (left, removed). */
  role: Role | null;
  joinedAt: number | null;
}

export interface ExportPage {
  /** On the first page only. */
  conversation?: ExportConversation;
  /** The user's messages (not change entries) in this page's range, ascending, in their current state. */
  messages: ChatMessage[];
  /** The user's reactions on messages in this page's range. */
  reactions: { seq: number; emoji: string; createdAt: number }[];
  /** Pass as `after` for the next page; null: nothing more. */
  next: number | null;
}

/** Where an erasure is in one conversation. Start with `{phase: "leave"}`. */
export type EraseCursor =
  | { phase: "leave" }
  | { phase: "messages"; after: number; until: number }
  | { phase: "reactions" }
  | { phase: "rest" }
  | { phase: "settle"; rewrites: number; outbox: number; notify: number };

export interface EraseStep {
  /** Pass back for the next step; null: everything of the user here is gone from every tier. */
  next: EraseCursor | null;
  /** Messages made tombstones, and reactions taken back, in this step. */
  messages: number;
  reactions: number;
  /** Settling is waiting for the archive or attachments job (D1 or R2 down, or more work): ask again after this. */
  retryAfterMs?: number;
  waitingFor?: string;
}

/** What member-data.ts works with: the modules it reads and changes, and the object's context. */
export interface MemberDataParts {
  env: Env;
  ctx: DurableObjectState;
  meta: Meta;
  members: Members;
  stream: MessageStream;
  history: History;
  archived: ArchivedTiers;
  changes: Changes;
  commit: CommitPath;
  attachments: () => Attachments;
  rewrites: D1Rewrites;
  outbox: DirectoryOutbox;
  cold: ColdSegments;
  jobs: JobRunner<Job>;
  sockets: Sockets;
  live: LiveFeed;
  memberNews: MemberNews;
}

export class MemberData {
  readonly #p: MemberDataParts;

  constructor(parts: MemberDataParts) {
    this.#p = parts;
  }

  /**
   * A member went (removed, left, or erased; the `members` row is already gone): their sockets here close, the
   * others hear it (and who owns the group now), the directory is updated, and their inbox drops the conversation.
   */
  async departed(userId: string, heir: MemberRow | null): Promise<void> {
    const { ctx, sockets, live, outbox, env, meta, memberNews } = this.#p;
    for (const ws of ctx.getWebSockets(userId)) sockets.close(ws, CloseCode.NotAMember, "removed from the conversation");
    live.forget(userId);
    memberNews.announce({ type: "members_changed", added: [], removed: [userId], ...(heir ? { updated: [publicMember(heir)] } : {}) });
    await outbox.flush();
    try {
      await userStub(env, userId).conversationRemoved(meta.id, Date.now());
    } catch (err) {
      console.warn(JSON.stringify({ at: "conversation_removed", error: String(err) }));
    }
  }

  // ------------------------------------------------------------------ export

  async exportPage(userId: string, after: number): Promise<ExportPage> {
    const { meta, stream, history, changes } = this.#p;
    const conversation = after === 0 ? this.#describe(userId) : undefined;
    const last = stream.lastSeq;
    const lo = Math.max(after + 1, meta.retainedFrom);
    if (lo > last) return { conversation, messages: [], reactions: [], next: null };
    const hi = Math.min(last, lo + SCAN_SEQS - 1);
    const messages: ChatMessage[] = [];
    let end = hi;
    let bytes = 0;
    for (const m of await history.range(lo, hi)) {
      if (m.senderId !== userId || m.change) continue;
      const size = JSON.stringify(m).length;
      if (messages.length > 0 && bytes + size > EXPORT_PAGE_BYTES) {
        end = m.seq - 1;
        break;
      }
      messages.push(m);
      bytes += size;
    }
    return { conversation, messages, reactions: changes.reactionsIn(userId, lo, end), next: end >= last ? null : end };
  }

  #describe(userId: string): ExportConversation {
    const { meta, members } = this.#p;
    const member = members.get(userId);
    return {
      id: meta.id,
      type: meta.type,
      title: meta.title,
      createdAt: Number(meta.get("created_at") ?? "0"),
      createdBy: meta.get("created_by") ?? "",
      role: member?.role ?? null,
      joinedAt: member?.joinedAt ?? null,
    };
  }

  // ------------------------------------------------------------------ erasure

  async eraseStep(userId: string, cursor: EraseCursor): Promise<EraseStep> {
    switch (cursor.phase) {
      case "leave":
        return this.#leave(userId);
      case "messages":
        return this.#eraseMessages(userId, cursor.after, cursor.until);
      case "reactions":
        return this.#unreact(userId);
      case "rest":
        return this.#rest(userId);
      case "settle":
        return this.#settle(userId, cursor);
    }
  }

  /** The user leaves first, so nothing of theirs can arrive while the rest is erased. */
  async #leave(userId: string): Promise<EraseStep> {
    const { members, stream, meta } = this.#p;
    const gone = members.erase(userId);
    // They cannot send from here on (the group commit and REST sends check membership when they store).
    const until = stream.lastSeq;
    if (gone) await this.departed(userId, gone.heir);
    return { next: { phase: "messages", after: meta.retainedFrom - 1, until }, messages: 0, reactions: 0 };
  }

  /** Up to ERASE_PER_STEP of the user's messages among the next SCAN_SEQS seqs become tombstones. */
  async #eraseMessages(userId: string, after: number, until: number): Promise<EraseStep> {
    const { meta, stream, archived, changes, commit } = this.#p;
    const lo = Math.max(after + 1, meta.retainedFrom);
    const hi = Math.min(until, lo + SCAN_SEQS - 1);
    if (lo > hi) return { next: { phase: "reactions" }, messages: 0, reactions: 0 };
    // The hot part first, synchronously (as history.ts reads), then the archive below it.
    const oldestHot = stream.oldestHotSeq() ?? hi + 1;
    const hot = stream.hotMessagesOf(userId, Math.max(lo, oldestHot), hi);
    let cold: StoredMessage[] = [];
    if (lo < oldestHot) {
      const to = Math.min(hi, oldestHot - 1);
      const rows = await archived.read(lo, to);
      if (rows.length !== to - lo + 1) throw new AppError("unavailable", "the archive returned an incomplete range; try again", { retryAfterMs: 1_000 });
      cold = rows.filter((m) => m.senderId === userId && !m.change && !m.deleted);
    }
    const found = [...cold.map((m) => m.seq), ...hot];
    const picked = found.slice(0, ERASE_PER_STEP);
    changes.adopt(cold.filter((m) => m.seq <= (picked[picked.length - 1] ?? 0)));
    let reached = found.length > picked.length ? picked[picked.length - 1]! : hi;
    const now = Date.now();
    const erased = commit.system(() => {
      const entries: StoredMessage[] = [];
      for (const seq of picked) {
        const target = changes.current(seq);
        if (target === undefined) {
          // Pruned from the hot tail while the archive was read: read again from here next step.
          reached = seq - 1;
          break;
        }
        if (target && !target.change && !target.deleted && target.senderId === userId) entries.push(changes.erase(userId, target, now));
      }
      return entries;
    });
    return { next: { phase: "messages", after: reached, until }, messages: erased, reactions: 0 };
  }

  /** Up to UNREACT_PER_STEP of the user's reactions are taken back (counts updated in every tier). */
  async #unreact(userId: string): Promise<EraseStep> {
    const { changes, commit } = this.#p;
    const rows = changes.reactionsOfUser(userId, UNREACT_PER_STEP);
    if (rows.length === 0) return { next: { phase: "rest" }, messages: 0, reactions: 0 };
    await changes.load([...new Set(rows.map((r) => r.seq))]);
    const now = Date.now();
    let handled = 0;
    const taken = commit.system(() => {
      const entries: StoredMessage[] = [];
      for (const r of rows) {
        const target = changes.current(r.seq);
        if (target === undefined) continue; // not loaded (pruned meanwhile): the next step reads it again
        handled++;
        if (!target || target.change || target.deleted) changes.dropReaction(userId, r.seq, r.emoji);
        else entries.push(changes.unreact(userId, target, r.emoji, now));
      }
      return entries;
    });
    if (handled === 0) throw new AppError("unavailable", `message ${rows[0]!.seq} could not be read from the archive; try again`, { retryAfterMs: 1_000 });
    return { next: { phase: "reactions" }, messages: 0, reactions: taken };
  }

  /** Their uploads (referenced or not) are deleted from R2 by the attachments job; no unread mention names them. */
  async #rest(userId: string): Promise<EraseStep> {
    const { attachments, changes, rewrites, outbox, stream } = this.#p;
    const marked = attachments().uploaderErased(userId, REST_PER_STEP);
    const forgotten = changes.forgetMentionsOf(userId, REST_PER_STEP);
    if (marked > 0 || forgotten > 0) return { next: { phase: "rest" }, messages: 0, reactions: 0 };
    return { next: { phase: "settle", rewrites: rewrites.newest(), outbox: outbox.newest(), notify: stream.lastSeq }, messages: 0, reactions: 0 };
  }

  /**
   * Done when every rewrite queued by the steps before has reached D1 and the segments (and the replaced segment
   * versions are deleted from R2), the user's files are deleted from R2, the directory no longer lists them, and
   * the members' inboxes were told (a preview of theirs is replaced there: fanout.ts).
   * Runs the jobs that do it (each a bounded run) a few times; if they cannot finish, the caller asks again later.
   */
  async #settle(userId: string, cursor: Extract<EraseCursor, { phase: "settle" }>): Promise<EraseStep> {
    const { jobs } = this.#p;
    let waiting = this.#waitingFor(userId, cursor);
    for (let round = 0; round < SETTLE_ROUNDS && waiting !== null; round++) {
      await Promise.all([jobs.runNow("archive"), jobs.runNow("attachments"), jobs.runNow("d1_outbox"), jobs.runNow("notify")]);
      const now = this.#waitingFor(userId, cursor);
      if (now === waiting) break; // no progress: a tier is failing; the jobs retry with their own backoff
      waiting = now;
    }
    if (waiting === null) return { next: null, messages: 0, reactions: 0 };
    return { next: cursor, messages: 0, reactions: 0, retryAfterMs: SETTLE_RETRY_MS, waitingFor: waiting };
  }

  /** What settling still waits for (null: nothing). */
  #waitingFor(userId: string, cursor: Extract<EraseCursor, { phase: "settle" }>): string | null {
    const { rewrites, outbox, cold, attachments, meta } = this.#p;
    const parts = [
      [Math.max(0, cursor.notify - meta.notifiedSeq), "entries the inboxes were not told about"],
      [rewrites.pendingUpTo(cursor.rewrites), "rewrites for D1 and R2"],
      [cold.garbage(), "replaced R2 segments"],
      [attachments().uploadsOf(userId), "attachments"],
      [outbox.pendingUpTo(cursor.outbox), "directory writes"],
    ] as const;
    const left = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
    return left.length > 0 ? left.join(", ") : null;
  }
}
