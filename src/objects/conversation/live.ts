// Live inbox events: a committed message (or an edit or delete that changes the inbox preview; fanout.ts
// chooses the events) reaches the user objects of members who are online on a user socket at once, so their
// other screens (the inbox, another chat) show it within milliseconds instead of waiting for the coalesced,
// persisted fan-out (fanout.ts). The user object only forwards the event to its
// sockets (no storage write); the fan-out still brings its stored inbox up to date.
//
// Who hears: in small conversations every member, except those whose user object answered "not listening"
// (no user socket open) within the last LIVE_QUIET_MS: they are skipped, kept in memory only, until their user
// object opens a user socket and asks again (`inboxPosition(userId, listen)`, which also answers where the
// conversation is now, so nothing falls between). A member offline costs one request per LIVE_QUIET_MS, not one
// per message. In large ones (fan-out on read) only the listeners: user objects that registered while they
// had a user socket open (the same call), dropped when they answer "not listening". Owns the
// `inbox_listeners` table.
//
// Per user object there is at most one request in flight: events that arrive meanwhile wait and go in the
// next request, in order (small conversations: every message is told, none coalesced away) or as the newest
// only (large conversations).
import { isUnknownMethod, userStub } from "../shared/stubs";
import { LIVE_QUIET_MS, type ConversationSummary } from "../shared/updates";

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
  /**
   * userId → events waiting for the request in flight to that user object (the key exists while one is in
   * flight), and whether that user object asked to listen while the request was in flight (its "not listening"
   * answer may then be older than its new user socket).
   */
  readonly #waiting = new Map<string, { events: ConversationSummary[]; asked: boolean }>();
  /** Small conversations: userId → until when that member is not told (its user object is not listening). */
  readonly #quiet = new Map<string, number>();
  readonly #quietMs: number;
  #active = 0;
  readonly #slots: (() => void)[] = [];
  /** userId → until when its user object is not asked (it runs code without live events). */
  readonly #oldCode = new Map<string, number>();

  constructor(env: Env, sql: SqlStorage, memberIds: () => readonly string[], isLarge: () => boolean, quietMs = LIVE_QUIET_MS) {
    this.#env = env;
    this.#sql = sql;
    this.#memberIds = memberIds;
    this.#isLarge = isLarge;
    this.#quietMs = quietMs;
  }

  /**
   * A member's user object has a user socket open and wants live events: a quiet member is told again, and in
   * a large conversation the user object is registered as a listener.
   */
  listen(userId: string, now = Date.now()): void {
    this.#quiet.delete(userId);
    const inFlight = this.#waiting.get(userId);
    if (inFlight) inFlight.asked = true;
    if (!this.#isLarge()) return;
    const until = now + LISTEN_MS;
    this.#sql.exec("INSERT OR REPLACE INTO inbox_listeners (user_id, expires_at) VALUES (?, ?)", userId, until);
    this.#map().set(userId, until);
  }

  /** A member left: no more events for them. */
  forget(userId: string): void {
    this.#quiet.delete(userId);
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
      if (this.#skipped(this.#oldCode, userId, now) || (!large && this.#skipped(this.#quiet, userId, now))) continue;
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
    this.#waiting.set(userId, { events: [], asked: false });
    void this.#send(userId, events, coalesce);
  }

  /** Whether `userId` is in `skips` (userId → until when) now; an expired entry is dropped. */
  #skipped(skips: Map<string, number>, userId: string, now: number): boolean {
    const until = skips.get(userId);
    if (until === undefined) return false;
    if (until > now) return true;
    skips.delete(userId);
    return false;
  }

  async #send(userId: string, first: ConversationSummary[], coalesce: boolean): Promise<void> {
    let events = first;
    const waiting = this.#waiting.get(userId)!;
    while (events.length > 0) {
      await this.#slot();
      waiting.asked = false;
      try {
        const listening = await userStub(this.#env, userId).conversationLive(events);
        // Not listening, and it did not ask since the request went out (a user socket opening meanwhile): a
        // listener is dropped, a member of a small conversation is quiet until it asks. The events waiting are
        // dropped too: its ask answers with where the conversation is then.
        if (!listening && !waiting.asked) {
          if (coalesce) this.forget(userId);
          else this.#quiet.set(userId, Date.now() + this.#quietMs);
          waiting.events = [];
        }
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
      events = this.#oldCode.has(userId) ? [] : waiting.events;
      waiting.events = [];
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
