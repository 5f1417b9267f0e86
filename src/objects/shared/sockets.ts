// The sockets of one Durable Object (Hibernation API): who is on each socket, sending to one or all,
// closing, and expiry. Owns the socket attachments.
//
// A socket's state lives in its attachment, so it survives hibernation; the map here is a cache of the
// attachments, rebuilt on first use after a wake (the constructor re-runs then). Every way a socket can
// go (closed by us, closed or errored by the peer, expired) passes through forget(), which calls the
// owner's `forgotten` hook exactly once: that is where presence and subscriptions are released.
import { CloseCode } from "../../protocol/errors";
import { PING_FRAME, PONG_FRAME } from "../../protocol/frames";
import { reciprocateClose, tryClose, trySend } from "../../lib/sockets";

/** What every socket's attachment carries. */
export interface SocketIdentity {
  userId: string;
  /** Access token expiry (s). The socket hears nothing after it and is closed with TokenExpired. */
  exp: number;
  connectedAt: number;
}

export interface SocketHooks<S> {
  /** The socket left the registry (any reason). Runs once per socket. */
  forgotten(state: S): void;
}

export class SocketRegistry<S extends SocketIdentity, Frame extends { type: string }> {
  readonly #ctx: DurableObjectState;
  readonly #hooks: SocketHooks<S>;
  #map: Map<WebSocket, S> | null = null;

  constructor(ctx: DurableObjectState, hooks: SocketHooks<S>) {
    this.#ctx = ctx;
    this.#hooks = hooks;
    // Pings are answered by the runtime without waking the object (and without billing duration).
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
  }

  /** Accept a new server socket, tagged (e.g. by user id, so getWebSockets(tag) finds it), with its state. */
  accept(ws: WebSocket, state: S, tags?: string[]): void {
    this.#ctx.acceptWebSocket(ws, tags);
    this.remember(ws, state);
  }

  /** Store a socket's (changed) state in its attachment and the cache. */
  remember(ws: WebSocket, state: S): void {
    ws.serializeAttachment(state);
    this.#sockets().set(ws, state);
  }

  get(ws: WebSocket): S | undefined {
    return this.#sockets().get(ws);
  }

  entries(): IterableIterator<[WebSocket, S]> {
    return this.#sockets().entries();
  }

  get size(): number {
    return this.#sockets().size;
  }

  /** Open sockets of one user (those `include` accepts, all by default). */
  countOf(userId: string, include?: (state: S) => boolean): number {
    let n = 0;
    for (const s of this.#sockets().values()) if (s.userId === userId && (!include || include(s))) n++;
    return n;
  }

  send(ws: WebSocket, frame: Frame): void {
    trySend(ws, JSON.stringify(frame));
  }

  /**
   * Send one frame to every socket `include` accepts (all by default), serialised once. A socket whose
   * token expired hears nothing more: it is closed, and resumes with a fresh token.
   */
  broadcast(frame: Frame, include?: (state: S) => boolean): void {
    const text = JSON.stringify(frame);
    this.#eachUnexpired((ws, state) => {
      if (!include || include(state)) trySend(ws, text);
    });
  }

  /** Every open socket whose token has not expired (the expired are closed on the way), for a caller that sends over time. */
  open(): WebSocket[] {
    const sockets: WebSocket[] = [];
    this.#eachUnexpired((ws) => sockets.push(ws));
    return sockets;
  }

  /** As `broadcast`, with each socket's own frame (null: nothing for it); each distinct frame is serialised once. */
  broadcastEach(frameFor: (state: S) => Frame | null): void {
    const texts = new Map<Frame, string>();
    this.#eachUnexpired((ws, state) => {
      const frame = frameFor(state);
      if (!frame) return;
      let text = texts.get(frame);
      if (text === undefined) texts.set(frame, (text = JSON.stringify(frame)));
      trySend(ws, text);
    });
  }

  /** Every socket whose access token has not expired; the others are closed on the way (they resume with a fresh token). */
  #eachUnexpired(visit: (ws: WebSocket, state: S) => void): void {
    const now = Date.now();
    for (const [ws, state] of this.#sockets()) {
      if (state.exp * 1000 <= now) this.close(ws, CloseCode.TokenExpired, "access token expired");
      else visit(ws, state);
    }
  }

  /** We close a socket. */
  close(ws: WebSocket, code: number, reason: string): void {
    this.forget(ws);
    tryClose(ws, code, reason);
  }

  /** The peer closed (webSocketClose): answer with the same code, or the client sees 1006. */
  closed(ws: WebSocket, code: number, reason: string): void {
    this.forget(ws);
    reciprocateClose(ws, code, reason);
  }

  /** Drop a socket from the registry (closed, errored or expired), running the `forgotten` hook once. */
  forget(ws: WebSocket): void {
    const map = this.#sockets();
    const state = map.get(ws);
    if (!state) return;
    map.delete(ws);
    this.#hooks.forgotten(state);
  }

  /**
   * A heartbeat sweep that runs this late was held up by a busy runtime: pings that arrived meanwhile may
   * not be recorded yet, so it must not judge silence (see `sweepIsLate`).
   */
  static readonly LATE_SWEEP_MS = 2_000;

  /**
   * Close sockets that stopped heartbeating (a closed tab can leave a hibernated socket open with no
   * close event, workerd#1187; the runtime records the last auto-answered ping) or whose token expired:
   * idle sockets that only ping never reach the object otherwise. `only` limits the sweep to some sockets.
   * Returns the swept sockets that remain.
   */
  sweep(ttlMs: number, now = Date.now(), only?: (state: S) => boolean): S[] {
    const alive: S[] = [];
    for (const [ws, state] of this.#sockets()) {
      if (only && !only(state)) continue;
      const lastPing = this.#ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      if (now - Math.max(lastPing, state.connectedAt) > ttlMs) this.close(ws, CloseCode.HeartbeatTimeout, "no heartbeat");
      else if (state.exp * 1000 <= now) this.close(ws, CloseCode.TokenExpired, "access token expired");
      else alive.push(state);
    }
    return alive;
  }

  /** After a wake the cache is empty: rebuild it from the runtime's open sockets and their attachments. */
  #sockets(): Map<WebSocket, S> {
    if (this.#map) return this.#map;
    const map = new Map<WebSocket, S>();
    // getWebSockets() may include closing sockets; they are not counted.
    for (const ws of this.#ctx.getWebSockets()) {
      const state = ws.readyState === WebSocket.OPEN ? (ws.deserializeAttachment() as S | null) : null;
      if (state) map.set(ws, state);
    }
    this.#map = map;
    return map;
  }
}

/**
 * True when a sweep due at `dueAt` runs more than LATE_SWEEP_MS late. The runtime timestamps pings when it
 * processes them, on the same thread that was busy; closing on a late sweep would cut off healthy clients
 * because the server was slow. The caller skips closing and sweeps again shortly.
 */
export function sweepIsLate(dueAt: number | undefined, now: number): boolean {
  return dueAt !== undefined && now - dueAt > SocketRegistry.LATE_SWEEP_MS;
}
