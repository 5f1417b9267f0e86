// One Durable Object per user: everything about a person rather than a conversation. This file is the
// runtime's entry points and the RPC surface, each handing over to the module that owns the concern:
//   inbox.ts       the inbox, delivered/read cursors, unread totals, left conversations, the push decision
//   inbox-rows.ts  what an inbox row is: its columns, the unread and mention counts, the entry a client sees
//   inbox-live.ts  the live overlay: what live events showed the sockets, in memory until stored
//   inbox-pull.ts  large conversations fanned out on read: refreshed on inbox reads, live events registered
//   presence.ts    device leases, online/last seen, presence subscribers and watches, the heartbeat sweep
//   connection.ts  the user socket: accepting it, the hello, the frames a device sends
//   limits.ts      per-user quotas on social actions (conversations created, member changes, presence)
//   admin-jobs.ts  admin jobs for this user (protocol 17): export.ts writes their data to R2, erasure.ts erases them
//   meta.ts        small named values (whose object this is, presence bookkeeping)
//   schema.ts      the SQLite migrations
// Only the public methods below are reachable on a stub: everything else is #private. Old and new code
// run side by side during a deploy, so keep every RPC signature and result shape compatible.
import { DurableObject } from "cloudflare:workers";
import type { JobKind } from "../../protocol/admin";
import { CloseCode } from "../../protocol/errors";
import type { InboxPage, Presence } from "../../protocol/user";
import { rpcResult, type RpcResult } from "../../lib/errors";
import { readConfig } from "../../lib/config";
import { migrate } from "../../lib/sqlite";
import { JobRunner } from "../shared/jobs";
import { SocketRegistry } from "../shared/sockets";
import type { ConversationSummary, FanoutTarget } from "../shared/updates";
import { AdminJobs } from "./admin-jobs";
import { Connections, type UserSockets } from "./connection";
import { ErasureSteps } from "./erasure";
import { ExportSteps } from "./export";
import { Inbox } from "./inbox";
import { limitsFrom, Quotas, type UserLimits } from "./limits";
import { Meta } from "./meta";
import { UserPresence } from "./presence";
import { USER_MIGRATIONS } from "./schema";

/**
 * The jobs on this object's alarm: the presence sweep and re-check (presence.ts), live-event registrations
 * (inbox-pull.ts), admin jobs (admin-jobs.ts) and the deletion of expired export files (export.ts).
 */
export type UserJob = "presence_sweep" | "presence_recheck" | "inbox_listen" | "admin" | "export_cleanup";

export class UserObject extends DurableObject<Env> {
  /** Test seam: the quotas and the watch cap (from config). An instance field, so not reachable over RPC. */
  limits: UserLimits;
  readonly #quotas: Quotas;
  readonly #sockets: UserSockets;
  readonly #jobs: JobRunner<UserJob>;
  readonly #inbox: Inbox;
  readonly #presence: UserPresence;
  readonly #connections: Connections;
  readonly #admin: AdminJobs;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const config = readConfig(env);
    migrate(ctx.storage, USER_MIGRATIONS);
    const meta = new Meta(ctx.storage.sql);
    this.limits = limitsFrom(config);
    this.#quotas = new Quotas(meta, () => this.limits);
    // However a socket goes (closed by either side, errored, swept), it stops watching other users.
    this.#sockets = new SocketRegistry(ctx, { forgotten: (state) => this.#presence.socketGone(state) });
    this.#jobs = new JobRunner(ctx.storage);
    this.#presence = new UserPresence({
      env,
      storage: ctx.storage,
      meta,
      sockets: this.#sockets,
      jobs: this.#jobs,
      ttlMs: config.presenceTtlMs,
      quotas: this.#quotas,
      limits: () => this.limits,
    });
    this.#inbox = new Inbox({ ctx, env, sql: ctx.storage.sql, meta, sockets: this.#sockets, jobs: this.#jobs, isOnline: () => this.#presence.isOnline() });
    this.#connections = new Connections({
      ctx,
      meta,
      sockets: this.#sockets,
      maxSocketsPerUser: config.maxSocketsPerUser,
      inbox: this.#inbox,
      presence: this.#presence,
    });
    this.#admin = new AdminJobs({
      storage: ctx.storage,
      db: env.DB,
      jobs: this.#jobs,
      inbox: this.#inbox,
      steps: (admin) => ({
        export: new ExportSteps({ env, sql: ctx.storage.sql, admin, jobs: this.#jobs, ttlSeconds: () => this.limits.exportTtlSeconds }),
        erase: new ErasureSteps({ env, admin, wipe: () => this.#wipe() }),
      }),
    });
  }

  /**
   * The last step of an erasure: the user's sockets close, watchers see them go offline, and every byte this
   * object stored is deleted. Its tables are made again, empty, as a new object's are (anything that addresses
   * the object later finds nothing).
   */
  async #wipe(): Promise<void> {
    for (const [ws] of [...this.#sockets.entries()]) this.#sockets.close(ws, CloseCode.Unauthorized, "this account was erased");
    await this.#presence.maybeChanged();
    await this.ctx.storage.deleteAll();
    migrate(this.ctx.storage, USER_MIGRATIONS);
    await this.#jobs.reset();
  }

  // ------------------------------------------------------------------ the user socket

  override async fetch(request: Request): Promise<Response> {
    return this.#connections.open(request);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    return this.#connections.message(ws, raw);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#sockets.closed(ws, code, reason);
    await this.#presence.maybeChanged();
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#sockets.forget(ws);
    await this.#presence.maybeChanged();
  }

  /** The one alarm runs the due jobs (presence.ts, inbox-pull.ts). */
  override async alarm(): Promise<void> {
    await this.#jobs.alarm();
  }

  // ------------------------------------------------------------------ inbox & cursors (RPC)

  /** Apply a conversation update from the fan-out. Idempotent and order-insensitive. */
  async conversationUpdate(summary: ConversationSummary, target: FanoutTarget): Promise<void> {
    await this.#inbox.update(summary, target);
  }

  /**
   * New messages of one conversation, the moment they are committed: forwarded to the user sockets, nothing
   * stored (the fan-out's conversationUpdate follows). False when no user socket is open.
   */
  async conversationLive(events: ConversationSummary[]): Promise<boolean> {
    return this.#inbox.live(events);
  }

  /** Removed from (or left) a conversation: it leaves the inbox and the unread total. */
  async conversationRemoved(conversationId: string, removedAt: number): Promise<void> {
    this.#inbox.removed(conversationId, removedAt);
    this.#presence.sharingEnded();
  }

  /** The inbox: newest activity first, keyset-paginated. */
  async inbox(cursor: string | null, limit: number): Promise<RpcResult<InboxPage>> {
    return this.#inbox.page(cursor, limit);
  }

  /** A receipt reported over REST (the user socket reports through the same path). */
  async reportReceipt(userId: string, conversationId: string, delivered?: number, read?: number): Promise<RpcResult<null>> {
    return this.#inbox.reportReceipt(userId, conversationId, delivered, read);
  }

  // ------------------------------------------------------------------ presence (RPC)

  /** A conversation object takes, renews or releases the lease it holds while this user has sockets there. */
  async deviceLeases(open: string[], close: string[], conversationId: string, userId?: string, leaseMs?: number): Promise<void> {
    await this.#presence.deviceLeases(open, close, conversationId, userId, leaseMs);
  }

  async getPresence(): Promise<Presence> {
    return this.#presence.current();
  }

  /** `subscriberId` wants this user's presence changes pushed to it. Returns the current state. */
  async addSubscriber(subscriberId: string): Promise<Presence> {
    return this.#presence.addSubscriber(subscriberId);
  }

  /** A watched user's presence changed. Returns false when no socket here watches it any more (the caller unsubscribes us). */
  async presenceChanged(presence: Presence): Promise<boolean> {
    return this.#presence.watchedChanged(presence);
  }

  /** Presence between this user and `userIds` is no longer allowed (a block; no shared conversation any more). */
  async presenceRevoked(userIds: string[]): Promise<void> {
    this.#presence.revoke(userIds);
  }

  // ------------------------------------------------------------------ admin jobs (RPC from the Worker, protocol 17)

  /** Run an export or erasure job recorded in D1 (admin-jobs.ts). Idempotent: a repeated request only wakes it. */
  async adminJob(job: { id: string; kind: JobKind; userId: string; createdAt: number }): Promise<void> {
    this.#admin.start(job);
  }

  // ------------------------------------------------------------------ quotas (RPC)

  /** The Worker takes one token before creating a conversation or changing members for this user. */
  async takeQuota(kind: "create" | "members"): Promise<RpcResult<null>> {
    return rpcResult(() => {
      this.#quotas.take(kind);
      return null;
    });
  }
}
