// Members and roles: the `members` table (who, role, joined_at) and the rules for changing it, plus the
// matching rows of the D1 directory (conversation_members), written through the D1 outbox in the same
// transaction. The receipt cursor columns of `members` belong to cursors.ts. Also the `blocked` meta value
// of a direct conversation (one member blocked the other: protocol 14.3).
import type { Role } from "../../protocol/api";
import { RECEIPTS_LIVE_MAX_MEMBERS } from "../../protocol/user";
import { AppError } from "../../lib/errors";
import type { Identity } from "../../lib/tokens";
import type { D1Statement } from "../../db/archive";
import type { Meta } from "./meta";

export interface MemberRow extends Record<string, SqlStorageValue> {
  userId: string;
  username: string;
  role: Role;
  joinedAt: number;
  deliveredSeq: number;
  readSeq: number;
}

/** What a membership change touches besides `members`: the cursors' dirty list and the D1 outbox. */
export interface MembershipEffects {
  markDirty(userId: string): void;
  enqueueD1(statements: D1Statement[]): void;
}

export const BLOCKED_MESSAGE = "messages between you and this user are blocked";

const MEMBER_COLUMNS = "user_id AS userId, username, role, joined_at AS joinedAt, delivered_seq AS deliveredSeq, read_seq AS readSeq";
/** D1 allows 100 bound parameters; membership rows have 4. */
const MEMBER_ROWS_PER_STATEMENT = 20;

export class Members {
  readonly #sql: SqlStorage;
  readonly #storage: DurableObjectStorage;
  readonly #meta: Meta;
  readonly #effects: MembershipEffects;
  readonly #maxGroupMembers: number;
  /** Every member's user id, as a list and a set (read once per wake and again after each membership change). */
  #ids: { list: string[]; set: Set<string> } | null = null;

  constructor(storage: DurableObjectStorage, meta: Meta, effects: MembershipEffects, maxGroupMembers: number) {
    this.#sql = storage.sql;
    this.#storage = storage;
    this.#meta = meta;
    this.#effects = effects;
    this.#maxGroupMembers = maxGroupMembers;
  }

  get(userId: string): MemberRow | null {
    return this.#sql.exec<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members WHERE user_id = ?`, userId).toArray()[0] ?? null;
  }

  /** The member, or not_a_member: the same answer whether the conversation exists or not, so non-members learn nothing. */
  require(userId: string): MemberRow {
    const row = this.#meta.exists ? this.get(userId) : null;
    if (!row) throw new AppError("not_a_member", "you are not a member of this conversation");
    return row;
  }

  /** How many members (cached: read once per wake and after each membership change). */
  count(): number {
    return this.ids().length;
  }

  /**
   * More than RECEIPTS_LIVE_MAX_MEMBERS (100) members: fanned out on read (fanout.ts, live.ts), each member's cursor
   * told only to its owner (cursors.ts), at most a few typers shown (typing.ts). The one place that size is decided.
   */
  isLarge(): boolean {
    return this.count() > RECEIPTS_LIVE_MAX_MEMBERS;
  }

  /** Every member's user id (cached like count: the live feed reads it per message). */
  ids(): readonly string[] {
    return this.#cachedIds().list;
  }

  /** Is `userId` a member (cached like ids: every frame and every flushed send asks, so no SQL per message). */
  has(userId: string): boolean {
    return this.#cachedIds().set.has(userId);
  }

  #cachedIds(): { list: string[]; set: Set<string> } {
    if (this.#ids) return this.#ids;
    const list = this.#sql.exec<{ id: string }>("SELECT user_id AS id FROM members").toArray().map((r) => r.id);
    return (this.#ids = { list, set: new Set(list) });
  }

  list(): MemberRow[] {
    return this.#sql.exec<MemberRow>(`SELECT ${MEMBER_COLUMNS} FROM members ORDER BY joined_at, user_id`).toArray();
  }

  /** The founding members (inside the creating transaction). Returns their D1 directory rows, for the caller's outbox entry. */
  create(conversationId: string, members: { userId: string; username: string; role: Role }[], now: number): D1Statement[] {
    for (const m of members) {
      this.#sql.exec("INSERT OR IGNORE INTO members (user_id, username, role, joined_at) VALUES (?, ?, ?, ?)", m.userId, m.username, m.role, now);
      this.#effects.markDirty(m.userId);
    }
    this.#ids = null; // read again on next use (a write that threw was rolled back: the cache was still right)
    return this.#directoryUpserts(conversationId, this.list());
  }

  /**
   * May `actor` add members here (the owner or an admin of a group)? Throws as `add` would. Returns which of
   * `userIds` are not members yet: the Worker checks only those, and only after this, against D1.
   */
  checkCanAdd(actor: Identity, userIds: string[]): string[] {
    const me = this.require(actor.userId);
    if (this.#meta.type !== "group") throw new AppError("forbidden", "direct conversations have fixed membership");
    if (me.role === "member") throw new AppError("forbidden", "only the owner or an admin can add members");
    return [...new Set(userIds)].filter((id) => this.get(id) === null);
  }

  /** A direct conversation whose members blocked each other (either way): no new messages, no typing. */
  get blocked(): boolean {
    return this.#meta.get("blocked") === "1";
  }

  /** Set by the Worker when one member blocks or unblocks the other (it reads the truth from D1). */
  setBlocked(blocked: boolean): void {
    if (this.#meta.type === "direct" && this.blocked !== blocked) this.#meta.set("blocked", blocked ? "1" : "0");
  }

  /** Refuse a new message in a blocked direct conversation (before its idempotency check: see protocol 14.3). */
  requireNotBlocked(): void {
    if (this.blocked) throw new AppError("blocked", BLOCKED_MESSAGE);
  }

  /**
   * The owner or an admin adds users to a group. Returns the members actually added (users already in
   * are skipped). A new member starts with everything before it joined counted as read.
   */
  add(actor: Identity, users: { userId: string; username: string }[], lastSeq: number): MemberRow[] {
    this.checkCanAdd(actor, []);
    const count = this.count();
    const fresh = users.filter((u) => this.get(u.userId) === null);
    const unique = [...new Map(fresh.map((u) => [u.userId, u])).values()];
    if (count + unique.length > this.#maxGroupMembers) {
      throw new AppError("group_too_large", `a group holds at most ${this.#maxGroupMembers} members`);
    }
    if (unique.length === 0) return [];
    const now = Date.now();
    const added: MemberRow[] = unique.map((u) => ({
      userId: u.userId,
      username: u.username,
      role: "member",
      joinedAt: now,
      deliveredSeq: lastSeq,
      readSeq: lastSeq,
    }));
    this.#storage.transactionSync(() => {
      for (const m of added) {
        this.#sql.exec(
          "INSERT INTO members (user_id, username, role, joined_at, delivered_seq, read_seq) VALUES (?, ?, ?, ?, ?, ?)",
          m.userId,
          m.username,
          m.role,
          now,
          m.deliveredSeq,
          m.readSeq,
        );
        this.#effects.markDirty(m.userId);
      }
      this.#effects.enqueueD1(this.#directoryUpserts(this.#meta.id, added));
    });
    this.#ids = null;
    return added;
  }

  /**
   * The owner/an admin removes a member, or a member removes itself (leave). An owner who leaves hands
   * the group to the longest-standing admin, else member: returned as `heir`.
   */
  remove(actor: Identity, userId: string): { heir: MemberRow | null } {
    const me = this.require(actor.userId);
    if (this.#meta.type !== "group") throw new AppError("forbidden", "direct conversations have fixed membership");
    const target = this.get(userId);
    if (!target) throw new AppError("not_found", "that user is not a member");
    if (actor.userId !== userId) {
      if (me.role === "member") throw new AppError("forbidden", "only the owner or an admin can remove others");
      if (target.role === "owner" || (target.role === "admin" && me.role !== "owner")) {
        throw new AppError("forbidden", "admins can only remove members; the owner can remove admins");
      }
    }
    return this.#drop(target);
  }

  /**
   * An erasure (protocol 17) takes `userId` out, whatever the conversation's type and without a role check: a
   * group's ownership goes to the heir as when an owner leaves; a direct conversation is left with one member.
   * Null when `userId` is not a member.
   */
  erase(userId: string): { heir: MemberRow | null } | null {
    const target = this.get(userId);
    return target ? this.#drop(target) : null;
  }

  #drop(target: MemberRow): { heir: MemberRow | null } {
    const userId = target.userId;
    const id = this.#meta.id;
    let heirId: string | null = null;
    this.#storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM members WHERE user_id = ?", userId);
      const statements: D1Statement[] = [
        { sql: "DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?", params: [id, userId] },
      ];
      if (target.role === "owner") {
        const heir = this.#sql
          .exec<{ userId: string }>(
            "SELECT user_id AS userId FROM members ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1",
          )
          .toArray()[0];
        if (heir) {
          heirId = heir.userId;
          this.#sql.exec("UPDATE members SET role = 'owner' WHERE user_id = ?", heir.userId);
          statements.push({
            sql: "UPDATE conversation_members SET role = 'owner' WHERE conversation_id = ? AND user_id = ?",
            params: [id, heir.userId],
          });
        }
      }
      this.#effects.enqueueD1(statements);
    });
    this.#ids = null;
    return { heir: heirId === null ? null : this.get(heirId) };
  }

  /** The owner promotes a member to admin or demotes an admin. Returns the changed member. */
  setRole(actor: Identity, userId: string, role: "admin" | "member"): MemberRow {
    const me = this.require(actor.userId);
    if (me.role !== "owner") throw new AppError("forbidden", "only the owner can change roles");
    const target = this.get(userId);
    if (!target) throw new AppError("not_found", "that user is not a member");
    if (target.role === "owner") throw new AppError("forbidden", "the owner's role cannot be changed");
    this.#storage.transactionSync(() => {
      this.#sql.exec("UPDATE members SET role = ? WHERE user_id = ?", role, userId);
      this.#effects.enqueueD1([
        { sql: "UPDATE conversation_members SET role = ? WHERE conversation_id = ? AND user_id = ?", params: [role, this.#meta.id, userId] },
      ]);
    });
    return { ...target, role };
  }

  #directoryUpserts(conversationId: string, members: MemberRow[]): D1Statement[] {
    const statements: D1Statement[] = [];
    for (let i = 0; i < members.length; i += MEMBER_ROWS_PER_STATEMENT) {
      const chunk = members.slice(i, i + MEMBER_ROWS_PER_STATEMENT);
      statements.push({
        sql: `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES ${chunk.map(() => "(?, ?, ?, ?)").join(", ")} ON CONFLICT (conversation_id, user_id) DO UPDATE SET role = excluded.role`,
        params: chunk.flatMap((m) => [conversationId, m.userId, m.role, m.joinedAt]),
      });
    }
    return statements;
  }
}

/** A member as the wire shows it (members_changed frames). */
export function publicMember(m: MemberRow): { userId: string; username: string; role: Role } {
  return { userId: m.userId, username: m.username, role: m.role };
}
