// The conversation's sockets: what each socket's attachment holds, and the connect flow (membership
// and socket-cap checks, the welcome frame, the backlog, then live). Sockets themselves are kept by the
// shared SocketRegistry; `live` decides who hears broadcasts of new messages.
import { CloseCode } from "../../protocol/errors";
import type { ServerFrame } from "../../protocol/frames";
import type { Config } from "../../lib/config";
import { trySend } from "../../lib/sockets";
import type { SocketIdentity, SocketRegistry } from "../shared/sockets";
import { refuse, upgraded, type Upgrade } from "../shared/upgrade";
import type { Cursors } from "./cursors";
import type { History } from "./history";
import type { Members } from "./members";
import type { Meta } from "./meta";
import type { Presence } from "./presence";
import type { MessageStream } from "./stream";

/** Identity and stream state of a socket. Stored in the socket attachment so it survives hibernation. */
export interface ConversationSocket extends SocketIdentity {
  username: string;
  /**
   * False while the backlog is being sent ("catching up"); live messages are only pushed to live sockets. The
   * pager that sends the backlog lives in memory: a socket found not live after a wake has lost it.
   */
  live: boolean;
  /**
   * False when the client said its user socket carries its presence (`presence=0`): this socket then takes no
   * lease in the user's object. Absent (sockets from older builds, clients that did not say) counts.
   */
  presence?: false;
}

/** Whether a socket makes its user online through this object's lease. */
export const countsForPresence = (s: ConversationSocket): boolean => s.presence !== false;

export type Sockets = SocketRegistry<ConversationSocket, ServerFrame>;

/** Broadcast filter: sockets past their backlog. */
export const isLive = (s: ConversationSocket): boolean => s.live;

export class Connections {
  readonly #ctx: DurableObjectState;
  readonly #config: Config;
  readonly #sockets: Sockets;
  readonly #meta: Meta;
  readonly #members: Members;
  readonly #stream: MessageStream;
  readonly #cursors: Cursors;
  readonly #history: History;
  readonly #presence: Presence;

  constructor(
    ctx: DurableObjectState,
    config: Config,
    parts: { sockets: Sockets; meta: Meta; members: Members; stream: MessageStream; cursors: Cursors; history: History; presence: Presence },
  ) {
    this.#ctx = ctx;
    this.#config = config;
    this.#sockets = parts.sockets;
    this.#meta = parts.meta;
    this.#members = parts.members;
    this.#stream = parts.stream;
    this.#cursors = parts.cursors;
    this.#history = parts.history;
    this.#presence = parts.presence;
    // The constructor runs on every wake. A socket still catching up has lost its pager (it lived in memory)
    // and would never go live: close it, and the client resumes with `since` from what it holds.
    for (const [ws, state] of this.#sockets.entries()) {
      if (!state.live) this.#sockets.close(ws, CloseCode.InternalError, "could not load history; reconnect");
    }
  }

  /** A member opens a socket, optionally resuming after `since` (in stream `epoch`). */
  connect(upgrade: Upgrade): Response {
    const { identity, url } = upgrade;
    const sinceParam = url.searchParams.get("since");
    const since = sinceParam === null ? null : Number(sinceParam);
    const clientEpoch = url.searchParams.get("epoch");
    if (!this.#meta.exists || this.#members.get(identity.userId) === null) {
      return refuse(upgrade, CloseCode.NotAMember, "not a member of this conversation");
    }
    const atCap = () => this.#sockets.countOf(identity.userId) >= this.#config.maxSocketsPerUser;
    // At the cap, sockets of theirs that died without a close event must not keep a reconnecting device out.
    if (atCap()) this.#presence.sweepUser(identity.userId);
    if (atCap()) return refuse(upgrade, CloseCode.TooManyConnections, "too many open sockets for this user");
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    const state: ConversationSocket = {
      userId: identity.userId,
      username: identity.username,
      exp: identity.exp,
      live: false,
      connectedAt: Date.now(),
      ...(url.searchParams.get("presence") === "0" ? { presence: false as const } : {}),
    };
    // Tagged by user id so a removed member's sockets can be found and closed.
    this.#sockets.accept(server, state, [identity.userId]);
    // Presence: this socket is a device of the user until it closes or stops heartbeating.
    this.#presence.opened(state);

    const epoch = this.#meta.epoch;
    // Also a reset: a `since` below the retention floor (what the client holds there no longer exists, 16).
    const firstSeq = this.#meta.retainedFrom;
    const reset = (clientEpoch !== null && clientEpoch !== epoch) || (since !== null && (since > this.#stream.lastSeq || since < firstSeq - 1));
    this.#sockets.send(server, {
      type: "welcome",
      // The frames are the same for every version; a version-1 client shows change entries by their fallback body (15.6).
      protocol: upgrade.protocol,
      conversationId: this.#meta.id,
      userId: identity.userId,
      epoch,
      lastSeq: this.#stream.lastSeq,
      reset,
      ...(firstSeq > 1 ? { firstSeq } : {}),
    });
    if (since === null || reset) this.#goLive(server, state);
    else this.#ctx.waitUntil(this.#backlog(server, state, since));
    return upgraded(upgrade, client);
  }

  async #backlog(ws: WebSocket, state: ConversationSocket, since: number): Promise<void> {
    try {
      await this.#history.streamBacklog(since, {
        isOpen: () => ws.readyState === WebSocket.OPEN,
        sendText: (text) => trySend(ws, text),
        goLive: () => this.#goLive(ws, state),
        userId: state.userId,
      });
    } catch (err) {
      console.error(JSON.stringify({ at: "backlog", conversation: this.#meta.id, error: String(err) }));
      this.#sockets.close(ws, CloseCode.InternalError, "could not load history; reconnect");
    }
  }

  #goLive(ws: WebSocket, state: ConversationSocket): void {
    state.live = true;
    this.#sockets.remember(ws, state);
    this.#sockets.send(ws, { type: "caught_up", seq: this.#stream.lastSeq });
    // A new device learns where everyone is (small conversations; large ones ask GET /receipts?seq=).
    const cursors = this.#cursors.snapshot();
    if (cursors) this.#sockets.send(ws, { type: "receipts", conversationId: this.#meta.id, cursors });
  }
}
