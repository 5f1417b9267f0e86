// Presence from this conversation's side. A user with at least one socket here that counts for presence is
// online: this object holds ONE lease for them in their user object (not one per socket), taken when their
// first such socket opens, released when their last one goes, and renewed every LEASE_RENEW_MS. The user
// object decides online/offline. A socket opened with `presence=0` (clients whose user socket carries their
// presence, as the SDK's does) takes no lease and wakes no user object; it is still swept for heartbeats.
// Owns the `presence_held` table and two jobs:
// - "leases": brings the held leases in line with the sockets open now (take, renew, release), a bounded
//   number of requests per run, so a burst of thousands of connects becomes a steady trickle of one
//   request per user, never one per socket and never thousands at once;
// - "presence": the heartbeat sweep, which closes sockets that stopped heartbeating (local, no requests). It
//   runs every half TTL while a socket here counts for presence (a silent device must go offline within
//   1.5 TTL), and only every QUIET_SWEEP_MS while all sockets here are `presence=0`: then a dead socket only
//   holds memory, and each sweep is an alarm and a stored row in every object with a socket open.
import { mapLimit } from "../../lib/concurrency";
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import { sweepIsLate } from "../shared/sockets";
import { countsForPresence, type ConversationSocket, type Sockets } from "./connections";
import type { Job } from "./index";
import type { Meta } from "./meta";

/** How long a lease lasts in the user object: the backstop if this object stops renewing (crashed, deleted). */
const LEASE_MS = 30 * 60_000;
/** Held leases are renewed this often while the user has sockets here. */
const LEASE_RENEW_MS = 10 * 60_000;
/** The sweep's period while every socket here is `presence=0` (and never shorter than half a TTL). */
const QUIET_SWEEP_MS = 5 * 60_000;
/** Lease requests in flight at once, and per job run. */
const CONCURRENCY = 32;
const PER_RUN = 256;

export class Presence {
  readonly #env: Env;
  readonly #sql: SqlStorage;
  readonly #meta: Meta;
  readonly #sockets: Sockets;
  readonly #jobs: JobRunner<Job>;
  /** A device is offline after this long without a heartbeat (PRESENCE_TTL_MS). */
  readonly #ttl: number;
  /** userId → when its lease was last taken or renewed: a cache of `presence_held`. */
  #held: Map<string, number> | null = null;

  constructor(env: Env, sql: SqlStorage, meta: Meta, sockets: Sockets, jobs: JobRunner<Job>, ttl: number) {
    this.#env = env;
    this.#sql = sql;
    this.#meta = meta;
    this.#sockets = sockets;
    this.#jobs = jobs;
    this.#ttl = ttl;
    jobs.define("presence", () => this.#sweep());
    jobs.define("leases", () => this.#reconcile());
  }

  /** A socket opened: the sweep runs while any socket is open; a user new here gets a lease at once, if the socket counts. */
  opened(state: ConversationSocket): void {
    const now = Date.now();
    this.#jobs.ensure("presence", now + this.#period(countsForPresence(state)));
    if (countsForPresence(state) && !this.#heldMap().has(state.userId)) this.#jobs.ensure("leases", now);
  }

  /** A socket went (the registry's `forgotten` hook): if it was the user's last counting one here, release the lease. */
  released(state: ConversationSocket): void {
    if (this.#sockets.countOf(state.userId, countsForPresence) === 0 && this.#heldMap().has(state.userId)) this.#jobs.ensure("leases", Date.now());
  }

  /**
   * A user at the socket cap may hold sockets that died without a close event (a quiet sweep may be minutes
   * away): close those of theirs that stopped heartbeating, so a reconnecting device is not refused for them.
   */
  sweepUser(userId: string): void {
    this.#sockets.sweep(this.#ttl, Date.now(), (s) => s.userId === userId);
  }

  /** Close sockets without a heartbeat (their leases are released by `released`). Runs only while sockets are open. */
  async #sweep(): Promise<JobOutcome> {
    const now = Date.now();
    // Held up by a busy runtime: pings may be waiting to be recorded. Judge silence on the next, punctual run.
    if (sweepIsLate(this.#jobs.dueAt("presence"), now)) return { at: now + 1_000 };
    const alive = this.#sockets.sweep(this.#ttl, now);
    return alive.length > 0 ? { at: now + this.#period(alive.some(countsForPresence)) } : "done";
  }

  /** How soon the next sweep is due: half a TTL while a socket here counts for presence, else QUIET_SWEEP_MS. */
  #period(counting: boolean): number {
    return counting ? this.#ttl / 2 : Math.max(this.#ttl / 2, QUIET_SWEEP_MS);
  }

  /** Take leases for users with sockets here and none held, renew old ones, release those of users with none. */
  async #reconcile(): Promise<JobOutcome> {
    const now = Date.now();
    const held = this.#heldMap();
    const present = new Set<string>();
    for (const [, state] of this.#sockets.entries()) if (countsForPresence(state)) present.add(state.userId);
    const work: { userId: string; take: boolean }[] = [];
    for (const userId of present) {
      const at = held.get(userId);
      if (at === undefined || now - at >= LEASE_RENEW_MS) work.push({ userId, take: true });
    }
    for (const userId of held.keys()) if (!present.has(userId)) work.push({ userId, take: false });
    const batch = work.slice(0, PER_RUN);
    let failed = 0;
    await mapLimit(batch, CONCURRENCY, async ({ userId, take }) => {
      const lease = this.#leaseId();
      try {
        await userStub(this.#env, userId).deviceLeases(take ? [lease] : [], take ? [] : [lease], this.#meta.id, userId, LEASE_MS);
      } catch (err) {
        failed++;
        console.warn(JSON.stringify({ at: "leases", conversation: this.#meta.id, error: String(err) }));
        return;
      }
      if (take) {
        held.set(userId, now);
        this.#sql.exec("INSERT OR REPLACE INTO presence_held (user_id, renewed_at) VALUES (?, ?)", userId, now);
      } else {
        held.delete(userId);
        this.#sql.exec("DELETE FROM presence_held WHERE user_id = ?", userId);
      }
    });
    // Failures are retried soon (the next run recomputes what is left); so is work beyond this run's share.
    if (failed > 0) throw new Error(`${failed} of ${batch.length} lease updates failed`);
    if (work.length > batch.length) return { at: Date.now() };
    let next: number | null = null;
    for (const at of held.values()) next = next === null ? at + LEASE_RENEW_MS : Math.min(next, at + LEASE_RENEW_MS);
    return next === null ? "done" : { at: next };
  }

  /** One lease per conversation in the user object: the same id for every socket of theirs here. */
  #leaseId(): string {
    return `c:${this.#meta.id}`;
  }

  #heldMap(): Map<string, number> {
    if (this.#held) return this.#held;
    const map = new Map<string, number>();
    for (const r of this.#sql.exec<{ userId: string; at: number }>("SELECT user_id AS userId, renewed_at AS at FROM presence_held")) map.set(r.userId, r.at);
    return (this.#held = map);
  }
}
