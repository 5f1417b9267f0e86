// The conversation object's modules, built once the conversation exists (and again on every wake): the one place
// that wires them to each other. Each module owns its tables and state (the first comment of each file says what);
// index.ts holds the runtime's hooks and the RPC methods and delegates to these.
import type { HistoryArchive } from "../../db/archive";
import type { TokenBuckets } from "../../lib/rate-limit";
import { migrate } from "../../lib/sqlite";
import { JobRunner } from "../shared/jobs";
import { Archiver } from "./archive";
import { Attachments } from "./attachments";
import { Capacity } from "./capacity";
import { Changes } from "./changes";
import { CommitPath } from "./commit";
import { Connections, type Sockets } from "./connections";
import { Cursors } from "./cursors";
import { Fanout } from "./fanout";
import { FrameDispatcher } from "./frames";
import { History } from "./history";
import type { ConversationLimits, Job } from "./index";
import { LiveFeed } from "./live";
import { MemberData } from "./member-data";
import { MemberNews } from "./member-news";
import { Members } from "./members";
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

export interface Modules {
  jobs: JobRunner<Job>;
  meta: Meta;
  members: Members;
  stream: MessageStream;
  cursors: Cursors;
  outbox: DirectoryOutbox;
  history: History;
  archiver: Archiver;
  fanout: Fanout;
  live: LiveFeed;
  presence: Presence;
  typing: Typing;
  attachments: Attachments;
  changes: Changes;
  retention: Retention;
  commit: CommitPath;
  connections: Connections;
  frames: FrameDispatcher;
  memberData: MemberData;
  memberNews: MemberNews;
}

/** What the object itself provides: its limits, its socket registry, and the test seams (read at use). */
export interface ModuleHost {
  limits: ConversationLimits;
  sockets: Sockets;
  /** This conversation's archive shard (or a test's replacement). */
  archive: () => HistoryArchive;
  /** The primary D1 database's directory tables. */
  directory: () => HistoryArchive;
  coldBucket: () => R2Bucket;
  sendLimiter: () => TokenBuckets;
}

/**
 * Bring the schema up to date and build the modules into `m`, which the object holds already: a module's
 * constructor may close sockets (a backlog cut short by a wake), and the registry's hook then reaches presence
 * through the object while the rest is still being built.
 */
export function openModules(ctx: DurableObjectState, env: Env, host: ModuleHost, m: Modules): void {
  const storage = ctx.storage;
  const sql = storage.sql;
  const { limits, sockets } = host;
  const d1 = host.archive;
  migrate(storage, CONVERSATION_MIGRATIONS);
  // Modules that need one built after them reach it through `m`, at use.
  const meta = (m.meta = new Meta(sql));
  const jobs = (m.jobs = new JobRunner<Job>(storage, () => ({ conversation: meta.id })));
  const outbox = (m.outbox = new DirectoryOutbox(sql, jobs, host.directory));
  const members = (m.members = new Members(storage, meta, { markDirty: (userId) => m.cursors.markDirty(userId), enqueueD1: (s) => outbox.enqueue(s) }, limits.maxGroupMembers));
  const capacity = new Capacity(storage, limits, () => ({ conversation: meta.id }));
  const stream = (m.stream = new MessageStream(storage, meta, limits, host.sendLimiter, capacity, (sender, ids, seq) => m.attachments.claim(sender, ids, seq)));
  const rewrites = new D1Rewrites(sql);
  const cold = new ColdSegments(sql, meta, host.coldBucket);
  const archived = new ArchivedTiers(meta, d1, cold, rewrites);
  const changes = (m.changes = new Changes({ sql, meta, members, stream, attachments: () => m.attachments, archived, rewrites, limits }));
  const cursors = (m.cursors = new Cursors(sql, members, () => stream.lastSeq, () => m.fanout.schedule()));
  const live = (m.live = new LiveFeed(env, sql, () => members.ids(), () => members.isLarge()));
  const fanout = (m.fanout = new Fanout(env, sql, jobs, { meta, members, stream, cursors, sockets, live }));
  const history = (m.history = new History(meta, stream, archived, limits, changes));
  const retention = (m.retention = new Retention({ sql, meta, stream, d1, cold, attachments: () => m.attachments, limits }));
  const archiver = (m.archiver = new Archiver({ meta, stream, jobs, d1, limits, capacity, rewrites, cold, retention }));
  const presence = (m.presence = new Presence(env, sql, meta, sockets, jobs, limits.presenceTtlMs));
  const memberNews = (m.memberNews = new MemberNews(sockets, limits.memberFramesSliceBytes));
  const typing = (m.typing = new Typing(sockets, () => members.blocked, () => members.isLarge()));
  m.attachments = new Attachments(sql, meta, env.ATTACHMENTS, jobs, limits.attachmentQuotaBytes);
  const commit = (m.commit = new CommitPath({ meta, members, stream, cursors, sockets, archiver, fanout, changes }));
  m.connections = new Connections(ctx, limits, { sockets, meta, members, stream, cursors, history, presence });
  m.memberData = new MemberData({ env, ctx, meta, members, stream, history, archived, changes, commit, attachments: () => m.attachments, rewrites, outbox, cold, jobs, sockets, live, memberNews });
  m.frames = new FrameDispatcher({ meta, members, sockets, changes, commit, typing, cursors, limiter: host.sendLimiter, limits });
}
