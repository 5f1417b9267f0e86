// One Durable Object per conversation: the single writer of the conversation's stream. This class holds the
// runtime's hooks and the RPC methods, each delegating to the module that owns the concern (modules.ts wires them):
//   meta.ts         metadata (cached)               members.ts   members and roles
//   stream.ts       seq, idempotency, limits        commit.ts    the hot path: persist, ack, broadcast
//   frames.ts       socket frames to their modules  connections.ts  the connect flow, socket state
//   history.ts      pages, threads, backlogs        tiers.ts     reads of the archive (D1 and R2)
//   archive.ts      the job that fills the warm and cold tiers: archive to D1, prune, move to R2
//   segments.ts     the cold tier (R2 segments)     retention.ts deleting what is older than the period
//   outbox.ts       D1 directory writes             cursors.ts   delivered/read cursors, receipts
//   fanout.ts       inboxes of members              presence.ts  device leases in user objects
//   live.ts         live inbox events to user objects of online members
//   typing.ts       typing indicators               capacity.ts  the storage ceiling
//   changes.ts      edits, deletes, reactions, replies, mentions (rewrites.ts: the same in the archive)
//   attachments.ts  uploads: state, quota, expiry (the bytes are in R2, streamed by the Worker)
//   member-data.ts  a member going; one member's export pages and erasure steps (admin jobs, protocol 17)
// Shared with the user object: shared/sockets.ts (socket registry), shared/jobs.ts (the one alarm).
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../../protocol/errors";
import type { ChangeRequest, ChatMessage, OutgoingMessage, ServerFrame } from "../../protocol/frames";
import type { Conversation, ConversationType, HistoryPage, HistoryQuery, Role, SendResult } from "../../protocol/api";
import type { ReceiptState } from "../../protocol/user";
import type { AttachmentMeta, UploadedAttachment } from "../../protocol/attachments";
import { HistoryArchive } from "../../db/archive";
import { shardDatabase } from "../../db/shards";
import { AppError, rpcResult, type RpcResult } from "../../lib/errors";
import { readConfig, type Config } from "../../lib/config";
import { TokenBuckets } from "../../lib/rate-limit";
import type { Identity } from "../../lib/tokens";
import { SocketRegistry } from "../shared/sockets";
import type { ConversationSummary, FanoutTarget } from "../shared/updates";
import { readUpgrade, refuse } from "../shared/upgrade";
import type { ConversationSocket, Sockets } from "./connections";
import { BACKLOG_PAGE_BYTES, type BacklogLimits } from "./history";
import type { EraseCursor, EraseStep, ExportPage } from "./member-data";
import { publicMember, type MemberRow } from "./members";
import { openModules, type Modules } from "./modules";

/** The jobs on this object's alarm. */
export type Job = "archive" | "d1_outbox" | "notify" | "presence" | "leases" | "attachments";

/** Everything a conversation object enforces: the configured limits and the backlog page size. */
export type ConversationLimits = Config & BacklogLimits;

export interface InitializeInput {
  id: string;
  type: ConversationType;
  title: string | null;
  createdBy: string;
  members: { userId: string; username: string; role: Role }[];
}

export class ConversationObject extends DurableObject<Env> {
  /**
   * Test seam (fault injection): when set, all archive traffic goes through it instead of this conversation's
   * D1 shard (meta.shard). An instance field, so not reachable over RPC.
   */
  archive: HistoryArchive | undefined;
  /** Test seam (fault injection): when set, the cold tier's R2 traffic goes through it instead of the HISTORY bucket. */
  coldBucket: R2Bucket | undefined;
  /** The primary D1 database's directory tables (conversations, conversation_members), written by the outbox. */
  readonly #directory: HistoryArchive;
  #shardArchive: HistoryArchive | undefined;
  /** Test seam: the per-user send rate limit (in memory; see lib/rate-limit.ts). */
  sendLimiter: TokenBuckets;
  /**
   * Test seam: the limits this object enforces (from wrangler.toml [vars], plus the backlog page size). The
   * modules hold this object and read it when they use a limit, so a test can lower one on a live object.
   */
  readonly limits: ConversationLimits;
  readonly #sockets: Sockets;
  /**
   * True until the conversation is created. Any signed-in user can address any object id, so a blank
   * object writes nothing (not even its schema): probing ids costs no storage. The modules below exist
   * only once it is not blank.
   */
  #blank: boolean;
  /** The modules (modules.ts); they exist only once the object is not blank. */
  #m!: Modules;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.limits = { ...readConfig(env), backlogPageBytes: BACKLOG_PAGE_BYTES };
    this.#directory = new HistoryArchive(env.DB);
    this.sendLimiter = new TokenBuckets(this.limits.sendRatePerSecond, this.limits.sendBurst);
    // Every way a socket goes (closed, errored, expired, no heartbeat) releases its presence lease.
    this.#sockets = new SocketRegistry<ConversationSocket, ServerFrame>(ctx, { forgotten: (s) => this.#m.presence.released(s) });
    // The constructor re-runs after every hibernation wake: everything is rebuilt from storage.
    const sql = ctx.storage.sql;
    this.#blank = sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").one().n === 0;
    if (!this.#blank) this.#open();
  }

  /** Bring the schema up to date and build the modules. */
  #open(): void {
    this.#m = {} as Modules;
    openModules(this.ctx, this.env, {
      limits: this.limits,
      sockets: this.#sockets,
      archive: () => this.archive ?? (this.#shardArchive ??= new HistoryArchive(shardDatabase(this.env, this.#m.meta.shard))),
      directory: () => this.#directory,
      coldBucket: () => this.coldBucket ?? this.env.HISTORY,
      sendLimiter: () => this.sendLimiter,
    }, this.#m);
    this.#blank = false;
  }

  // ------------------------------------------------------------------ metadata & membership (RPC)

  /** Create the conversation if it does not exist yet. Idempotent: returns `created: false` after the first call. */
  initialize(input: InitializeInput): Promise<RpcResult<{ created: boolean; conversation: Conversation }>> {
    return rpcResult(async () => {
      if (this.#blank) this.#open();
      const existing = this.#m.meta.get("id");
      if (existing !== null) {
        if (existing !== input.id) throw new AppError("conflict", "object already holds another conversation");
        return { created: false, conversation: this.#describe() };
      }
      const now = Date.now();
      try {
        this.ctx.storage.transactionSync(() => {
          this.#m.meta.create(input, now, this.limits.archiveShards);
          const directory = this.#m.members.create(input.id, input.members, now);
          this.#m.outbox.enqueue([
            {
              sql: "INSERT OR IGNORE INTO conversations (id, type, title, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
              params: [input.id, input.type, input.title, input.createdBy, now],
            },
            ...directory,
          ]);
        });
      } catch (err) {
        this.#m.meta.reload(); // the transaction rolled back
        throw err;
      }
      this.#m.fanout.schedule();
      await this.#m.outbox.flush();
      return { created: true, conversation: this.#describe() };
    });
  }

  describe(actor: Identity): Promise<RpcResult<Conversation>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#describe();
    });
  }

  addMembers(actor: Identity, users: { userId: string; username: string }[]): Promise<RpcResult<Conversation>> {
    return rpcResult(async () => {
      this.#requireCreated();
      const added = this.#m.members.add(actor, users, this.#m.stream.lastSeq);
      if (added.length === 0) return this.#describe();
      this.#m.memberNews.announce({ type: "members_changed", added: added.map(publicMember), removed: [] });
      this.#m.fanout.schedule();
      await this.#m.outbox.flush();
      return this.#describe();
    });
  }

  /** Before the Worker looks users up: may `actor` add members here? Returns which of `userIds` are not members yet. */
  memberAccess(actor: Identity, userIds: string[]): Promise<RpcResult<{ fresh: string[] }>> {
    return rpcResult(() => {
      this.#requireCreated();
      return { fresh: this.#m.members.checkCanAdd(actor, userIds) };
    });
  }

  /** A direct conversation's members blocked each other, or no longer (the Worker read it from D1). */
  async setBlocked(blocked: boolean): Promise<void> {
    if (!this.#blank) this.#m.members.setBlocked(blocked);
  }

  /** Owner/admin removes a member, or a member removes itself (leave). Their open sockets are closed at once. */
  removeMember(actor: Identity, userId: string): Promise<RpcResult<null>> {
    return rpcResult(async () => {
      this.#requireCreated();
      const { heir } = this.#m.members.remove(actor, userId);
      await this.#m.memberData.departed(userId, heir);
      return null;
    });
  }

  /** The owner promotes a member to admin or demotes an admin. */
  setRole(actor: Identity, userId: string, role: "admin" | "member"): Promise<RpcResult<Conversation>> {
    return rpcResult(async () => {
      this.#requireCreated();
      const changed = this.#m.members.setRole(actor, userId, role);
      this.#m.memberNews.announce({ type: "members_changed", added: [], removed: [], updated: [publicMember(changed)] });
      await this.#m.outbox.flush();
      return this.#describe();
    });
  }

  /**
   * How long messages are kept (protocol 16): `days` (0: forever), or null to follow the deployment. A group's
   * owner or admins, or either member of a direct conversation. The retention step runs at once.
   */
  setRetention(actor: Identity, days: number | null): Promise<RpcResult<Conversation>> {
    return rpcResult(async () => {
      const me = this.#requireMember(actor.userId);
      if (this.#m.meta.type === "group" && me.role === "member") throw new AppError("forbidden", "only the owner or an admin can change how long messages are kept");
      this.#m.retention.set(days);
      this.#m.archiver.schedule();
      return this.#describe();
    });
  }

  // ------------------------------------------------------------------ messages, history, receipts (RPC)

  /** Send one message as `actor` (REST path for servers and bots). Same rules and idempotency as the socket. */
  send(actor: Identity, message: OutgoingMessage): Promise<RpcResult<SendResult>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      this.#m.members.requireNotBlocked();
      if (message.replyTo !== undefined) await this.#m.frames.readArchived(actor.userId, [message.replyTo]);
      this.#requireMember(actor.userId); // still, after the archive read
      return this.#m.commit.sendOne(actor.userId, message);
    });
  }

  /** Edit, delete or react as `actor` (REST). Same rules and idempotency as the socket's frames (protocol 15). */
  change(actor: Identity, change: ChangeRequest): Promise<RpcResult<SendResult>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      this.#m.members.requireNotBlocked();
      await this.#m.frames.readArchived(actor.userId, [change.seq]);
      this.#requireMember(actor.userId);
      return this.#m.commit.changeOne(actor.userId, change);
    });
  }

  /** A page of history, ascending by seq, each entry in its current state; reads the hot tail and D1 transparently. */
  history(actor: Identity, query: HistoryQuery): Promise<RpcResult<HistoryPage>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#m.history.page(query, actor.userId);
    });
  }

  /** A thread: its parent and a page of replies (protocol 15.4). */
  thread(actor: Identity, seq: number, query: { after: number; limit: number }): Promise<RpcResult<{ parent: ChatMessage; messages: ChatMessage[]; nextAfter: number | null }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#m.history.thread(seq, query.after, query.limit, actor.userId);
    });
  }

  /** Who reacted to message `seq` (protocol 15.3). */
  reactions(
    actor: Identity,
    seq: number,
    query: { emoji?: string; after?: string; limit: number },
  ): Promise<RpcResult<{ emoji: string; count: number; userIds: string[]; nextAfter: string | null }[]>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      await this.#m.changes.load([seq]);
      const target = this.#m.changes.current(seq);
      if (!target || target.change) throw new AppError("message_not_found", `no message at seq ${seq}`);
      return this.#m.changes.reactionsOf(seq, query);
    });
  }

  /** Archive everything not yet in D1 and prune to the hot tail now, instead of waiting for the alarm (ops, tests, verify). */
  async flushArchive(): Promise<{ archivedSeq: number; lastSeq: number; coldSeq: number }> {
    if (this.#blank) return { archivedSeq: 0, lastSeq: 0, coldSeq: 0 };
    return this.#m.archiver.flushAll();
  }

  /** A member reports what it received/read (REST, or its user socket). Cursors only move forward. */
  applyReceipt(userId: string, delivered?: number, read?: number): Promise<RpcResult<{ deliveredSeq: number; readSeq: number }>> {
    return rpcResult(() => {
      this.#requireMember(userId);
      const row = this.#m.cursors.advance(userId, delivered ?? 0, read ?? 0);
      return { deliveredSeq: row.deliveredSeq, readSeq: row.readSeq };
    });
  }

  /**
   * A member's user object asks where the conversation is (large conversations are fanned out on read),
   * and with `listen`, to hear live events while it has a user socket open (live.ts).
   */
  inboxPosition(userId: string, listen: boolean): Promise<RpcResult<{ summary: ConversationSummary; target: FanoutTarget }>> {
    return rpcResult(() => {
      const member = this.#requireMember(userId);
      if (listen) this.#m.live.listen(userId);
      return this.#m.fanout.position(member);
    });
  }

  /** Who has received and read message `seq` (members other than its sender). */
  receipts(actor: Identity, seq: number): Promise<RpcResult<ReceiptState>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      if (seq < 1 || seq > this.#m.stream.lastSeq) throw new AppError("not_found", "no message with that seq");
      const message = (await this.#m.history.range(seq, seq))[0];
      if (!message) throw new AppError("not_found", "no message with that seq");
      return this.#m.cursors.stateOf(message);
    });
  }

  // ------------------------------------------------------------------ attachments (RPC; the Worker streams the bytes to R2)

  /** A member starts an upload: size reserved against the quota; returns the attachment and its R2 key. */
  attachmentBegin(actor: Identity, meta: AttachmentMeta): Promise<RpcResult<{ attachment: UploadedAttachment; key: string }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#m.attachments.begin(actor.userId, meta);
    });
  }

  /** The R2 multipart upload the Worker opened for an attachment (`uploadId` set), or the one to continue. */
  attachmentMultipart(actor: Identity, id: string, uploadId?: string): Promise<RpcResult<{ key: string; uploadId: string; size: number; contentType: string }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      if (uploadId !== undefined) this.#m.attachments.setUploadId(actor.userId, id, uploadId);
      return this.#m.attachments.uploading(actor.userId, id);
    });
  }

  /** All bytes are in R2: the attachment can be referenced by a message. */
  attachmentUploaded(actor: Identity, id: string): Promise<RpcResult<UploadedAttachment>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#m.attachments.uploaded(actor.userId, id);
    });
  }

  /** The uploader takes back an unreferenced upload; returns what the Worker deletes in R2. */
  attachmentDiscard(actor: Identity, id: string): Promise<RpcResult<{ key: string; uploadId: string | null }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#m.attachments.discard(actor.userId, id);
    });
  }

  /** May `actor` read this attachment (download, signed URL)? */
  attachmentReadable(actor: Identity, id: string): Promise<RpcResult<{ attachment: UploadedAttachment; key: string }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#m.attachments.readable(actor.userId, id);
    });
  }

  // ------------------------------------------------------------------ admin jobs (RPC from the user's own object, protocol 17)

  /** A page of what `userId` wrote here, for their export: after seq `after` (0: from the start, with the conversation). */
  exportMember(userId: string, after: number): Promise<RpcResult<ExportPage>> {
    return rpcResult(() => (this.#blank ? { messages: [], reactions: [], next: null } : this.#m.memberData.exportPage(userId, after)));
  }

  /** One bounded step of erasing `userId` here; call again with the cursor it returns until that is null. */
  eraseMember(userId: string, cursor: EraseCursor): Promise<RpcResult<EraseStep>> {
    return rpcResult(() => (this.#blank ? { next: null, messages: 0, reactions: 0 } : this.#m.memberData.eraseStep(userId, cursor)));
  }

  // ------------------------------------------------------------------ runtime hooks

  /** Upgrade requests, forwarded by the Worker after it verified the token and the protocol version. */
  override async fetch(request: Request): Promise<Response> {
    const upgrade = readUpgrade(request);
    if (upgrade instanceof Response) return upgrade;
    if (this.#blank) return refuse(upgrade, CloseCode.NotAMember, "not a member of this conversation");
    return this.#m.connections.connect(upgrade);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    // A blank object accepts no socket (fetch refuses them), so a frame here has no identity.
    if (this.#blank) return this.#sockets.close(ws, CloseCode.InternalError, "socket has no identity");
    return this.#m.frames.handle(ws, raw);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#sockets.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#sockets.forget(ws);
  }

  override async alarm(): Promise<void> {
    if (!this.#blank) await this.#m.jobs.alarm();
  }

  // ------------------------------------------------------------------ helpers

  /** A blank object has no modules yet: it answers every member-only call as a non-member would. */
  #requireCreated(): void {
    if (this.#blank) throw new AppError("not_a_member", "you are not a member of this conversation");
  }

  #requireMember(userId: string): MemberRow {
    this.#requireCreated();
    return this.#m.members.require(userId);
  }

  #describe(): Conversation {
    const meta = this.#m.meta;
    return {
      id: meta.id,
      type: meta.type,
      title: meta.title,
      createdBy: meta.get("created_by") ?? "",
      createdAt: Number(meta.get("created_at") ?? "0"),
      epoch: meta.epoch,
      lastSeq: this.#m.stream.lastSeq,
      members: this.#m.members.list().map((m) => ({ userId: m.userId, username: m.username, role: m.role, joinedAt: m.joinedAt })),
      retentionDays: this.#m.retention.days,
      retentionOwn: this.#m.retention.own !== null,
    };
  }
}

