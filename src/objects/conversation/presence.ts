// Presence from this conversation's side: every socket here is a device of its user, held as a lease
// in the user's object (opened on connect, released when the socket goes, renewed by the "presence"
// job, which also closes sockets that stopped heartbeating). The user object decides online/offline.
import type { JobOutcome, JobRunner } from "../shared/jobs";
import { userStub } from "../shared/stubs";
import type { ConversationSocket, Sockets } from "./connections";
import type { Job } from "./index";
import type { Meta } from "./meta";

export class Presence {
  readonly #ctx: DurableObjectState;
  readonly #env: Env;
  readonly #meta: Meta;
  readonly #sockets: Sockets;
  readonly #jobs: JobRunner<Job>;
  /** A device is offline after this long without a heartbeat (PRESENCE_TTL_MS). */
  readonly #ttl: number;

  constructor(ctx: DurableObjectState, env: Env, meta: Meta, sockets: Sockets, jobs: JobRunner<Job>, ttl: number) {
    this.#ctx = ctx;
    this.#env = env;
    this.#meta = meta;
    this.#sockets = sockets;
    this.#jobs = jobs;
    this.#ttl = ttl;
    jobs.define("presence", () => this.#sweep());
  }

  /** A socket opened: its lease starts now, and the sweep runs while any socket is open. */
  opened(state: ConversationSocket): void {
    this.#ctx.waitUntil(this.#report(state.userId, [state.lease], []));
    this.#jobs.ensure("presence", Date.now() + this.#ttl / 2);
  }

  /** A socket went (the registry's `forgotten` hook): release its lease. */
  released(state: ConversationSocket): void {
    this.#ctx.waitUntil(this.#report(state.userId, [], [state.lease]));
  }

  /** Close sockets without a heartbeat and renew the leases of the rest. Runs only while sockets are open. */
  async #sweep(): Promise<JobOutcome> {
    const now = Date.now();
    const renew = new Map<string, string[]>();
    for (const state of this.#sockets.sweep(this.#ttl, now)) renew.set(state.userId, [...(renew.get(state.userId) ?? []), state.lease]);
    await Promise.all([...renew].map(([userId, leases]) => this.#report(userId, leases, [])));
    return this.#sockets.size > 0 ? { at: now + this.#ttl / 2 } : "done";
  }

  /** Tell a user's object which of its devices (sockets here) opened, are still alive, or closed. */
  async #report(userId: string, open: string[], close: string[]): Promise<void> {
    try {
      await userStub(this.#env, userId).deviceLeases(open, close, this.#meta.id, userId);
    } catch (err) {
      console.warn(JSON.stringify({ at: "leases", error: String(err) }));
    }
  }
}
