// One Durable Object per conversation: the single writer of the conversation's stream. This class is
// the wiring and the dispatcher: the runtime's hooks and the RPC methods, each delegating to the module
// that owns the concern:
//   meta.ts         metadata (cached)               members.ts   members and roles
//   stream.ts       seq, idempotency, limits        commit.ts    the hot path: persist, ack, broadcast
//   history.ts      pages and backlog, both tiers   archive.ts   the D1 archive job and pruning
//   outbox.ts       D1 directory writes             cursors.ts   delivered/read cursors, receipts
//   fanout.ts       inboxes of members              presence.ts  device leases in user objects
//   live.ts         live inbox events to user objects of online members
//   typing.ts       typing indicators               connections.ts  the connect flow, socket state
//   changes.ts      edits, deletes, reactions, replies, mentions (rewrites.ts: the same in D1)
//   attachments.ts  uploads: state, quota, expiry (the bytes are in R2, streamed by the Worker)
//   capacity.ts     the storage ceiling
// Shared with the user object: shared/sockets.ts (socket registry), shared/jobs.ts (the one alarm).
import { DurableObject } from "cloudflare:workers";
import { CloseCode } from "../../protocol/errors";
import { parseClientFrame, type ChangeRequest, type ChatMessage, type ClientFrame as ChatFrame, type OutgoingMessage, type ServerFrame } from "../../protocol/frames";
import type { Conversation, ConversationType, HistoryPage, HistoryQuery, Role, SendResult } from "../../protocol/api";
import type { ReceiptState } from "../../protocol/user";
import { HistoryArchive } from "../../db/archive";
import { shardDatabase } from "../../db/shards";
import { AppError, rpcResult, type RpcResult } from "../../lib/errors";
import { readConfig, type Config } from "../../lib/config";
import { TokenBuckets } from "../../lib/rate-limit";
import { migrate } from "../../lib/sqlite";
import type { Identity } from "../../lib/tokens";
import { JobRunner } from "../shared/jobs";
import { SocketRegistry } from "../shared/sockets";
import { userStub } from "../shared/stubs";
import type { ConversationSummary, FanoutTarget } from "../shared/updates";
import { readUpgrade, refuse } from "../shared/upgrade";
import type { AttachmentMeta, UploadedAttachment } from "../../protocol/attachments";
import { Archiver } from "./archive";
import { Attachments } from "./attachments";
import { Capacity } from "./capacity";
import { Changes } from "./changes";
import { CommitPath } from "./commit";
import { Connections, type ConversationSocket, type Sockets } from "./connections";
import { Cursors } from "./cursors";
import { Fanout } from "./fanout";
import { LiveFeed } from "./live";
import { BACKLOG_PAGE_BYTES, History, type BacklogLimits } from "./history";
import { BLOCKED_MESSAGE, Members, type MemberRow } from "./members";
import { Meta } from "./meta";
import { DirectoryOutbox } from "./outbox";
import { Presence } from "./presence";
import { Retention } from "./retention";
import { D1Rewrites } from "./rewrites";
import { CONVERSATION_MIGRATIONS } from "./schema";
import { ColdSegments } from "./segments";
import { MessageStream } from "./stream";
import { ArchivedTiers } from "./tiers";
import { Typing } from "./typing";

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
  #jobs!: JobRunner<Job>;
  #meta!: Meta;
  #members!: Members;
  #stream!: MessageStream;
  #cursors!: Cursors;
  #outbox!: DirectoryOutbox;
  #history!: History;
  #archiver!: Archiver;
  #fanout!: Fanout;
  #live!: LiveFeed;
  #presence!: Presence;
  #typing!: Typing;
  #attachments!: Attachments;
  #changes!: Changes;
  #retention!: Retention;
  #commit!: CommitPath;
  #connections!: Connections;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.limits = { ...readConfig(env), backlogPageBytes: BACKLOG_PAGE_BYTES };
    this.#directory = new HistoryArchive(env.DB);
    this.sendLimiter = new TokenBuckets(this.limits.sendRatePerSecond, this.limits.sendBurst);
    // Every way a socket goes (closed, errored, expired, no heartbeat) releases its presence lease.
    this.#sockets = new SocketRegistry<ConversationSocket, ServerFrame>(ctx, { forgotten: (s) => this.#presence.released(s) });
    // The constructor re-runs after every hibernation wake: everything is rebuilt from storage.
    const sql = ctx.storage.sql;
    this.#blank = sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").one().n === 0;
    if (!this.#blank) this.#open();
  }

  /** Bring the schema up to date and build the modules. */
  #open(): void {
    const { ctx, env } = this;
    const storage = ctx.storage;
    migrate(storage, CONVERSATION_MIGRATIONS);
    const meta = (this.#meta = new Meta(storage.sql));
    const d1 = () => this.archive ?? (this.#shardArchive ??= new HistoryArchive(shardDatabase(env, meta.shard)));
    const jobs = (this.#jobs = new JobRunner<Job>(storage, () => ({ conversation: meta.id })));
    const outbox = (this.#outbox = new DirectoryOutbox(storage.sql, jobs, () => this.#directory));
    const members = (this.#members = new Members(
      storage,
      meta,
      { markDirty: (userId) => this.#cursors.markDirty(userId), enqueueD1: (s) => outbox.enqueue(s) },
      this.limits.maxGroupMembers,
    ));
    const capacity = new Capacity(storage, this.limits, () => ({ conversation: meta.id }));
    const stream = (this.#stream = new MessageStream(storage, meta, this.limits, () => this.sendLimiter, capacity, (sender, ids, seq) => this.#attachments.claim(sender, ids, seq)));
    const rewrites = new D1Rewrites(storage.sql);
    const cold = new ColdSegments(storage.sql, meta, () => this.coldBucket ?? env.HISTORY);
    const archived = new ArchivedTiers(meta, d1, cold, rewrites);
    const changes = (this.#changes = new Changes({ sql: storage.sql, meta, members, stream, attachments: () => this.#attachments, archived, rewrites, limits: this.limits }));
    const sockets = this.#sockets;
    const cursors = (this.#cursors = new Cursors(storage.sql, members, () => stream.lastSeq, () => this.#fanout.schedule()));
    const live = (this.#live = new LiveFeed(env, storage.sql, () => members.ids(), () => this.#fanout.isLarge()));
    const fanout = (this.#fanout = new Fanout(env, storage.sql, jobs, { meta, members, stream, cursors, sockets, live }));
    const history = (this.#history = new History(meta, stream, archived, this.limits, changes));
    const retention = (this.#retention = new Retention({ sql: storage.sql, meta, stream, d1, cold, attachments: () => this.#attachments, limits: this.limits }));
    const archiver = (this.#archiver = new Archiver({ meta, stream, jobs, d1, limits: this.limits, capacity, rewrites, cold, retention }));
    const presence = (this.#presence = new Presence(env, storage.sql, meta, sockets, jobs, this.limits.presenceTtlMs));
    this.#typing = new Typing(sockets, () => members.blocked);
    this.#attachments = new Attachments(storage.sql, meta, env.ATTACHMENTS, jobs, this.limits.attachmentQuotaBytes);
    this.#commit = new CommitPath({ meta, members, stream, cursors, sockets, archiver, fanout, changes });
    this.#connections = new Connections(ctx, this.limits, { sockets, meta, members, stream, cursors, history, presence });
    this.#blank = false;
  }

  // ------------------------------------------------------------------ metadata & membership (RPC)

  /** Create the conversation if it does not exist yet. Idempotent: returns `created: false` after the first call. */
  initialize(input: InitializeInput): Promise<RpcResult<{ created: boolean; conversation: Conversation }>> {
    return rpcResult(async () => {
      if (this.#blank) this.#open();
      const existing = this.#meta.get("id");
      if (existing !== null) {
        if (existing !== input.id) throw new AppError("conflict", "object already holds another conversation");
        return { created: false, conversation: this.#describe() };
      }
      const now = Date.now();
      try {
        this.ctx.storage.transactionSync(() => {
          this.#meta.create(input, now, this.limits.archiveShards);
          const directory = this.#members.create(input.id, input.members, now);
          this.#outbox.enqueue([
            {
              sql: "INSERT OR IGNORE INTO conversations (id, type, title, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
              params: [input.id, input.type, input.title, input.createdBy, now],
            },
            ...directory,
          ]);
        });
      } catch (err) {
        this.#meta.reload(); // the transaction rolled back
        throw err;
      }
      this.#fanout.schedule();
      await this.#outbox.flush();
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
      const added = this.#members.add(actor, users, this.#stream.lastSeq);
      if (added.length === 0) return this.#describe();
      this.#sockets.broadcast({ type: "members_changed", added: added.map(publicMember), removed: [] });
      this.#fanout.schedule();
      await this.#outbox.flush();
      return this.#describe();
    });
  }

  /** Before the Worker looks users up: may `actor` add members here? Returns which of `userIds` are not members yet. */
  memberAccess(actor: Identity, userIds: string[]): Promise<RpcResult<{ fresh: string[] }>> {
    return rpcResult(() => {
      this.#requireCreated();
      return { fresh: this.#members.checkCanAdd(actor, userIds) };
    });
  }

  /** A direct conversation's members blocked each other, or no longer (the Worker read it from D1). */
  async setBlocked(blocked: boolean): Promise<void> {
    if (!this.#blank) this.#members.setBlocked(blocked);
  }

  /** Owner/admin removes a member, or a member removes itself (leave). Their open sockets are closed at once. */
  removeMember(actor: Identity, userId: string): Promise<RpcResult<null>> {
    return rpcResult(async () => {
      this.#requireCreated();
      const { heir } = this.#members.remove(actor, userId);
      for (const ws of this.ctx.getWebSockets(userId)) this.#sockets.close(ws, CloseCode.NotAMember, "removed from the conversation");
      this.#live.forget(userId);
      this.#sockets.broadcast({ type: "members_changed", added: [], removed: [userId], ...(heir ? { updated: [publicMember(heir)] } : {}) });
      await this.#outbox.flush();
      try {
        await userStub(this.env, userId).conversationRemoved(this.#meta.id, Date.now());
      } catch (err) {
        console.warn(JSON.stringify({ at: "conversation_removed", error: String(err) }));
      }
      return null;
    });
  }

  /** The owner promotes a member to admin or demotes an admin. */
  setRole(actor: Identity, userId: string, role: "admin" | "member"): Promise<RpcResult<Conversation>> {
    return rpcResult(async () => {
      this.#requireCreated();
      const changed = this.#members.setRole(actor, userId, role);
      this.#sockets.broadcast({ type: "members_changed", added: [], removed: [], updated: [publicMember(changed)] });
      await this.#outbox.flush();
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
      if (this.#meta.type === "group" && me.role === "member") throw new AppError("forbidden", "only the owner or an admin can change how long messages are kept");
      this.#retention.set(days);
      this.#archiver.schedule();
      return this.#describe();
    });
  }

  // ------------------------------------------------------------------ messages, history, receipts (RPC)

  /** Send one message as `actor` (REST path for servers and bots). Same rules and idempotency as the socket. */
  send(actor: Identity, message: OutgoingMessage): Promise<RpcResult<SendResult>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      this.#members.requireNotBlocked();
      if (message.replyTo !== undefined) await this.#readArchived(actor.userId, [message.replyTo]);
      this.#requireMember(actor.userId); // still, after the archive read
      return this.#commit.sendOne(actor.userId, message);
    });
  }

  /** Edit, delete or react as `actor` (REST). Same rules and idempotency as the socket's frames (protocol 15). */
  change(actor: Identity, change: ChangeRequest): Promise<RpcResult<SendResult>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      this.#members.requireNotBlocked();
      await this.#readArchived(actor.userId, [change.seq]);
      this.#requireMember(actor.userId);
      return this.#commit.changeOne(actor.userId, change);
    });
  }

  /** A page of history, ascending by seq, each entry in its current state; reads the hot tail and D1 transparently. */
  history(actor: Identity, query: HistoryQuery): Promise<RpcResult<HistoryPage>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#history.page(query, actor.userId);
    });
  }

  /** A thread: its parent and a page of replies (protocol 15.4). */
  thread(actor: Identity, seq: number, query: { after: number; limit: number }): Promise<RpcResult<{ parent: ChatMessage; messages: ChatMessage[]; nextAfter: number | null }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#history.thread(seq, query.after, query.limit, actor.userId);
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
      await this.#changes.load([seq]);
      const target = this.#changes.current(seq);
      if (!target || target.change) throw new AppError("message_not_found", `no message at seq ${seq}`);
      return this.#changes.reactionsOf(seq, query);
    });
  }

  /** Archive everything not yet in D1 and prune to the hot tail now, instead of waiting for the alarm (ops, tests, verify). */
  async flushArchive(): Promise<{ archivedSeq: number; lastSeq: number; coldSeq: number }> {
    if (this.#blank) return { archivedSeq: 0, lastSeq: 0, coldSeq: 0 };
    return this.#archiver.flushAll();
  }

  /** A member reports what it received/read (REST, or its user socket). Cursors only move forward. */
  applyReceipt(userId: string, delivered?: number, read?: number): Promise<RpcResult<{ deliveredSeq: number; readSeq: number }>> {
    return rpcResult(() => {
      this.#requireMember(userId);
      const row = this.#cursors.advance(userId, delivered ?? 0, read ?? 0);
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
      if (listen) this.#live.listen(userId);
      return this.#fanout.position(member);
    });
  }

  /** Who has received and read message `seq` (members other than its sender). */
  receipts(actor: Identity, seq: number): Promise<RpcResult<ReceiptState>> {
    return rpcResult(async () => {
      this.#requireMember(actor.userId);
      if (seq < 1 || seq > this.#stream.lastSeq) throw new AppError("not_found", "no message with that seq");
      const message = (await this.#history.range(seq, seq))[0];
      if (!message) throw new AppError("not_found", "no message with that seq");
      return this.#cursors.stateOf(message);
    });
  }

  // ------------------------------------------------------------------ attachments (RPC; the Worker streams the bytes to R2)

  /** A member starts an upload: size reserved against the quota; returns the attachment and its R2 key. */
  attachmentBegin(actor: Identity, meta: AttachmentMeta): Promise<RpcResult<{ attachment: UploadedAttachment; key: string }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#attachments.begin(actor.userId, meta);
    });
  }

  /** The R2 multipart upload the Worker opened for an attachment (`uploadId` set), or the one to continue. */
  attachmentMultipart(actor: Identity, id: string, uploadId?: string): Promise<RpcResult<{ key: string; uploadId: string; size: number; contentType: string }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      if (uploadId !== undefined) this.#attachments.setUploadId(actor.userId, id, uploadId);
      return this.#attachments.uploading(actor.userId, id);
    });
  }

  /** All bytes are in R2: the attachment can be referenced by a message. */
  attachmentUploaded(actor: Identity, id: string): Promise<RpcResult<UploadedAttachment>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#attachments.uploaded(actor.userId, id);
    });
  }

  /** The uploader takes back an unreferenced upload; returns what the Worker deletes in R2. */
  attachmentDiscard(actor: Identity, id: string): Promise<RpcResult<{ key: string; uploadId: string | null }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#attachments.discard(actor.userId, id);
    });
  }

  /** May `actor` read this attachment (download, signed URL)? */
  attachmentReadable(actor: Identity, id: string): Promise<RpcResult<{ attachment: UploadedAttachment; key: string }>> {
    return rpcResult(() => {
      this.#requireMember(actor.userId);
      return this.#attachments.readable(actor.userId, id);
    });
  }

  // ------------------------------------------------------------------ runtime hooks

  /** Upgrade requests, forwarded by the Worker after it verified the token and the protocol version. */
  override async fetch(request: Request): Promise<Response> {
    const upgrade = readUpgrade(request);
    if (upgrade instanceof Response) return upgrade;
    if (this.#blank) return refuse(upgrade, CloseCode.NotAMember, "not a member of this conversation");
    return this.#connections.connect(upgrade);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const state = this.#sockets.get(ws);
    if (!state) return this.#sockets.close(ws, CloseCode.InternalError, "socket has no identity");
    if (state.exp * 1000 <= Date.now()) return this.#sockets.close(ws, CloseCode.TokenExpired, "access token expired");
    if (this.#members.get(state.userId) === null) return this.#sockets.close(ws, CloseCode.NotAMember, "not a member of this conversation");

    const parsed = parseClientFrame(raw);
    if (!parsed.ok) {
      // A bad frame gets an error and the socket stays open: it may be one bug in an otherwise healthy client.
      return this.#sockets.send(ws, { type: "error", code: parsed.code, message: parsed.message, clientMsgId: parsed.clientMsgId });
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case "ping":
        return this.#sockets.send(ws, { type: "pong" });
      case "send":
      case "send_batch": {
        const messages: OutgoingMessage[] = frame.type === "send" ? [sendFields(frame)] : frame.messages;
        if (this.#members.blocked) {
          for (const m of messages) this.#sockets.send(ws, { type: "error", code: "blocked", message: BLOCKED_MESSAGE, clientMsgId: m.clientMsgId });
          return;
        }
        this.#typing.sent(state.userId);
        const parents = messages.flatMap((m) => (m.replyTo !== undefined ? [m.replyTo] : []));
        // A reply to a message older than the hot tail: its quote is read from D1 first (rare; never for plain sends).
        if (parents.length > 0 && this.#changes.needs(parents).length > 0 && !(await this.#loaded(ws, state.userId, parents, messages))) return;
        return this.#commit.enqueue(ws, state.userId, messages);
      }
      case "edit":
      case "delete":
      case "react": {
        if (this.#members.blocked) return this.#sockets.send(ws, { type: "error", code: "blocked", message: BLOCKED_MESSAGE, clientMsgId: frame.clientMsgId });
        if (this.#changes.needs([frame.seq]).length > 0 && !(await this.#loaded(ws, state.userId, [frame.seq], [frame]))) return;
        return this.#commit.enqueueChange(ws, state.userId, frame);
      }
      case "typing":
        return this.#typing.typed(state, frame.active);
      case "receipt":
        this.#cursors.advance(state.userId, frame.delivered ?? 0, frame.read ?? 0);
        return;
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#sockets.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#sockets.forget(ws);
  }

  override async alarm(): Promise<void> {
    if (!this.#blank) await this.#jobs.alarm();
  }

  // ------------------------------------------------------------------ helpers

  /**
   * Read from D1 the messages older than the hot tail that a change or reply names. Each read costs the user one
   * send token (on top of the change's own), so naming old messages cannot make this object read D1 faster
   * than the user may send; throws rate_limited, or D1's failure.
   */
  async #readArchived(userId: string, seqs: number[]): Promise<void> {
    const missing = this.#changes.needs(seqs);
    if (missing.length === 0) return;
    const { granted, retryAfterMs } = this.sendLimiter.take(userId, missing.length);
    if (granted < missing.length) {
      throw new AppError("rate_limited", `sending too fast: at most ${this.limits.sendRatePerSecond} messages per second (burst ${this.limits.sendBurst})`, { retryAfterMs });
    }
    await this.#changes.load(missing);
  }

  /** #readArchived for socket frames: on failure each frame's entry gets the (retryable) error. */
  async #loaded(ws: WebSocket, userId: string, seqs: number[], named: { clientMsgId: string }[]): Promise<boolean> {
    try {
      await this.#readArchived(userId, seqs);
      return true;
    } catch (err) {
      const limited = err instanceof AppError && err.code === "rate_limited";
      if (!limited) console.warn(JSON.stringify({ at: "load_target", conversation: this.#meta.id, error: String(err) }));
      for (const n of named) {
        this.#sockets.send(
          ws,
          limited
            ? { type: "error", code: "rate_limited", message: err.message, clientMsgId: n.clientMsgId, retryAfterMs: err.retryAfterMs }
            : { type: "error", code: "unavailable", message: "could not read that message from the archive; retry", clientMsgId: n.clientMsgId, retryAfterMs: 1_000 },
        );
      }
      return false;
    }
  }

  /** A blank object has no modules yet: it answers every member-only call as a non-member would. */
  #requireCreated(): void {
    if (this.#blank) throw new AppError("not_a_member", "you are not a member of this conversation");
  }

  #requireMember(userId: string): MemberRow {
    this.#requireCreated();
    return this.#members.require(userId);
  }

  #describe(): Conversation {
    const meta = this.#meta;
    return {
      id: meta.id,
      type: meta.type,
      title: meta.title,
      createdBy: meta.get("created_by") ?? "",
      createdAt: Number(meta.get("created_at") ?? "0"),
      epoch: meta.epoch,
      lastSeq: this.#stream.lastSeq,
      members: this.#members.list().map((m) => ({ userId: m.userId, username: m.username, role: m.role, joinedAt: m.joinedAt })),
      retentionDays: this.#retention.days,
      retentionOwn: this.#retention.own !== null,
    };
  }
}

/** The message of a `send` frame (everything but its type). */
function sendFields({ type: _, ...message }: Extract<ChatFrame, { type: "send" }>): OutgoingMessage {
  return message;
}

function publicMember(m: MemberRow): { userId: string; username: string; role: Role } {
  return { userId: m.userId, username: m.username, role: m.role };
}
