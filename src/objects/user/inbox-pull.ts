// Asking conversations for their live events and where they are. Large conversations' inbox rows
// (`pull = 1`) are not kept current by the fan-out (fanned out on read instead), so they are refreshed from
// the conversation when the inbox is read, and while a user socket is open this object registers for their
// live events (the `inbox_listen` job) and renews the registrations. Small conversations send live events to
// every member, but stop for a while (LIVE_QUIET_MS) once this object answers "not listening": when a user
// socket opens, the conversations told so are asked again. Owns that job, the conversations told "not
// listening", and when the rows were last pulled and the registrations renewed.
import { conversationStub } from "../shared/stubs";
import { LIVE_QUIET_MS, type ConversationSummary, type FanoutTarget } from "../shared/updates";
import type { JobOutcome } from "../shared/jobs";
import type { InboxDeps } from "./inbox";

/** Large conversations refreshed per inbox read, newest activity first. */
const PULL_LIMIT = 200;
/** An inbox read within this long of the last refresh uses the rows as they are (bounds the requests a user can cause). */
const PULL_FRESH_MS = 1_000;
/** While a user socket is open, live events of large conversations are asked for again this often. */
const LISTEN_RENEW_MS = 10 * 60_000;

/** Applies what a conversation answered to the inbox (Inbox.update). */
type Update = (summary: ConversationSummary, target: FanoutTarget, options: { push: boolean }) => Promise<void>;

export class InboxPull {
  readonly #deps: InboxDeps;
  readonly #update: Update;
  #pulledAt = 0;
  #listenedAt = 0;
  /** conversationId → when this object last answered it "not listening" (it skips this user until asked). */
  readonly #toldQuiet = new Map<string, number>();
  /** When this object woke: conversations may hold this user quiet from before, for up to LIVE_QUIET_MS. */
  readonly #wokeAt = Date.now();
  #askedSinceWake = false;

  constructor(deps: InboxDeps, update: Update) {
    this.#deps = deps;
    this.#update = update;
    deps.jobs.define("inbox_listen", () => this.#listen());
  }

  /**
   * A user socket opened: register for live events of large conversations (and refresh their rows), and ask
   * the conversations that were told "not listening" for their live events again.
   */
  socketOpened(): void {
    this.#deps.jobs.ensure("inbox_listen", Date.now());
    this.#deps.ctx.waitUntil(this.#askQuiet());
  }

  /** Live events of these conversations were answered "not listening" (no user socket was open). */
  toldQuiet(conversationIds: string[], now = Date.now()): void {
    for (const id of conversationIds) {
      this.#toldQuiet.delete(id); // re-inserted: the map stays in order of the last answer
      this.#toldQuiet.set(id, now);
    }
    // Oldest first: answers past LIVE_QUIET_MS no longer hold anything, and only the newest PULL_LIMIT are asked.
    for (const [id, at] of this.#toldQuiet) {
      if (this.#toldQuiet.size <= PULL_LIMIT && at > now - LIVE_QUIET_MS) break;
      this.#toldQuiet.delete(id);
    }
  }

  /** Ask large conversations where they are (fan-out on read); with `listen`, also for their live events. */
  async refresh(listen: boolean): Promise<void> {
    const now = Date.now();
    if (!listen && now - this.#pulledAt < PULL_FRESH_MS) return;
    this.#pulledAt = now;
    const ids = this.#deps.sql
      .exec<{ id: string }>("SELECT conversation_id AS id FROM inbox WHERE pull = 1 ORDER BY updated_at DESC LIMIT ?", PULL_LIMIT)
      .toArray()
      .map((r) => r.id);
    await this.#ask(ids, listen);
  }

  /**
   * The conversations that hold this user quiet (told "not listening" within LIVE_QUIET_MS, newest first),
   * asked for their live events; their answer is where they are now, so a message that came while they held
   * the user quiet reaches the new socket too. This object cannot know what it answered before it woke: a
   * socket within LIVE_QUIET_MS of the wake also asks the small conversations with activity in that window.
   */
  async #askQuiet(): Promise<void> {
    const since = Date.now() - LIVE_QUIET_MS;
    const ids = new Set([...this.#toldQuiet].filter(([, at]) => at > since).map(([id]) => id).reverse());
    this.#toldQuiet.clear();
    if (!this.#askedSinceWake && this.#wokeAt > since) {
      this.#askedSinceWake = true;
      const recent = this.#deps.sql.exec<{ id: string }>(
        "SELECT conversation_id AS id FROM inbox WHERE pull = 0 AND updated_at > ? ORDER BY updated_at DESC LIMIT ?",
        since,
        PULL_LIMIT,
      );
      for (const r of recent) ids.add(r.id);
    }
    // Past the limit (a user written to by hundreds of conversations in two minutes), the rest follow the
    // stored fan-out until the conversations' quiet marks expire.
    await this.#ask([...ids].slice(0, PULL_LIMIT), true);
  }

  /** `inboxPosition` of each conversation, applied to its row like a stored update (never a push). */
  async #ask(ids: string[], listen: boolean): Promise<void> {
    const { env, meta } = this.#deps;
    const me = meta.get("user_id");
    if (!me || ids.length === 0) return;
    await Promise.all(
      ids.map(async (id) => {
        try {
          const result = await conversationStub(env, id).inboxPosition(me, listen);
          // not_a_member: the removal reaches this inbox by conversationRemoved.
          if (result.ok) await this.#update(result.value.summary, result.value.target, { push: false });
        } catch (err) {
          console.warn(JSON.stringify({ at: "inbox_pull", conversation: id, error: String(err) }));
        }
      }),
    );
  }

  /** A large conversation new to this inbox while a user socket is open: ask for its live events now. */
  listenTo(conversationId: string, userId: string): void {
    this.#deps.ctx.waitUntil(
      conversationStub(this.#deps.env, conversationId)
        .inboxPosition(userId, true)
        .then(
          () => undefined,
          (err) => console.warn(JSON.stringify({ at: "inbox_listen", conversation: conversationId, error: String(err) })),
        ),
    );
  }

  /** While a user socket is open: keep the live-event registrations of large conversations fresh. */
  async #listen(): Promise<JobOutcome> {
    if (this.#deps.sockets.size === 0) return "done";
    const now = Date.now();
    if (now - this.#listenedAt >= LISTEN_RENEW_MS) {
      await this.refresh(true);
      this.#listenedAt = now;
    }
    return { at: this.#listenedAt + LISTEN_RENEW_MS };
  }
}
