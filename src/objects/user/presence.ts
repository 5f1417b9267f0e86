// Presence: whether this user is online (and since when), who is told when that changes, and whose presence
// this user's sockets watch. Owns the `leases`, `subscribers` and `watching` tables, the `online`,
// `last_seen_at` and `watches_renewed_at` meta values, and the `presence_sweep` job.
//
// A user is online while a device is connected: a user socket here, or a conversation socket, which its
// conversation object holds here as a renewable lease. A closed tab can leave a hibernated socket open with
// no close event (workerd#1187), so sockets count only while they heartbeat and leases only until they
// lapse; the sweep enforces both.
import type { Presence } from "../../protocol/user";
import type { RpcResult } from "../../lib/errors";
import { sharedConversationUsers } from "../../db/memberships";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import { sweepIsLate } from "../shared/sockets";
import type { SocketState, UserSockets } from "./connection";
import type { UserJob } from "./index";
import type { Meta } from "./meta";

/** The longest lease a conversation object may ask for. */
const MAX_LEASE_MS = 60 * 60_000;
/** A presence subscription lasts this long; while the watcher has sockets open it is renewed every half of it. */
const SUBSCRIPTION_TTL_MS = 60 * 60_000;

export interface PresenceDeps {
  env: Env;
  storage: DurableObjectStorage;
  meta: Meta;
  sockets: UserSockets;
  jobs: JobRunner<UserJob>;
  /** A device is offline after this long without a heartbeat (PRESENCE_TTL_MS, default 30 s). */
  ttlMs: number;
}

export class UserPresence {
  readonly #deps: PresenceDeps;
  readonly #sql: SqlStorage;
  readonly #ttl: number;

  constructor(deps: PresenceDeps) {
    this.#deps = deps;
    this.#sql = deps.storage.sql;
    this.#ttl = deps.ttlMs;
    deps.jobs.define("presence_sweep", () => this.#sweep());
  }

  /** A user socket opened: sweep within half a TTL, and announce the user if this made them online. */
  socketOpened(): Promise<void> {
    this.#deps.jobs.ensure("presence_sweep", Date.now() + this.#ttl / 2);
    return this.maybeChanged();
  }

  /** A socket is gone (any reason): it stops watching. The socket registry's `forgotten` hook. */
  socketGone(state: SocketState): void {
    this.#sql.exec("DELETE FROM watching WHERE socket_key = ?", state.key);
  }

  /** Conversation sockets of this user opened (or are still alive) or closed: each open one counts as a device until its lease lapses. */
  async deviceLeases(open: string[], close: string[], conversationId: string, userId?: string, leaseMs?: number): Promise<void> {
    if (userId) this.#deps.meta.set("user_id", userId);
    // The conversation object says how long its lease lasts (it renews well before; releases on the last
    // socket's close). Builds that do not say renew every ttl/2, and their leases last 2 x ttl.
    const expires = Date.now() + Math.min(Math.max(leaseMs ?? this.#ttl * 2, this.#ttl), MAX_LEASE_MS);
    for (const id of open) {
      this.#sql.exec("INSERT OR REPLACE INTO leases (id, conversation_id, expires_at) VALUES (?, ?, ?)", id, conversationId, expires);
    }
    for (const id of close) this.#sql.exec("DELETE FROM leases WHERE id = ?", id);
    if (open.length > 0) this.#deps.jobs.ensure("presence_sweep", expires + 1);
    await this.maybeChanged();
  }

  /** `subscriberId` wants this user's presence changes pushed to it. Returns the current state. */
  addSubscriber(subscriberId: string): Presence {
    this.#sql.exec("INSERT OR REPLACE INTO subscribers (user_id, expires_at) VALUES (?, ?)", subscriberId, Date.now() + SUBSCRIPTION_TTL_MS);
    return this.current();
  }

  /** A watched user's presence changed: tell the sockets watching them. False when none does (the caller unsubscribes us). */
  watchedChanged(presence: Presence): boolean {
    const keys = new Set(
      this.#sql.exec<{ key: string }>("SELECT socket_key AS key FROM watching WHERE user_id = ?", presence.userId).toArray().map((r) => r.key),
    );
    let delivered = false;
    for (const [ws, state] of this.#deps.sockets.entries()) {
      if (!keys.has(state.key)) continue;
      this.#deps.sockets.send(ws, { type: "presence", presence: [presence] });
      delivered = true;
    }
    return delivered;
  }

  /** A socket asks to watch `userIds` (replacing what it watched). Answers with their presence now. */
  async subscribe(state: SocketState, userIds: string[]): Promise<RpcResult<Presence[]>> {
    const { env, storage } = this.#deps;
    const unique = [...new Set(userIds)].filter((id) => id !== state.userId);
    const allowed = await sharedConversationUsers(env.DB, state.userId, unique);
    storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM watching WHERE socket_key = ?", state.key);
      for (const id of allowed) this.#sql.exec("INSERT OR IGNORE INTO watching (socket_key, user_id) VALUES (?, ?)", state.key, id);
    });
    const presence = await Promise.all([...allowed].map((id) => userStub(env, id).addSubscriber(state.userId)));
    // Ids the user may not see are answered as unknown rather than refused, so nothing leaks about them.
    const unknown = unique.filter((id) => !allowed.has(id)).map((id) => ({ userId: id, online: false, lastSeenAt: null }));
    return { ok: true, value: [...presence.map((p, i) => ({ ...p, userId: [...allowed][i]! })), ...unknown] };
  }

  isOnline(): boolean {
    if (this.#deps.sockets.size > 0) return true;
    return this.#sql.exec<{ n: number }>("SELECT count(*) AS n FROM leases WHERE expires_at > ?", Date.now()).one().n > 0;
  }

  current(): Presence {
    const { meta } = this.#deps;
    const online = this.isOnline();
    const lastSeen = meta.get("last_seen_at");
    return {
      userId: meta.get("user_id") ?? "",
      online,
      lastSeenAt: online ? Date.now() : lastSeen === null ? null : Number(lastSeen),
    };
  }

  /** Compare with the last announced state; on a change, record lastSeenAt and tell the subscribers. */
  async maybeChanged(): Promise<void> {
    const { env, meta } = this.#deps;
    const online = this.isOnline();
    const was = meta.get("online") === "1";
    if (online === was) return;
    meta.set("online", online ? "1" : "0");
    meta.set("last_seen_at", String(Date.now()));
    const presence = this.current();
    const subscribers = this.#sql
      .exec<{ userId: string }>("SELECT user_id AS userId FROM subscribers WHERE expires_at > ?", Date.now())
      .toArray();
    await Promise.all(
      subscribers.map(async ({ userId }) => {
        try {
          if (!(await userStub(env, userId).presenceChanged(presence))) this.#sql.exec("DELETE FROM subscribers WHERE user_id = ?", userId);
        } catch (err) {
          console.warn(JSON.stringify({ at: "presence_notify", error: String(err) }));
        }
      }),
    );
  }

  /**
   * The heartbeat sweep: close sockets that stopped heartbeating or whose token expired, drop lapsed leases
   * and subscriptions, renew our own subscriptions, announce any change. Runs every ttl/2 while a socket is
   * open, else when the next lease lapses, else not at all.
   */
  async #sweep(): Promise<JobOutcome> {
    const { sockets } = this.#deps;
    const now = Date.now();
    // Held up by a busy runtime: pings may be waiting to be recorded. Judge silence on the next, punctual run.
    const late = sweepIsLate(this.#deps.jobs.dueAt("presence_sweep"), now);
    if (!late) sockets.sweep(this.#ttl, now);
    this.#sql.exec("DELETE FROM leases WHERE expires_at <= ?", now);
    this.#sql.exec("DELETE FROM subscribers WHERE expires_at <= ?", now);
    await this.#renewWatches(now);
    await this.maybeChanged();
    const nextLease = this.#sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM leases").one().at;
    if (late && sockets.size > 0) return { at: now + 1_000 };
    if (sockets.size > 0) return { at: now + this.#ttl / 2 };
    if (nextLease !== null) return { at: nextLease + 1 };
    return "done";
  }

  /** Keep our subscriptions with the users our sockets watch alive while we are connected. */
  async #renewWatches(now: number): Promise<void> {
    const { env, meta, sockets } = this.#deps;
    const last = Number(meta.get("watches_renewed_at") ?? "0");
    if (sockets.size === 0 || now - last < SUBSCRIPTION_TTL_MS / 2) return;
    meta.set("watches_renewed_at", String(now));
    const me = meta.get("user_id");
    if (!me) return;
    const watched = this.#sql.exec<{ id: string }>("SELECT DISTINCT user_id AS id FROM watching").toArray();
    await Promise.allSettled(watched.map(({ id }) => userStub(env, id).addSubscriber(me)));
  }
}
