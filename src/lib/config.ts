// Settings from wrangler.toml [vars] (strings), parsed once with defaults and bounds.
const MIB = 1024 * 1024;

function intVar(value: string | undefined, fallback: number, min: number, max: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= min && n <= max ? n : fallback;
}

export interface Config {
  maxGroupMembers: number;
  maxBodyBytes: number;
  hotTailMessages: number;
  /** Tiers (docs/architecture.md 3.2): messages older than this also leave the hot tail (days; 0: by count only). */
  hotTailDays: number;
  /** D1 binding names the warm tier is spread over (src/db/shards.ts), in the order new conversations hash into. */
  archiveShards: string[];
  /** Messages move from D1 to R2 segments once older than this (days; 0: not by age) ... */
  warmDays: number;
  /** ... or once this many newer messages exist (0: not by count). */
  warmMessages: number;
  /** Entries per R2 segment, at most. */
  segmentMessages: number;
  /** Messages older than this are deleted from every tier (days; 0: kept forever). A conversation may set its own. */
  retentionDays: number;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** A device with no heartbeat for this long is offline (and its socket closed). */
  presenceTtlMs: number;
  sendRatePerSecond: number;
  sendBurst: number;
  maxSocketsPerUser: number;
  /** Bytes of `members_changed` frames one event sends before the rest wait for a later one (conversation/member-news.ts). */
  memberFramesSliceBytes: number;
  /** First retry delay (s) of a failed push webhook call; doubles per attempt. */
  pushRetryBaseSeconds: number;
  /** Largest attachment, bytes. */
  maxAttachmentBytes: number;
  /** Bytes of attachments one conversation may hold (uploads not yet deleted). */
  attachmentQuotaBytes: number;
  /** Lifetime of a signed download URL, seconds. */
  attachmentUrlTtl: number;
  /** Edits are refused this long after a message was sent (seconds); 0: no limit. */
  editWindowSeconds: number;
  /** Distinct reactions one message may have. */
  maxReactionsPerMessage: number;

  /** Backlog pacing: bytes per second one socket is handed while it catches up, and all sockets of one object together. */
  backlogSocketBytesPerSecond: number;
  backlogObjectBytesPerSecond: number;
  /** A conversation object refuses new messages (conversation_storage_full) once its SQLite database is this big. */
  storageCeilingBytes: number;
  /** Idempotency keys of pruned messages kept (the newest ones): a resend is recognised while its key is kept. */
  idempotencyKeysKept: number;
  /** Who may add a user to groups, for users who have not chosen (GROUP_ADDS_DEFAULT). */
  groupAddsDefault: GroupAdds;
  /** Per-user quotas (token buckets in the user's object): conversations created, member changes, presence subscriptions. */
  createPerHour: number;
  createBurst: number;
  memberChangesPerHour: number;
  memberChangeBurst: number;
  presenceSubscribesPerMinute: number;
  presenceSubscribeBurst: number;
  /** Distinct users one user's sockets may watch at once (all devices together). */
  maxWatchedUsers: number;
  /** How long an export file (and its download link) is kept, seconds (docs/protocol.md 17). */
  exportTtlSeconds: number;
}

/** Who may add a user to a group: anyone (not blocked), people they share a conversation with, nobody. */
export const GROUP_ADDS = ["anyone", "contacts", "nobody"] as const;
export type GroupAdds = (typeof GROUP_ADDS)[number];

function groupAddsVar(value: string | undefined): GroupAdds {
  return (GROUP_ADDS as readonly string[]).includes(value ?? "") ? (value as GroupAdds) : "contacts";
}

/** A comma-separated list of binding names (ARCHIVE_SHARDS); empty or invalid: the primary database only. */
function shardsVar(value: string | undefined): string[] {
  const names = (value ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "");
  return names.length > 0 && names.every((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) ? [...new Set(names)] : ["DB"];
}

export function readConfig(env: Partial<Record<keyof Env, unknown>>): Config {
  const s = (v: unknown) => (typeof v === "string" ? v : undefined);
  return {
    maxGroupMembers: intVar(s(env.MAX_GROUP_MEMBERS), 5000, 2, 32_000),
    maxBodyBytes: intVar(s(env.MAX_BODY_BYTES), 8192, 1, 60 * 1024),
    hotTailMessages: intVar(s(env.HOT_TAIL_MESSAGES), 10_000, 1, 10_000_000),
    hotTailDays: intVar(s(env.HOT_TAIL_DAYS), 30, 0, 100 * 365),
    archiveShards: shardsVar(s(env.ARCHIVE_SHARDS)),
    warmDays: intVar(s(env.WARM_DAYS), 30, 0, 100 * 365),
    warmMessages: intVar(s(env.WARM_MESSAGES), 0, 0, 1_000_000_000),
    // A cold page reads whole segments: 1,000 entries are ~0.3 MB of JSON at typical sizes, 8 MB at most (8 KB bodies).
    segmentMessages: intVar(s(env.SEGMENT_MESSAGES), 1000, 1, 10_000),
    retentionDays: intVar(s(env.RETENTION_DAYS), 0, 0, 100 * 365),
    accessTokenTtl: intVar(s(env.ACCESS_TOKEN_TTL_SECONDS), 3600, 10, 86_400),
    refreshTokenTtl: intVar(s(env.REFRESH_TOKEN_TTL_SECONDS), 30 * 86_400, 60, 365 * 86_400),
    presenceTtlMs: intVar(s(env.PRESENCE_TTL_MS), 30_000, 500, 600_000),
    sendRatePerSecond: intVar(s(env.SEND_RATE_PER_SECOND), 10, 1, 1_000_000_000),
    sendBurst: intVar(s(env.SEND_BURST), 20, 1, 1_000_000_000),
    maxSocketsPerUser: intVar(s(env.MAX_SOCKETS_PER_USER), 10, 1, 1000),
    memberFramesSliceBytes: intVar(s(env.MEMBER_FRAMES_SLICE_BYTES), 2 * MIB, 1024, 64 * MIB),
    pushRetryBaseSeconds: intVar(s(env.PUSH_RETRY_BASE_SECONDS), 2, 0, 300),
    // R2's multipart limits: 10,000 parts of at most 5 GiB; 5 GiB is R2's limit for one object written in one request.
    maxAttachmentBytes: intVar(s(env.MAX_ATTACHMENT_BYTES), 25 * 1024 * 1024, 1, 5 * 1024 ** 4),
    attachmentQuotaBytes: intVar(s(env.ATTACHMENT_QUOTA_BYTES), 5 * 1024 ** 3, 1, Number.MAX_SAFE_INTEGER),
    attachmentUrlTtl: intVar(s(env.ATTACHMENT_URL_TTL_SECONDS), 600, 10, 7 * 86_400),
    editWindowSeconds: intVar(s(env.EDIT_WINDOW_SECONDS), 0, 0, 100 * 365 * 86_400),
    maxReactionsPerMessage: intVar(s(env.MAX_REACTIONS_PER_MESSAGE), 50, 1, 1000),

    backlogSocketBytesPerSecond: intVar(s(env.BACKLOG_SOCKET_BYTES_PER_SECOND), 2 * MIB, 64 * 1024, 1024 * MIB),
    backlogObjectBytesPerSecond: intVar(s(env.BACKLOG_OBJECT_BYTES_PER_SECOND), 8 * MIB, 64 * 1024, 4096 * MIB),
    // The platform's hard limit is 10 GB per object: the default leaves 2 GiB of headroom for everything the
    // ceiling does not stop (cursors, membership, the archive catching up).
    storageCeilingBytes: intVar(s(env.STORAGE_CEILING_BYTES), 8 * 1024 * MIB, MIB, 10 * 1000 * 1000 * 1000),
    idempotencyKeysKept: intVar(s(env.IDEMPOTENCY_KEYS_KEPT), 1_000_000, 0, 100_000_000),
    groupAddsDefault: groupAddsVar(s(env.GROUP_ADDS_DEFAULT)),
    createPerHour: intVar(s(env.CREATE_CONVERSATIONS_PER_HOUR), 60, 1, 1_000_000_000),
    createBurst: intVar(s(env.CREATE_CONVERSATIONS_BURST), 20, 1, 1_000_000_000),
    memberChangesPerHour: intVar(s(env.MEMBER_CHANGES_PER_HOUR), 600, 1, 1_000_000_000),
    memberChangeBurst: intVar(s(env.MEMBER_CHANGES_BURST), 60, 1, 1_000_000_000),
    presenceSubscribesPerMinute: intVar(s(env.PRESENCE_SUBSCRIBES_PER_MINUTE), 6, 1, 1_000_000_000),
    presenceSubscribeBurst: intVar(s(env.PRESENCE_SUBSCRIBES_BURST), 10, 1, 1_000_000_000),
    maxWatchedUsers: intVar(s(env.MAX_WATCHED_USERS), 1000, 1, 100_000),
    exportTtlSeconds: intVar(s(env.EXPORT_TTL_SECONDS), 7 * 86_400, 60, 365 * 86_400),
  };
}
