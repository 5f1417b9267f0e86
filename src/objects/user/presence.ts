// Presence: whether this user is online (and since when), who is told when that changes, and whose presence
// this user's sockets watch. Owns the `leases`, `subscribers` and `watching` tables, the `online`,
// `last_seen_at` and `watches_renewed_at` meta values, and the `presence_sweep` and `presence_recheck` jobs.
//
// Who may see whom follows the consent rule (db/privacy.ts: a shared conversation, no block either way). It is
// checked when a socket subscribes, again whenever a subscription is renewed, and at once when this user
// stops sharing a conversation (`sharingEnded`) or a block is made (`revoke`, from the Worker).
//
// A user is online while a device is connected: a user socket here, or a conversation socket, which its
// conversation object holds here as a renewable lease. A closed tab can leave a hibernated socket open with
// no close event (workerd#1187), so sockets count only while they heartbeat and leases only until they
// lapse; the sweep enforces both.
import type { Presence } from "../../protocol/user";
import { AppError, rpcResult, type RpcResult } from "../../lib/errors";
import { mapLimit } from "../../lib/concurrency";
import { presenceVisible } from "../../db/privacy";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import { sweepIsLate } from "../shared/sockets";
import type { SocketState, UserSockets } from "./connection";
import type { UserJob } from "./index";
import type { Quotas, UserLimits } from "./limits";
import type { Meta } from "./meta";

/** The longest lease a conversation object may ask for. */
const MAX_LEASE_MS = 60 * 60_000;
/** A presence subscription lasts this long; while the watcher has sockets open it is renewed every half of it. */
const SUBSCRIPTION_TTL_MS = 60 * 60_000;
/** After a renewal that could not finish (D1 or a user object failing), try again this much later. */
const RENEW_RETRY_MS = 60_000;
/** Calls to other user objects in flight at once when renewing or revoking. */
const CONCURRENCY = 16;

export interface PresenceDeps {
  env: Env;
  storage: DurableObjectStorage;
  meta: Meta;
  sockets: UserSockets;
  jobs: JobRunner<UserJob>;
  /** A device is offline after this long without a heartbeat (PRESENCE_TTL_MS, default 30 s). */
  ttlMs: number;
  quotas: Quotas;
  limits: () => UserLimits;
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
    deps.jobs.define("presence_recheck", () => this.#recheck());
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

  /**
   * A socket asks to watch `userIds` (replacing what it watched). Answers with their presence now. Refused
   * before any lookup when it would make this user watch more than `maxWatchedUsers` users over all sockets
   * (`too_many_watched`) or when subscriptions come too fast (`rate_limited`); an empty list is always free.
   */
  subscribe(state: SocketState, userIds: string[]): Promise<RpcResult<Presence[]>> {
    return rpcResult(async () => {
      const { env, storage, quotas } = this.#deps;
      const unique = [...new Set(userIds)].filter((id) => id !== state.userId);
      if (unique.length > 0) {
        const max = this.#deps.limits().maxWatchedUsers;
        const total = new Set(unique);
        for (const r of this.#sql.exec<{ id: string }>("SELECT DISTINCT user_id AS id FROM watching WHERE socket_key != ?", state.key)) total.add(r.id);
        if (total.size > max) throw new AppError("too_many_watched", `you may watch at most ${max} users at once, over all your devices`);
        quotas.take("presence");
      }
      const allowed = [...(await presenceVisible(env.DB, state.userId, unique))];
      storage.transactionSync(() => {
        this.#sql.exec("DELETE FROM watching WHERE socket_key = ?", state.key);
        for (const id of allowed) this.#sql.exec("INSERT OR IGNORE INTO watching (socket_key, user_id) VALUES (?, ?)", state.key, id);
      });
      const presence = await Promise.all(allowed.map((id) => userStub(env, id).addSubscriber(state.userId)));
      // Ids the user may not see are answered as unknown rather than refused, so nothing leaks about them.
      const visible = new Set(allowed);
      const unknown = unique.filter((id) => !visible.has(id)).map(unknownPresence);
      return [...presence.map((p, i) => ({ ...p, userId: allowed[i]! })), ...unknown];
    });
  }

  /**
   * Presence between this user and `userIds` is no longer allowed (a block, or no shared conversation any
   * more): they stop hearing about this user, this user's sockets stop watching them and are told so once.
   */
  revoke(userIds: string[]): void {
    for (const id of new Set(userIds)) {
      this.#sql.exec("DELETE FROM subscribers WHERE user_id = ?", id);
      const keys = new Set(
        this.#sql.exec<{ key: string }>("SELECT socket_key AS key FROM watching WHERE user_id = ?", id).toArray().map((r) => r.key),
      );
      if (keys.size === 0) continue;
      this.#sql.exec("DELETE FROM watching WHERE user_id = ?", id);
      for (const [ws, s] of this.#deps.sockets.entries()) {
        if (keys.has(s.key)) this.#deps.sockets.send(ws, { type: "presence", presence: [unknownPresence(id)] });
      }
    }
  }

  /** This user left or was removed from a conversation: re-check everyone presence connects them with, soon. */
  sharingEnded(): void {
    this.#deps.jobs.ensure("presence_recheck", Date.now());
  }

  /** Drop presence with every subscriber and watched user no longer allowed, on both sides. */
  async #recheck(): Promise<JobOutcome> {
    const { env, meta } = this.#deps;
    const me = meta.get("user_id");
    if (!me) return "done";
    const related = this.#sql
      .exec<{ id: string }>("SELECT user_id AS id FROM subscribers UNION SELECT user_id AS id FROM watching")
      .toArray()
      .map((r) => r.id);
    const visible = await presenceVisible(env.DB, me, related);
    const gone = related.filter((id) => !visible.has(id));
    this.revoke(gone);
    await mapLimit(gone, CONCURRENCY, async (id) => {
      try {
        await userStub(env, id).presenceRevoked([me]);
      } catch (err) {
        // Their side lapses anyway: their renewal re-checks, and our sockets no longer accept their changes.
        console.warn(JSON.stringify({ at: "presence_recheck", error: String(err) }));
      }
    });
    return "done";
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

  /**
   * Keep our subscriptions with the users our sockets watch alive while we are connected, re-checking first
   * that each may still be seen. Recorded as done only once it is; a failure is retried a minute later.
   */
  async #renewWatches(now: number): Promise<void> {
    const { env, meta, sockets } = this.#deps;
    const last = Number(meta.get("watches_renewed_at") ?? "0");
    if (sockets.size === 0 || now - last < SUBSCRIPTION_TTL_MS / 2) return;
    const me = meta.get("user_id");
    if (!me) return;
    const watched = this.#sql.exec<{ id: string }>("SELECT DISTINCT user_id AS id FROM watching").toArray().map((r) => r.id);
    let done = true;
    try {
      const visible = await presenceVisible(env.DB, me, watched);
      this.revoke(watched.filter((id) => !visible.has(id)));
      let failed = 0;
      await mapLimit([...visible], CONCURRENCY, async (id) => {
        try {
          await userStub(env, id).addSubscriber(me);
        } catch {
          failed++;
        }
      });
      if (failed > 0) throw new Error(`${failed} of ${visible.size} renewals failed`);
    } catch (err) {
      done = false;
      console.warn(JSON.stringify({ at: "presence_renew", error: String(err) }));
    }
    meta.set("watches_renewed_at", String(done ? now : now - SUBSCRIPTION_TTL_MS / 2 + RENEW_RETRY_MS));
  }
}

function unknownPresence(userId: string): Presence {
  return { userId, online: false, lastSeenAt: null };
}
