// Live inbox events: a committed message (or an edit or delete that changes the inbox preview; fanout.ts
// chooses the events) reaches the user objects of members who are online on a user socket at once, so their
// other screens (the inbox, another chat) show it within milliseconds instead of waiting for the coalesced,
// persisted fan-out (fanout.ts). The user object only forwards the event to its
// sockets (no storage write); the fan-out still brings its stored inbox up to date.
//
// Who hears: in small conversations every member (a member with no user socket answers "not listening" at
// the cost of one request). In large ones (fan-out on read) only the listeners: user objects that
// registered while they had a user socket open (`inboxPosition(userId, listen)`), dropped when they answer
// "not listening". Owns the `inbox_listeners` table.
//
// Per user object there is at most one request in flight: events that arrive meanwhile wait and go in the
// next request, in order (small conversations: every message is told, none coalesced away) or as the newest
// only (large conversations).
import { isUnknownMethod, userStub } from "../shared/stubs";
import type { ConversationSummary } from "../shared/updates";

/** A listener registration lasts this long; the user object renews it while a user socket is open. */
export const LISTEN_MS = 30 * 60_000;
/** Requests to user objects in flight at once, over all members. */
const CONCURRENCY = 64;
/**
 * A user object still on code from before live events (a deploy in progress) is not asked again for this
 * long: its inbox is kept up to date by the stored fan-out alone, as before, at no cost per message.
 */
export const OLD_CODE_RETRY_MS = 60_000;

export class LiveFeed {
  readonly #env: Env;
  readonly #sql: SqlStorage;
  readonly #memberIds: () => readonly string[];
  readonly #isLarge: () => boolean;
  /** userId → registration expiry: a cache of `inbox_listeners`, loaded on first use after a wake. */
  #listeners: Map<string, number> | null = null;
  /** userId → events waiting for the request in flight to that user object (the key exists while one is in flight). */
  readonly #waiting = new Map<string, { events: ConversationSummary[] }>();
  #active = 0;
  readonly #slots: (() => void)[] = [];
  /** userId → until when its user object is not asked (it runs code without live events). */
  readonly #oldCode = new Map<string, number>();

  constructor(env: Env, sql: SqlStorage, memberIds: () => readonly string[], isLarge: () => boolean) {
    this.#env = env;
    this.#sql = sql;
    this.#memberIds = memberIds;
    this.#isLarge = isLarge;
  }

  /** A member's user object has a user socket open and wants live events of this (large) conversation. */
  listen(userId: string, now = Date.now()): void {
    const until = now + LISTEN_MS;
    this.#sql.exec("INSERT OR REPLACE INTO inbox_listeners (user_id, expires_at) VALUES (?, ?)", userId, until);
    this.#map().set(userId, until);
  }

  /** A member left: no more events for them. */
  forget(userId: string): void {
    if (!this.#map().delete(userId)) return;
    this.#sql.exec("DELETE FROM inbox_listeners WHERE user_id = ?", userId);
  }

  isListening(userId: string, now = Date.now()): boolean {
    return (this.#map().get(userId) ?? 0) > now;
  }

  /** Committed entries, one summary each (oldest first). Call outside the commit's event: it only starts requests. */
  publish(events: ConversationSummary[]): void {
    if (events.length === 0) return;
    const large = this.#isLarge();
    const now = Date.now();
    const userIds = large ? [...this.#map()].filter(([, until]) => until > now).map(([id]) => id) : this.#memberIds();
    const newest = events.slice(-1);
    for (const userId of userIds) {
      const skipUntil = this.#oldCode.get(userId);
      if (skipUntil !== undefined) {
        if (skipUntil > now) continue;
        this.#oldCode.delete(userId);
      }
      // Large conversations tell the newest entry only, but never coalesce away a message that mentions you.
      const told = large ? [...events.slice(0, -1).filter((e) => mentions(e, userId)), ...newest] : events;
      this.#push(userId, told, large);
    }
  }

  #push(userId: string, events: ConversationSummary[], coalesce: boolean): void {
    const waiting = this.#waiting.get(userId);
    if (waiting) {
      waiting.events = coalesce ? [...waiting.events.filter((e) => mentions(e, userId)), ...events] : [...waiting.events, ...events];
      return;
    }
    this.#waiting.set(userId, { events: [] });
    void this.#send(userId, events, coalesce);
  }

  async #send(userId: string, first: ConversationSummary[], coalesce: boolean): Promise<void> {
    let events = first;
    while (events.length > 0) {
      await this.#slot();
      try {
        const listening = await userStub(this.#env, userId).conversationLive(events);
        if (!listening && coalesce) this.forget(userId);
      } catch (err) {
        if (isUnknownMethod(err)) {
          this.#oldCode.set(userId, Date.now() + OLD_CODE_RETRY_MS);
          console.log(JSON.stringify({ at: "live", user: userId, skipped: "user object runs older code; retry in 60 s" }));
        } else {
          console.warn(JSON.stringify({ at: "live", conversation: events[0]!.conversationId, error: String(err) }));
        }
      } finally {
        this.#release();
      }
      const next = this.#waiting.get(userId)!;
      events = this.#oldCode.has(userId) ? [] : next.events;
      next.events = [];
    }
    this.#waiting.delete(userId);
  }

  #slot(): Promise<void> {
    if (this.#active < CONCURRENCY) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#slots.push(resolve));
  }

  #release(): void {
    const next = this.#slots.shift();
    if (next) next();
    else this.#active--;
  }

  #map(): Map<string, number> {
    if (this.#listeners) return this.#listeners;
    const map = new Map<string, number>();
    const now = Date.now();
    this.#sql.exec("DELETE FROM inbox_listeners WHERE expires_at <= ?", now);
    for (const r of this.#sql.exec<{ userId: string; until: number }>("SELECT user_id AS userId, expires_at AS until FROM inbox_listeners")) {
      map.set(r.userId, r.until);
    }
    return (this.#listeners = map);
  }
}

/** The event's message mentions `userId` (by id, or everyone) and is not theirs. */
function mentions(e: ConversationSummary, userId: string): boolean {
  const m = e.lastMessage;
  return m !== null && m.senderId !== userId && (m.mentionsAll === true || (m.mentions?.includes(userId) ?? false));
}
