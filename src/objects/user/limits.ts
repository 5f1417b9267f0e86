// Per-user quotas on social actions: conversations created, member changes, presence subscriptions. Token
// buckets kept in this user's object, so they are exact per user (not per edge location), configurable by
// [vars], and cost nothing on the message path. Each bucket is persisted in the `meta` table (`quota:<kind>`),
// one small write per action taken: a hibernation or an eviction must not hand out a fresh burst. A refused
// action writes nothing. Owns the `quota:*` meta values.
import { AppError } from "../../lib/errors";
import type { Config } from "../../lib/config";
import type { Meta } from "./meta";

export type QuotaKind = "create" | "members" | "presence";

export interface QuotaRule {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens the bucket holds: how many actions may happen at once. */
  burst: number;
}

export interface UserLimits extends Record<QuotaKind, QuotaRule> {
  /** Distinct users this user's sockets may watch at once. */
  maxWatchedUsers: number;
  /** How long an export file and its download link last (seconds; EXPORT_TTL_SECONDS). */
  exportTtlSeconds: number;
}

export function limitsFrom(config: Config): UserLimits {
  return {
    create: { perSecond: config.createPerHour / 3600, burst: config.createBurst },
    members: { perSecond: config.memberChangesPerHour / 3600, burst: config.memberChangeBurst },
    presence: { perSecond: config.presenceSubscribesPerMinute / 60, burst: config.presenceSubscribeBurst },
    maxWatchedUsers: config.maxWatchedUsers,
    exportTtlSeconds: config.exportTtlSeconds,
  };
}

const WHAT: Record<QuotaKind, string> = {
  create: "creating conversations",
  members: "changing members",
  presence: "subscribing to presence",
};

export class Quotas {
  readonly #meta: Meta;
  readonly #limits: () => UserLimits;

  constructor(meta: Meta, limits: () => UserLimits) {
    this.#meta = meta;
    this.#limits = limits;
  }

  /** Take one token of `kind`, or throw `rate_limited` with the time until the next one. */
  take(kind: QuotaKind, now = Date.now()): void {
    const rule = this.#limits()[kind];
    const stored = JSON.parse(this.#meta.get(`quota:${kind}`) ?? "null") as { tokens: number; at: number } | null;
    const tokens = Math.min(rule.burst, stored ? stored.tokens + (Math.max(0, now - stored.at) / 1000) * rule.perSecond : rule.burst);
    if (tokens >= 1) {
      this.#meta.set(`quota:${kind}`, JSON.stringify({ tokens: tokens - 1, at: now }));
      return;
    }
    const retryAfterMs = Math.max(1, Math.ceil(((1 - tokens) / rule.perSecond) * 1000));
    throw new AppError("rate_limited", `${WHAT[kind]} too fast: try again in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
  }
}
