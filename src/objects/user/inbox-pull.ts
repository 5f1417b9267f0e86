// The pull of large conversations: their inbox rows (`pull = 1`) are not kept current by the fan-out
// (fanned out on read instead), so they are refreshed from the conversation when the inbox is read, and
// while a user socket is open this object registers for their live events (the `inbox_listen` job) and
// renews the registrations. Owns that job and when the rows were last pulled and the registrations renewed.
import { conversationStub } from "../shared/stubs";
import type { ConversationSummary, FanoutTarget } from "../shared/updates";
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

  constructor(deps: InboxDeps, update: Update) {
    this.#deps = deps;
    this.#update = update;
    deps.jobs.define("inbox_listen", () => this.#listen());
  }

  /** A user socket opened: register for live events of large conversations (and refresh their rows). */
  socketOpened(): void {
    this.#deps.jobs.ensure("inbox_listen", Date.now());
  }

  /** Ask large conversations where they are (fan-out on read); with `listen`, also for their live events. */
  async refresh(listen: boolean): Promise<void> {
    const { env, meta, sql } = this.#deps;
    const now = Date.now();
    if (!listen && now - this.#pulledAt < PULL_FRESH_MS) return;
    this.#pulledAt = now;
    const me = meta.get("user_id");
    if (!me) return;
    const ids = sql
      .exec<{ id: string }>("SELECT conversation_id AS id FROM inbox WHERE pull = 1 ORDER BY updated_at DESC LIMIT ?", PULL_LIMIT)
      .toArray()
      .map((r) => r.id);
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
